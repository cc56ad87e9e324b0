"""Per episode: why it fell, by factor (market beta, valuation, AI theme), per window and
market, and each basket's return split into those parts."""

import datetime as dt

import dagster as dg
import polars as pl

from assets import WRITER_POOL
from assets.analytics.decomposition import in_markets
from assets.analytics.table_reads import (
    Inputs,
    Select,
    analytics_key,
    analytics_spec,
    episode_plan,
    facts_last_day,
    finish_plan,
    of_episode,
    per_episode,
    session_days,
    window_end_dates,
    write_planned,
)
from selloff.analytics.baskets import with_episode_baskets
from selloff.analytics.factor_exposures import BETA_LOOKBACK_DAYS, DEFAULT_MARKET_INDEX
from selloff.analytics.factors import compute_factors
from selloff.analytics.windows import window_bounds
from selloff.episode import Episode
from selloff.markdown import markdown_table
from selloff.resources import EpisodesResource, WarehouseResource

INPUTS = Inputs(
    marts=("fct_market_cap_daily", "fct_index_levels_daily", "fct_valuation_multiples_daily",
           "dim_security", "dim_basket_member", "dim_trading_calendar"),
    analytics=("selloff_windows",))


def first_lookback_day(windows: pl.DataFrame, days: pl.DataFrame,
                       index_levels: pl.DataFrame | None) -> dt.date | None:
    """The first day the factor regression reads from fct_market_cap_daily, or None
    (read every day).

    Each (window, market) regresses over its index's last BETA_LOOKBACK_DAYS return days
    up to t0 (`selloff.analytics.factors`); earlier rows only add the same amount to both
    running sums the betas difference. None when a market's index lacks returns: its
    proxy index is built from the market caps themselves, whose history is then needed.
    """
    if index_levels is None or index_levels.height == 0:
        return None
    finite = index_levels.filter(pl.col("return_1d").is_not_null()
                                 & pl.col("return_1d").is_finite())
    have = set(finite["index_id"].unique().to_list())
    bounds = window_bounds(windows, days).drop_nulls("t0_date")
    if bounds.height == 0:
        return None
    if any(DEFAULT_MARKET_INDEX.get(m) not in have for m in bounds["market"].unique().to_list()):
        return None
    by_index = {idx: sorted(g["trade_date"].to_list())
                for (idx,), g in finite.group_by("index_id")}
    first = min(bounds["t0_date"].to_list())
    for market, t0 in bounds.select("market", "t0_date").unique().iter_rows():
        idx = DEFAULT_MARKET_INDEX.get(market)
        if idx is None:
            continue
        before = [d for d in by_index[idx] if d <= t0][-BETA_LOOKBACK_DAYS:]
        if before:
            first = min(first, before[0])
    return first


def _factors_of(eps: tuple[Episode, ...], warehouse: WarehouseResource) -> dict:
    """`compute_factors` of each of `eps` (episode_id -> result)."""
    windows = INPUTS.read_whole(warehouse, "selloff_windows")["selloff_windows"]
    windows = windows.filter(pl.col("episode_id").is_in([e.episode_id for e in eps]))
    days = session_days(INPUTS, warehouse)
    frames = INPUTS.read_whole(warehouse, "fct_index_levels_daily", "dim_security",
                               "dim_basket_member")
    firsts = [first_lookback_day(of_episode(windows, e), in_markets(days, e.markets),
                                 frames.get("fct_index_levels_daily")) for e in eps]
    first = None if not firsts or None in firsts else min(firsts)
    frames.update(INPUTS.read(warehouse, {
        "fct_market_cap_daily": Select(
            "marts", "fct_market_cap_daily",
            ("security_id", "market", "trade_date", "close", "market_cap_local",
             "market_cap_usd", "return_1d"),
            None if first is None else f"trade_date >= DATE '{first.isoformat()}'"),
        "fct_valuation_multiples_daily": Select(
            "marts", "fct_valuation_multiples_daily", ("security_id", "trade_date", "pe_ttm"),
            "trade_date IN (SELECT d FROM __dates)"),
    }, dates=window_end_dates(windows, days)))
    # The betas' running sums are each security's own over the same rows for every
    # episode: computed once, shared.
    sums_cache: dict = {}
    return {e.episode_id: compute_factors(
        of_episode(windows, e), frames["fct_market_cap_daily"],
        frames.get("fct_index_levels_daily"), frames.get("fct_valuation_multiples_daily"),
        frames["dim_security"], with_episode_baskets(frames.get("dim_basket_member"), e.baskets),
        trading_days=in_markets(days, e.markets), sums_cache=sums_cache) for e in eps}


@dg.multi_asset(
    specs=[
        analytics_spec("factor_attribution", INPUTS,
                       "Per episode, window and market: OLS of local log return on "
                       "pre-window beta, z-scored log P/E and is_ai; coefficients, standard "
                       "errors, R², n."),
        analytics_spec("basket_factor_split", INPUTS,
                       "Each basket's cap-weighted return split into market, valuation, AI "
                       "theme and idiosyncratic parts that add up to it."),
    ],
    group_name="analytics",
    pool=WRITER_POOL,
)
def factor_attribution_asset(episodes: EpisodesResource, warehouse: WarehouseResource):
    # Only the columns the regression uses, and only the days from the earliest beta
    # lookback on (when every market's index has returns; a market regressed on the
    # cap-weighted proxy needs the whole history to find its lookback). The P/E is read
    # at the window ends only (it is taken at t0).
    all_eps = episodes.load()
    plan = episode_plan(warehouse, "factor_attribution", all_eps, "factor_attribution",
                        "basket_factor_split", last_read=facts_last_day)
    eps = plan.of(all_eps)
    # Nothing is read when every episode is kept (a day past their spans).
    results = _factors_of(eps, warehouse) if eps else {}
    attribution = per_episode(eps, lambda e: results[e.episode_id].attribution)
    split = per_episode(eps, lambda e: results[e.episode_id].basket_split)
    n_att = write_planned(warehouse, plan, "factor_attribution", attribution)
    n_split = write_planned(warehouse, plan, "basket_factor_split", split)
    finish_plan(warehouse, plan, all_eps)
    yield dg.MaterializeResult(asset_key=analytics_key("factor_attribution"), metadata={
        "dagster/row_count": n_att, **plan.metadata(), "preview": dg.MetadataValue.md(markdown_table(attribution, 20))})
    yield dg.MaterializeResult(asset_key=analytics_key("basket_factor_split"), metadata={
        "dagster/row_count": n_split, **plan.metadata(), "preview": dg.MetadataValue.md(markdown_table(split, 20))})
