"""Sell-offs found in the whole data: candidate episodes, ranked (selloff.analytics.discovery)."""

from typing import Any

import dagster as dg
import polars as pl

from assets import WRITER_POOL
from assets.analytics.table_reads import Inputs, Select, analytics_key, analytics_spec
from selloff.analytics.discovery import (
    DiscoveryConfigError,
    candidate_problems,
    discover,
    discovery_config,
)
from selloff.markdown import markdown_table
from selloff.markets import market_of_sql
from selloff.resources import WarehouseResource

INPUTS = Inputs(marts=("fct_index_levels_daily", "fct_market_cap_daily", "dim_basket_member"))
CHECK_INPUTS = Inputs(analytics=("episode_candidates", "episode_candidate_events"))
TOP_COLUMNS = ("rank", "candidate_id", "start_date", "end_date", "markets", "fall_return",
               "fall_entity", "worst_day_return", "worst_day_date", "cap_lost_usd", "severity")


def market_caps(warehouse: WarehouseResource) -> dict[str, pl.DataFrame]:
    """(security_id, trade_date, market_cap_usd) of fct_market_cap_daily per market of
    the security (its id's prefix, as `caps_by_market` splits them); {} without it."""
    return INPUTS.read_split(warehouse, Select(
        "marts", "fct_market_cap_daily", ("security_id", "trade_date", "market_cap_usd")),
        market_of_sql("security_id"))


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
    candidates, events = discover(frames.get("fct_index_levels_daily"),
                                  market_caps(warehouse), frames.get("dim_basket_member"), cfg)
    n = warehouse.write("analytics", "episode_candidates", candidates)
    n_events = warehouse.write("analytics", "episode_candidate_events", events)
    top = candidates.head(10).select(TOP_COLUMNS).with_columns(
        (pl.col("cap_lost_usd") / 1e9).round(1).alias("cap_lost_usd"))
    yield dg.MaterializeResult(asset_key=analytics_key("episode_candidates"), metadata={
        "dagster/row_count": n, "top candidates": dg.MetadataValue.md(markdown_table(top, 10)),
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
