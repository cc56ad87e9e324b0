"""Why it fell and where the money went: factor attribution, rotation, valuation spread."""

import dagster as dg

from assets import WRITER_POOL
from assets.analytics.inputs import (
    analytics_asset,
    analytics_key,
    mart_key,
    table_refs,
    trading_days,
)
from selloff.analytics.factors import compute_factors
from selloff.analytics.rotation import rotation
from selloff.analytics.valuation_spread import valuation_spread
from selloff.report.html_report import markdown_table
from selloff.resources import WarehouseResource

_FACTOR_INPUTS = ("fct_market_cap_daily", "fct_index_levels_daily",
                  "fct_valuation_multiples_daily", "dim_security", "dim_basket_member",
                  "dim_trading_calendar")


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
    frames = warehouse.read_many(table_refs(marts=_FACTOR_INPUTS, analytics=("selloff_windows",)))
    result = compute_factors(
        frames["selloff_windows"], frames["fct_market_cap_daily"],
        frames.get("fct_index_levels_daily"), frames.get("fct_valuation_multiples_daily"),
        frames["dim_security"], frames.get("dim_basket_member"), trading_days=trading_days(frames))
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
    frames = warehouse.read_many(table_refs(
        marts=("fct_market_cap_daily", "fct_valuation_multiples_daily", "dim_security",
               "fct_fund_flows_daily", "dim_trading_calendar"),
        analytics=("selloff_windows",)))
    out = rotation(frames["selloff_windows"], frames["fct_market_cap_daily"],
                   frames.get("fct_valuation_multiples_daily"), frames["dim_security"],
                   frames.get("fct_fund_flows_daily"), trading_days=trading_days(frames))
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
