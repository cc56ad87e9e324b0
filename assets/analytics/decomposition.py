"""Sell-off windows, the exact decomposition, its roll-ups, and the blocking reconciliation."""


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
from selloff.analytics import decompose, load_window_config, reconcile, rollup, selloff_windows
from selloff.markdown import markdown_table
from selloff.resources import WarehouseResource


@analytics_asset(
    "selloff_windows",
    deps=[mart_key("fct_index_levels_daily"), mart_key("fct_market_cap_daily"),
          mart_key("dim_basket_member")],
    description="Named windows (selloff/config/windows.yaml) and windows found in the data: "
    "worst day and calendar week per index and basket, each basket's drawdown.",
)
def selloff_windows_asset(warehouse: WarehouseResource) -> dg.MaterializeResult:
    # Basket levels need the whole history, but only of basket members and one column.
    frames = read_selected(warehouse, {
        "fct_index_levels_daily": Select("marts", "fct_index_levels_daily"),
        "dim_basket_member": Select("marts", "dim_basket_member")})
    members = frames.get("dim_basket_member")
    if members is not None and members.height:
        frames.update(read_selected(warehouse, {"fct_market_cap_daily": Select(
            "marts", "fct_market_cap_daily", ("security_id", "trade_date", "market_cap_usd"),
            "security_id IN (SELECT id FROM __ids)")},
            ids=members["security_id"].unique().to_list()))
    config = load_window_config()
    windows = selloff_windows(config, frames.get("fct_index_levels_daily"),
                              frames.get("fct_market_cap_daily"), frames.get("dim_basket_member"))
    rows = warehouse.write("analytics", "selloff_windows", windows)
    detected = windows.filter(pl.col("kind") != "named")
    return dg.MaterializeResult(metadata={
        "rows": rows,
        "main_window": config.main.window_id,
        "detected": dg.MetadataValue.md(markdown_table(
            detected.select("window_id", "market", "kind", "start_date", "end_date"), 40)),
    })


@dg.multi_asset(
    specs=[
        dg.AssetSpec(analytics_key("selloff_decomposition"), automation_condition=dg.AutomationCondition.eager(),
                     deps=[analytics_key("selloff_windows"), mart_key("fct_market_cap_daily"),
                           mart_key("fct_valuation_multiples_daily"), mart_key("dim_security"),
                           mart_key("dim_trading_calendar")],
                     description="Per window and security: USD market-cap change split into "
                     "price, shares and FX; the local part into re-rating, earnings and "
                     "no-earnings-basis (DESIGN §5)."),
        dg.AssetSpec(analytics_key("selloff_exclusions"), automation_condition=dg.AutomationCondition.eager(),
                     deps=[analytics_key("selloff_windows")],
                     description="Securities left out of a window and why (no price, no share "
                     "count, no FX): a missing figure is never defaulted."),
    ],
    group_name="analytics",
    pool=WRITER_POOL,
)
def selloff_decomposition_asset(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    # The decomposition reads the daily facts at each window's t0 and t1 only: those rows
    # and columns are selected in DuckDB; the maths in `decompose` is unchanged.
    windows = warehouse.read("analytics", "selloff_windows")
    days = session_days(warehouse)
    on_ends = "trade_date IN (SELECT d FROM __dates)"
    frames = read_selected(warehouse, {
        "fct_market_cap_daily": Select(
            "marts", "fct_market_cap_daily",
            ("security_id", "trade_date", "close", "shares", "usd_per_unit"), on_ends),
        "fct_valuation_multiples_daily": Select(
            "marts", "fct_valuation_multiples_daily",
            ("security_id", "trade_date", "net_income_ttm"), on_ends),
        "dim_security": Select("marts", "dim_security", ("security_id", "market")),
    }, dates=window_end_dates(windows, days))
    result = decompose(windows, frames["fct_market_cap_daily"],
                       frames.get("fct_valuation_multiples_daily"), frames["dim_security"],
                       trading_days=days)
    n = warehouse.write("analytics", "selloff_decomposition", result.frame)
    n_ex = warehouse.write("analytics", "selloff_exclusions", result.excluded)
    totals = result.exclusion_totals()
    if n_ex:
        context.log.warning(f"{n_ex} (window, security) pairs excluded: {totals}")
    yield dg.MaterializeResult(asset_key=analytics_key("selloff_decomposition"), metadata={
        "rows": n, "windows": result.frame["window_id"].n_unique(),
        "securities": result.frame["security_id"].n_unique()})
    yield dg.MaterializeResult(asset_key=analytics_key("selloff_exclusions"), metadata={
        "rows": n_ex, **{f"excluded: {k}": v for k, v in totals.items()}})


@analytics_asset(
    "selloff_rollup",
    deps=[analytics_key("selloff_decomposition"), mart_key("dim_security"),
          mart_key("dim_basket_member")],
    description="Decomposition amounts summed by market, sector, sector group, basket and "
    "is_ai, with each group's share of the window's total change.",
)
def selloff_rollup_asset(warehouse: WarehouseResource) -> dg.MaterializeResult:
    frames = warehouse.read_many(table_refs(marts=("dim_security", "dim_basket_member"),
                                            analytics=("selloff_decomposition",)))
    out = rollup(frames["selloff_decomposition"], frames["dim_security"],
                 frames.get("dim_basket_member"))
    rows = warehouse.write("analytics", "selloff_rollup", out)
    main = load_window_config().main.window_id
    head = (out.filter((pl.col("window_id") == main) & pl.col("group_kind").is_in(["market", "basket"]))
            .sort("change_usd").select("group_kind", "group_id", "n_securities", "change_usd",
                                       "share_of_total"))
    return dg.MaterializeResult(metadata={"rows": rows, f"main window {main}": dg.MetadataValue.md(
        markdown_table(head, 30))})


@dg.asset_check(
    asset=analytics_key("selloff_rollup"),
    name="reconciliation",
    blocking=True,
    pool=WRITER_POOL,
    automation_condition=dg.AutomationCondition.eager(),
    additional_deps=[analytics_key("selloff_decomposition"), mart_key("dim_basket_member")],
    description="price + shares + fx = change and re-rating + earnings + no-earnings-basis = "
    "price + shares per security (1e-9 relative); group rows = sums of their members.",
)
def reconciliation_check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    frames = warehouse.read_many(table_refs(marts=("dim_basket_member",),
                                            analytics=("selloff_decomposition", "selloff_rollup")))
    result = reconcile(frames["selloff_decomposition"], frames["selloff_rollup"],
                       frames.get("dim_basket_member"))
    return dg.AssetCheckResult(
        passed=result.ok,
        description="reconciled" if result.ok else "; ".join(result.failures[:5]),
        metadata={**result.metrics, "failures": dg.MetadataValue.json(result.failures[:50])},
    )
