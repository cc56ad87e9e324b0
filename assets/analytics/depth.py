"""Why it fell and where the money went: factor attribution, rotation, valuation spread."""

import datetime as dt

import dagster as dg
import polars as pl

from assets import WRITER_POOL
from assets.analytics.inputs import (
    Select,
    analytics_asset,
    analytics_key,
    mart_key,
    read_selected,
    session_days,
    table_refs,
    window_end_dates,
)
from selloff.analytics.factors import BETA_LOOKBACK_DAYS, DEFAULT_MARKET_INDEX, compute_factors
from selloff.analytics.rotation import rotation
from selloff.analytics.valuation_spread import valuation_spread
from selloff.analytics.windows import window_bounds
from selloff.markdown import markdown_table
from selloff.resources import WarehouseResource

_FACTOR_INPUTS = ("fct_market_cap_daily", "fct_index_levels_daily",
                  "fct_valuation_multiples_daily", "dim_security", "dim_basket_member",
                  "dim_trading_calendar")


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
    if any(idx not in have for idx in DEFAULT_MARKET_INDEX.values()):
        return None
    bounds = window_bounds(windows, days).drop_nulls("t0_date")
    if bounds.height == 0:
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


@dg.multi_asset(
    specs=[
        dg.AssetSpec(analytics_key("factor_attribution"), automation_condition=dg.AutomationCondition.eager(),
                     deps=[analytics_key("selloff_windows"), *(mart_key(m) for m in _FACTOR_INPUTS)],
                     description="Per window and market: OLS of local log return on pre-window "
                     "beta, z-scored log P/E and is_ai; coefficients, standard errors, R², n."),
        dg.AssetSpec(analytics_key("basket_factor_split"), automation_condition=dg.AutomationCondition.eager(),
                     deps=[analytics_key("selloff_windows")],
                     description="Each basket's cap-weighted return split into market, "
                     "valuation, AI theme and idiosyncratic parts that add up to it."),
    ],
    group_name="analytics",
    pool=WRITER_POOL,
)
def factor_attribution_asset(warehouse: WarehouseResource):
    # Only the columns the regression uses, and only the days from the earliest beta
    # lookback on (when every market's index has returns; a market regressed on the
    # cap-weighted proxy needs the whole history to find its lookback). The P/E is read
    # at the window ends only (it is taken at t0).
    windows = warehouse.read("analytics", "selloff_windows")
    days = session_days(warehouse)
    frames = read_selected(warehouse, {m: Select("marts", m) for m in (
        "fct_index_levels_daily", "dim_security", "dim_basket_member")})
    first = first_lookback_day(windows, days, frames.get("fct_index_levels_daily"))
    frames.update(read_selected(warehouse, {
        "fct_market_cap_daily": Select(
            "marts", "fct_market_cap_daily",
            ("security_id", "market", "trade_date", "close", "market_cap_local",
             "market_cap_usd", "return_1d"),
            None if first is None else f"trade_date >= DATE '{first.isoformat()}'"),
        "fct_valuation_multiples_daily": Select(
            "marts", "fct_valuation_multiples_daily", ("security_id", "trade_date", "pe_ttm"),
            "trade_date IN (SELECT d FROM __dates)"),
    }, dates=window_end_dates(windows, days)))
    result = compute_factors(
        windows, frames["fct_market_cap_daily"],
        frames.get("fct_index_levels_daily"), frames.get("fct_valuation_multiples_daily"),
        frames["dim_security"], frames.get("dim_basket_member"), trading_days=days)
    n_att = warehouse.write("analytics", "factor_attribution", result.attribution)
    n_split = warehouse.write("analytics", "basket_factor_split", result.basket_split)
    yield dg.MaterializeResult(asset_key=analytics_key("factor_attribution"), metadata={
        "rows": n_att, "preview": dg.MetadataValue.md(markdown_table(result.attribution, 20))})
    yield dg.MaterializeResult(asset_key=analytics_key("basket_factor_split"), metadata={
        "rows": n_split, "preview": dg.MetadataValue.md(markdown_table(result.basket_split, 20))})


@analytics_asset(
    "rotation",
    deps=[analytics_key("selloff_windows"), mart_key("fct_market_cap_daily"),
          mart_key("fct_valuation_multiples_daily"), mart_key("dim_security"),
          mart_key("fct_fund_flows_daily"), mart_key("dim_trading_calendar")],
    description="Returns and net flows by sector group and pre-window P/E quintile per window "
    "and market, the 'high to low' spread (lowest minus highest quintile), flows by investor type.",
)
def rotation_asset(warehouse: WarehouseResource) -> dg.MaterializeResult:
    # Window returns and P/E are read at the window ends; flows only inside the span of
    # all windows (t0, t1] and only the two scopes the tables use.
    windows = warehouse.read("analytics", "selloff_windows")
    days = session_days(warehouse)
    ends = window_end_dates(windows, days)
    on_ends = "trade_date IN (SELECT d FROM __dates)"
    flows_in_span = ("flow_scope IN ('security', 'market') AND trade_date > "
                     f"DATE '{ends[0]}' AND trade_date <= DATE '{ends[-1]}'" if ends else "false")
    frames = read_selected(warehouse, {
        "fct_market_cap_daily": Select(
            "marts", "fct_market_cap_daily",
            ("security_id", "trade_date", "close", "market_cap_usd"), on_ends),
        "fct_valuation_multiples_daily": Select(
            "marts", "fct_valuation_multiples_daily", ("security_id", "trade_date", "pe_ttm"),
            on_ends),
        "dim_security": Select("marts", "dim_security"),
        "fct_fund_flows_daily": Select(
            "marts", "fct_fund_flows_daily",
            ("flow_scope", "entity_id", "trade_date", "investor_type", "net_buy_usd", "period"),
            flows_in_span),
    }, dates=ends)
    out = rotation(windows, frames["fct_market_cap_daily"],
                   frames.get("fct_valuation_multiples_daily"), frames["dim_security"],
                   frames.get("fct_fund_flows_daily"), trading_days=days)
    rows = warehouse.write("analytics", "rotation", out)
    spread = out.filter(out["dimension"] == "spread")
    return dg.MaterializeResult(metadata={
        "rows": rows, "high_to_low_spreads": dg.MetadataValue.md(markdown_table(spread, 30))})


@analytics_asset(
    "valuation_spread",
    deps=[mart_key("fct_basket_valuation_daily"), mart_key("fct_index_valuation_daily")],
    description="Per day: cap-weighted P/E of the AI baskets vs the dividend basket or index, "
    "their ratio and its percentile in its own history.",
)
def valuation_spread_asset(warehouse: WarehouseResource) -> dg.MaterializeResult:
    frames = warehouse.read_many(table_refs(
        marts=("fct_basket_valuation_daily", "fct_index_valuation_daily")))
    out = valuation_spread(frames["fct_basket_valuation_daily"], frames.get("fct_index_valuation_daily"))
    rows = warehouse.write("analytics", "valuation_spread", out)
    return dg.MaterializeResult(metadata={"rows": rows,
                                          "latest": dg.MetadataValue.md(markdown_table(out.tail(10), 10))})
