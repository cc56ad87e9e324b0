"""Verdicts on the commentary's claims (selloff/config/claims.yaml)."""

import contextlib
import datetime as dt
from collections.abc import Mapping

import dagster as dg
import polars as pl

from assets import WRITER_POOL
from assets.analytics.inputs import (
    MARTS,
    Select,
    analytics_asset,
    analytics_key,
    mart_key,
    read_selected,
)
from selloff.claims import compute_claim_verdicts
from selloff.markdown import markdown_table
from selloff.resources import SourceResource, WarehouseResource

_CLAIM_TABLES = ("dim_security", "dim_basket_member", "dim_trading_calendar",
                 "fct_fundamentals_quarterly", "fct_index_levels_daily",
                 "fct_index_valuation_daily")
_CLAIM_MCAP_COLUMNS = ("security_id", "trade_date", "market", "currency", "close", "adj_close",
                       "market_cap_local", "market_cap_usd")


# How far before the earliest date a claim or window names the claims' inputs start.
CLAIM_LOOKBACK = dt.timedelta(days=366)


def earliest_claim_day(windows: pl.DataFrame | None) -> dt.date | None:
    """CLAIM_LOOKBACK before the earliest date in the claim registry's parameters
    (start dates, search periods, months, event days) and the windows' start dates; None
    when none is found (then every day is read)."""
    from selloff.claims import load_registry

    found: list[dt.date] = []

    def walk(value: object) -> None:
        if isinstance(value, dt.date):
            found.append(value if not isinstance(value, dt.datetime) else value.date())
        elif isinstance(value, str) and len(value) >= 7 and value[:4].isdigit():
            with contextlib.suppress(ValueError):  # text that only looks like a date
                found.append(dt.date.fromisoformat(value if len(value) > 7 else value + "-01"))
        elif isinstance(value, dict | Mapping):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    for claim in load_registry().claims:
        walk(claim.params)
        for part in claim.parts:
            walk(part.params)
    if windows is not None and windows.height:
        found.extend(windows["start_date"].drop_nulls().to_list())
    return min(found) - CLAIM_LOOKBACK if found else None


@analytics_asset(
    "claim_verdicts",
    deps=[*(mart_key(m) for m in MARTS), analytics_key("selloff_windows")],
    description="One row per claim of the commentary: computed value, verdict (supported, "
    "contradicted, insufficient_data, external), window, entities and a note.",
)
def claim_verdicts(source: SourceResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    # Only the tables and columns the claim metrics read (selloff/claims/metrics.py): the
    # P/E facts and dim_index are never used, and the market-cap fact without its share,
    # FX and one-day-change columns. The daily facts start a year before the earliest
    # date any claim or window names: the metrics look back at most a month before their
    # spans (an opening close), so the year is slack, not a guess at the data.
    windows = warehouse.read("analytics", "selloff_windows")
    first = earliest_claim_day(windows)
    since = None if first is None else f"trade_date >= DATE '{first.isoformat()}'"
    frames = read_selected(warehouse, {
        **{m: Select("marts", m) for m in _CLAIM_TABLES},
        "fct_market_cap_daily": Select("marts", "fct_market_cap_daily", _CLAIM_MCAP_COLUMNS,
                                       since),
        "fct_fund_flows_daily": Select("marts", "fct_fund_flows_daily", None, since),
    })
    if windows is not None:
        frames["selloff_windows"] = windows
    verdicts = compute_claim_verdicts(frames, synthetic=source.is_synthetic)
    rows = warehouse.write("analytics", "claim_verdicts", verdicts)
    counts = dict(verdicts.group_by("verdict").len().iter_rows())
    return dg.MaterializeResult(metadata={
        "rows": rows,
        **{f"verdict: {k}": v for k, v in sorted(counts.items())},
        "verdicts": dg.MetadataValue.md(markdown_table(verdicts.select(
            "claim_id", "verdict", "stated_text", "computed_text",
            pl.col("window_start").cast(pl.Utf8), pl.col("window_end").cast(pl.Utf8)), 30)),
    })


@dg.asset_check(asset=analytics_key("claim_verdicts"), name="every_claim_has_a_verdict",
                blocking=True, pool=WRITER_POOL,
                description="Every claim of the registry has exactly one row with a known verdict.")
def every_claim_has_a_verdict(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    from selloff.claims import load_registry

    verdicts = warehouse.read("analytics", "claim_verdicts")
    expected = {c.id for c in load_registry().claims}
    got = verdicts["claim_id"].to_list() if verdicts is not None else []
    missing = sorted(expected - set(got))
    dupes = sorted({c for c in got if got.count(c) > 1})
    unknown = [] if verdicts is None else verdicts.filter(
        ~pl.col("verdict").is_in(["supported", "contradicted", "insufficient_data", "external"])
    )["claim_id"].to_list()
    ok = not (missing or dupes or unknown)
    return dg.AssetCheckResult(passed=ok, metadata={"claims": len(expected), "rows": len(got)},
                               description="ok" if ok else f"missing {missing}, duplicated {dupes}, "
                               f"unknown verdicts {unknown}")
