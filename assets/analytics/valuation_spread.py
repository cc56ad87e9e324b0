"""Per episode: the AI baskets' P/E against the dividend reference, day by day."""

import dagster as dg
import polars as pl

from assets.analytics.table_reads import (
    Inputs,
    analytics_asset,
    episode_plan,
    facts_last_day,
    finish_plan,
    per_episode,
    write_planned,
)
from selloff.analytics.valuation_spread import VALUATION_SPREAD_SCHEMA, valuation_spread
from selloff.episode import Episode
from selloff.markdown import markdown_table
from selloff.resources import EpisodesResource, WarehouseResource

INPUTS = Inputs(marts=("fct_basket_valuation_daily", "fct_index_valuation_daily"))


def _spread(episode: Episode, frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    # The episode's own span (drawdown lookback to its last day): the percentile ranks a
    # day in the history the episode looks at, not in whatever the warehouse holds.
    if not episode.valuation.ai_baskets:
        return pl.DataFrame(schema=VALUATION_SPREAD_SCHEMA)
    span = pl.col("trade_date").is_between(episode.detection.drawdown_lookback_start,
                                           episode.last_day)
    basket = frames.get("fct_basket_valuation_daily")
    index = frames.get("fct_index_valuation_daily")
    return valuation_spread(None if basket is None else basket.filter(span),
                            None if index is None else index.filter(span), episode.valuation)


@analytics_asset(
    "valuation_spread", INPUTS,
    description="Per episode and day: cap-weighted P/E of its AI baskets (`valuation` in "
    "episode.yaml) vs the dividend basket or index, their ratio and its percentile in the "
    "episode's span. A basket P/E below its earnings coverage is null upstream, so no row.",
)
def valuation_spread_asset(episodes: EpisodesResource,
                           warehouse: WarehouseResource) -> dg.MaterializeResult:
    all_eps = episodes.load()
    plan = episode_plan(warehouse, "valuation_spread", all_eps, "valuation_spread",
                        last_read=facts_last_day)
    eps = plan.of(all_eps)
    frames = (INPUTS.read_whole(warehouse, "fct_basket_valuation_daily",
                                "fct_index_valuation_daily") if eps else {})
    out = per_episode(eps, lambda e: _spread(e, frames))
    rows = write_planned(warehouse, plan, "valuation_spread", out)
    finish_plan(warehouse, plan, all_eps)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, **plan.metadata(), "latest": dg.MetadataValue.md(markdown_table(out.tail(10), 10))})
