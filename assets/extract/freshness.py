"""Freshness of each market's daily raw data: one check per (dataset, market), from the
market registry's close, time zone and exchange calendar (selloff/freshness.py).

Non-blocking on purpose: a late market leaves the other markets' data correct and
publishable; the check turns red in the catalog and the freshness alert sensor
(orchestration/alerts.py) reports it. The checks run with every refresh of their dataset
and, by the market's `freshness_<market>` schedule, at each market's deadline, so a
stopped refresh or a session that never arrived is seen without any run of the dataset.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from assets import WRITER_POOL
from selloff.freshness import market_freshness, newest_by_market, replay_now
from selloff.markets import REGISTRY, Market
from selloff.resources import SourceResource, WarehouseResource

# The daily datasets every market has each session: (date column, id column). Flows are
# left out (Japan's are weekly), and so are index valuations (not every market has them).
FRESHNESS_DATASETS: dict[str, tuple[str, str]] = {
    "prices_daily": ("trade_date", "security_id"),
    "index_levels_daily": ("trade_date", "index_id"),
}


def freshness_check_name(market_code: str) -> str:
    return f"fresh_{market_code.lower()}"


def _freshness_check(dataset: str, m: Market) -> dg.AssetChecksDefinition:
    date_column, id_column = FRESHNESS_DATASETS[dataset]

    @dg.asset_check(
        asset=dg.AssetKey(["raw", dataset]),
        name=freshness_check_name(m.code),
        blocking=False,
        pool=WRITER_POOL,
        description=f"{m.code} ({m.name}): the newest {m.calendar} session is in raw.{dataset} "
        f"by {m.fresh_by:%H:%M} {m.timezone} (close {m.close:%H:%M} + refresh "
        f"{m.refresh_delay.total_seconds() / 60:.0f} min + grace "
        f"{m.freshness_grace.total_seconds() / 60:.0f} min); exchange holidays are not late. "
        "Live source: against the clock; demo and snapshot: against the end of the data's "
        "newest day.",
    )
    def _check(source: SourceResource, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect() as con:
            newest = newest_by_market(con, f"raw.{dataset}", date_column, id_column)
        if newest is None:
            return dg.AssetCheckResult(passed=False, description=f"raw.{dataset} does not exist")
        # A replay has no "now" of its own: its clock stands at the end of its newest day.
        now = dt.datetime.now(dt.UTC) if source.kind == "live" else replay_now(newest)
        if now is None:
            return dg.AssetCheckResult(passed=False, description=f"raw.{dataset} is empty")
        f = market_freshness(m.code, newest.get(m.code), now)
        return dg.AssetCheckResult(
            passed=not f.late,
            description=f.describe(dataset),
            metadata={
                "market": m.code,
                "newest_session": str(f.newest) if f.newest else "-",
                "due_session": str(f.due) if f.due else "-",
                "missing_sessions": f.missing_sessions,
                "deadline_local": f"{m.fresh_by:%H:%M} {m.timezone}",
                "clock": "wall clock" if source.kind == "live" else "end of the data's newest day",
                "checked_at_utc": now.isoformat(timespec="seconds"),
            },
        )

    return _check


freshness_checks: list[dg.AssetChecksDefinition] = [
    _freshness_check(d, m) for d in FRESHNESS_DATASETS for m in REGISTRY]


def freshness_check_keys(market_code: str | None = None) -> list[dg.AssetCheckKey]:
    """The freshness checks' keys, of one market or all."""
    return [dg.AssetCheckKey(dg.AssetKey(["raw", d]), freshness_check_name(m.code))
            for d in FRESHNESS_DATASETS for m in REGISTRY
            if market_code is None or m.code == market_code]
