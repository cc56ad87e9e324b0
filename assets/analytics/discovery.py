"""Sell-offs found in the whole data: candidate episodes, ranked (selloff.analytics.discovery)."""

import hashlib
import json
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from assets import WRITER_POOL
from assets.analytics.table_reads import Inputs, Select, _source, analytics_key, analytics_spec
from selloff.analytics import discovery as discovery_module
from selloff.analytics import moves as moves_module
from selloff.analytics import tables as tables_module
from selloff.analytics.discovery import (
    DiscoveryConfigError,
    candidate_problems,
    discover,
    discovery_config,
    market_aggregate,
)
from selloff.analytics.moves import LEVEL_SCHEMA
from selloff.analytics.tables import conform
from selloff.markdown import markdown_table
from selloff.markets import market_of_sql
from selloff.resources import WarehouseResource

INPUTS = Inputs(marts=("fct_index_levels_daily", "fct_market_cap_daily", "dim_basket_member"))
CHECK_INPUTS = Inputs(analytics=("episode_candidates", "episode_candidate_events"))
TOP_COLUMNS = ("rank", "candidate_id", "start_date", "end_date", "markets", "fall_return",
               "fall_entity", "worst_day_return", "worst_day_date", "cap_lost_usd", "severity")


class AggregateStore:
    """Each market's aggregate levels (`market_aggregate`) of the last run, beside the
    build file, with the fingerprint of the rows they were computed from: the market's
    count and order-independent sum of row hashes of (security_id, trade_date,
    market_cap_usd), the only columns the aggregate reads. A refresh of one market then
    computes that market's aggregate alone; the code's digest is part of the key."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        digest = hashlib.sha256(f"polars={pl.__version__}".encode())
        for module in (discovery_module, moves_module, tables_module):
            digest.update(Path(module.__file__ or "").read_bytes())
        self.code = digest.hexdigest()

    def _paths(self, market: str) -> tuple[Path, Path]:
        name = hashlib.sha256(market.encode()).hexdigest()[:16]
        return self.folder / f"{name}.parquet", self.folder / f"{name}.json"

    def get(self, market: str, fingerprint: str) -> pl.DataFrame | None:
        data, meta = self._paths(market)
        try:
            seen = json.loads(meta.read_text(encoding="utf-8"))
            if seen != {"market": market, "rows": fingerprint, "code": self.code}:
                return None
            return conform(pl.read_parquet(data), LEVEL_SCHEMA)
        except (OSError, ValueError, pl.exceptions.PolarsError):
            return None

    def put(self, market: str, fingerprint: str, levels: pl.DataFrame) -> None:
        data, meta = self._paths(market)
        self.folder.mkdir(parents=True, exist_ok=True)
        meta.unlink(missing_ok=True)  # no stale key names the new file while it is written
        levels.write_parquet(data)
        meta.write_text(json.dumps({"market": market, "rows": fingerprint, "code": self.code}),
                        encoding="utf-8")


def market_inputs(warehouse: WarehouseResource, member_ids: list[str],
                  store: AggregateStore) -> tuple[dict[str, pl.DataFrame],
                                                  dict[str, pl.DataFrame], list[str]]:
    """(caps, aggregates, recomputed): every market's aggregate levels, kept from `store`
    when its rows' fingerprint is the stored one, else computed from its rows (and
    stored); caps per market for the baskets (a kept market's: its basket members' rows
    only). Read in DuckDB one market at a time, so polars never splits them."""
    if not INPUTS.declares("marts", "fct_market_cap_daily"):
        raise ValueError("reads marts.fct_market_cap_daily without declaring it")
    key = market_of_sql("security_id")
    caps: dict[str, pl.DataFrame] = {}
    aggregates: dict[str, pl.DataFrame] = {}
    recomputed: list[str] = []
    with warehouse.connect() as con:
        source = _source(con, warehouse.settings(), "marts", "fct_market_cap_daily")
        if source is None:
            return {}, {}, []
        fingerprints = {m: f"{n}:{h}" for m, n, h in con.sql(
            f"SELECT {key} AS m, count(*), "
            "coalesce(sum(hash(security_id, trade_date, market_cap_usd)), 0)::VARCHAR "
            f"FROM {source} WHERE {key} IS NOT NULL GROUP BY m").fetchall()}
        con.register("__ids", pl.DataFrame({"id": sorted(set(member_ids))},
                                           schema={"id": pl.Utf8}).to_arrow())
        cols = "security_id, trade_date, market_cap_usd"
        for market in sorted(fingerprints):
            kept = store.get(market, fingerprints[market])
            members_only = " AND security_id IN (SELECT id FROM __ids)" if kept is not None else ""
            # The market is a value read from the table: a parameter, never spliced in.
            frame = con.sql(f"SELECT {cols} FROM {source} WHERE {key} = ?{members_only}",
                            params=[market]).pl()
            if kept is None:
                kept = market_aggregate(market, frame) if frame.height else None
                if kept is not None:
                    store.put(market, fingerprints[market], kept)
                recomputed.append(market)
            if kept is not None:
                aggregates[market] = kept
            if frame.height:
                caps[market] = frame
    return caps, aggregates, recomputed


class DiscoveryRunConfig(dg.Config):
    """Overrides of `selloff.analytics.discovery.DiscoveryConfig` (its docstring has the
    keys and defaults), e.g. {"drawdown_threshold": 0.15}; checked before any work."""

    overrides: dict[str, Any] = {}


@dg.multi_asset(
    specs=[
        analytics_spec("episode_candidates", INPUTS,
                       "Sell-offs found in the whole data (not per episode): drawdowns, day "
                       "and week shocks of every index, basket and market aggregate, grouped "
                       "across markets into candidates ranked by severity (dates, markets, "
                       "entities hit, fall, worst day and week, USD cap lost). "
                       "`selloff discover` lists them and drafts episode folders."),
        analytics_spec("episode_candidate_events", INPUTS,
                       "The events behind episode_candidates: one row per drawdown, day "
                       "shock and week shock of an entity, with its candidate_id."),
    ],
    group_name="analytics",
    pool=WRITER_POOL,
)
def episode_candidates_asset(config: DiscoveryRunConfig, warehouse: WarehouseResource):
    try:
        cfg = discovery_config(config.overrides)
    except DiscoveryConfigError as exc:
        raise dg.Failure(description=str(exc)) from exc
    frames = INPUTS.read(warehouse, {
        "fct_index_levels_daily": Select("marts", "fct_index_levels_daily",
                                         ("index_id", "trade_date", "close")),
        "dim_basket_member": Select("marts", "dim_basket_member")})
    # Whole-data, not per episode: a new day can extend a drawdown or start a candidate,
    # so every run recomputes it. The market caps are read split by market in DuckDB
    # (each aggregate needs only its market's rows), so polars never scans every
    # market's rows once per market.
    # Each market's aggregate is kept from the last run while that market's rows are
    # unchanged (AggregateStore): a one-market refresh computes one aggregate.
    members = frames.get("dim_basket_member")
    caps, aggregates, recomputed = market_inputs(
        warehouse, [] if members is None else members["security_id"].unique().to_list(),
        AggregateStore(warehouse.settings().build_warehouse.parent / "discovery_aggregates"))
    candidates, events = discover(frames.get("fct_index_levels_daily"), caps, members, cfg,
                                  aggregates=aggregates or None)
    n = warehouse.write("analytics", "episode_candidates", candidates)
    n_events = warehouse.write("analytics", "episode_candidate_events", events)
    top = candidates.head(10).select(TOP_COLUMNS).with_columns(
        (pl.col("cap_lost_usd") / 1e9).round(1).alias("cap_lost_usd"))
    yield dg.MaterializeResult(asset_key=analytics_key("episode_candidates"), metadata={
        "dagster/row_count": n, "aggregates_recomputed": ", ".join(recomputed) or "none",
        "top candidates": dg.MetadataValue.md(markdown_table(top, 10)),
        "config": dg.MetadataValue.json({k: v for k, v in cfg.__dict__.items()})})
    counts = events.group_by("event_kind", "entity_kind").len().sort("event_kind", "entity_kind")
    yield dg.MaterializeResult(asset_key=analytics_key("episode_candidate_events"), metadata={
        "dagster/row_count": n_events, "by kind": dg.MetadataValue.md(markdown_table(counts, 20))})


@dg.asset_check(
    asset=analytics_key("episode_candidates"),
    name="candidates_consistent",
    blocking=True,
    pool=WRITER_POOL,
    automation_condition=dg.AutomationCondition.eager(),
    additional_deps=[analytics_key("episode_candidate_events")],
    description="Ranks 1..n by falling severity; start <= end; candidates do not overlap; "
    "falls and worst moves are declines dated inside their candidate; every candidate "
    "has events and every event a candidate.",
)
def candidates_consistent(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    frames = CHECK_INPUTS.read_whole(warehouse, "episode_candidates", "episode_candidate_events")
    problems = candidate_problems(frames["episode_candidates"],
                                  frames["episode_candidate_events"])
    return dg.AssetCheckResult(passed=not problems, metadata={
        "candidates": frames["episode_candidates"].height,
        "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems[:30]) or "none")})
