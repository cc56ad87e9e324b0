"""The mart and analytics tables the analytics assets read, by name."""

from __future__ import annotations

import dagster as dg
import polars as pl

from assets import WRITER_POOL

MARTS = (
    "dim_security", "dim_index", "dim_basket_member", "dim_trading_calendar",
    "fct_market_cap_daily", "fct_fund_flows_daily", "fct_fundamentals_quarterly",
    "fct_valuation_multiples_daily", "fct_basket_valuation_daily", "fct_index_levels_daily",
    "fct_index_valuation_daily",
)


def analytics_asset(name: str, deps: list[dg.AssetKey], description: str):
    """@dg.asset for a polars table in `analytics`: the one writer pool, and recomputed
    when its inputs change (eager automation)."""
    return dg.asset(
        key=analytics_key(name),
        group_name="analytics",
        deps=deps,
        pool=WRITER_POOL,
        kinds={"polars", "duckdb"},
        automation_condition=dg.AutomationCondition.eager(),
        description=description,
    )


def mart_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["marts", name])


def analytics_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["analytics", name])


def table_refs(marts: tuple[str, ...] = (), analytics: tuple[str, ...] = ()) -> dict[str, tuple[str, str]]:
    """{name: (schema, table)} for WarehouseResource.read_many."""
    refs = {m: ("marts", m) for m in marts}
    refs.update({a: ("analytics", a) for a in analytics})
    return refs


def trading_days(frames: dict) -> pl.DataFrame | None:
    """(market, trade_date) sessions from dim_trading_calendar, for window t0/t1."""
    cal = frames.get("dim_trading_calendar")
    if cal is None:
        return None
    return cal.filter(pl.col("is_trading_day")).select(
        "market", pl.col("calendar_date").alias("trade_date"))
