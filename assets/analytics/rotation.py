"""Per episode: where the money went, by sector group and P/E quintile, per window."""

import dagster as dg
import polars as pl

from assets.analytics.decomposition import in_markets
from assets.analytics.table_reads import (
    Inputs,
    Select,
    analytics_asset,
    episode_plan,
    facts_last_day,
    finish_plan,
    of_episode,
    per_episode,
    session_days,
    window_end_dates,
    write_planned,
)
from selloff.analytics.rotation import rotation
from selloff.episode import Episode
from selloff.markdown import markdown_table
from selloff.markets import market_of_sql
from selloff.resources import EpisodesResource, WarehouseResource

INPUTS = Inputs(
    marts=("fct_market_cap_daily", "fct_valuation_multiples_daily", "dim_security",
           "fct_fund_flows_daily", "dim_trading_calendar"),
    analytics=("selloff_windows",))


@analytics_asset(
    "rotation", INPUTS,
    description="Per episode: returns and net flows by sector group and pre-window P/E "
    "quintile per window and market, the 'high to low' spread (lowest minus highest "
    "quintile), flows by investor type.",
)
def rotation_asset(episodes: EpisodesResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    # Window returns and P/E are read at the window ends. Flows are the largest input
    # (60 M rows at 18,000 x 10): read per episode, only the two scopes the tables use,
    # only the episode's markets and only inside the span of its windows (t0, t1], so
    # one episode's flows are in memory at a time (7.3 GB peak at 18,000 x 10 when every
    # episode's span was read at once).
    all_eps = episodes.load()
    plan = episode_plan(warehouse, "rotation", all_eps, "rotation", last_read=facts_last_day)
    eps = plan.of(all_eps)
    windows = INPUTS.read_whole(warehouse, "selloff_windows")["selloff_windows"]
    windows = windows.filter(pl.col("episode_id").is_in([e.episode_id for e in eps]))
    days = session_days(INPUTS, warehouse)
    on_ends = "trade_date IN (SELECT d FROM __dates)"
    frames = INPUTS.read(warehouse, {
        "fct_market_cap_daily": Select(
            "marts", "fct_market_cap_daily",
            ("security_id", "trade_date", "close", "market_cap_usd"), on_ends),
        "fct_valuation_multiples_daily": Select(
            "marts", "fct_valuation_multiples_daily", ("security_id", "trade_date", "pe_ttm"),
            on_ends),
        "dim_security": Select("marts", "dim_security"),
    }, dates=window_end_dates(windows, days))

    def of(episode: Episode) -> pl.DataFrame:
        ends = window_end_dates(of_episode(windows, episode), days)
        markets = ", ".join(f"'{m}'" for m in episode.markets)  # registry codes, not data
        span = (f"flow_scope IN ('security', 'market') AND trade_date > DATE '{ends[0]}' "
                f"AND trade_date <= DATE '{ends[-1]}' "
                f"AND {market_of_sql('entity_id')} IN ({markets})" if ends else "false")
        flows = INPUTS.read(warehouse, {"fct_fund_flows_daily": Select(
            "marts", "fct_fund_flows_daily",
            ("flow_scope", "entity_id", "trade_date", "investor_type", "net_buy_usd", "period"),
            span)}).get("fct_fund_flows_daily")
        return rotation(
            of_episode(windows, episode), frames["fct_market_cap_daily"],
            frames.get("fct_valuation_multiples_daily"), frames["dim_security"], flows,
            trading_days=in_markets(days, episode.markets))

    out = per_episode(eps, of)
    rows = write_planned(warehouse, plan, "rotation", out)
    finish_plan(warehouse, plan, all_eps)
    spread = out.filter(out["dimension"] == "spread") if out.height else out
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, **plan.metadata(), "high_to_low_spreads": dg.MetadataValue.md(markdown_table(spread, 30))})
