"""The mart and analytics tables the analytics assets read, by name."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from assets import WRITER_POOL
from selloff import dbt_runner, lake
from selloff import warehouse as wh
from selloff.analytics.windows import window_bounds
from selloff.markets import market_of_sql
from selloff.resources import WarehouseResource
from selloff.settings import Settings

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


@dataclass(frozen=True)
class Select:
    """The part of one table a step needs: some columns, and rows matching `where`.

    `where` is SQL over the table's columns; it may name `__dates(d)` and `__ids(id)` (the
    `dates` and `ids` given to `read_selected`, so a filter on many values is a semi-join).
    Columns the table lacks are left out, so the polars function's own column check
    reports them, as it did when it got the whole table.
    """

    schema: str
    table: str
    columns: tuple[str, ...] | None = None
    where: str | None = None


def read_selected(warehouse: WarehouseResource, selects: dict[str, Select],
                  dates: list[dt.date] | None = None,
                  ids: list[str] | None = None) -> dict[str, pl.DataFrame]:
    """Read the selected columns and rows of several tables in DuckDB, in one connection.

    The projection and the filter run in DuckDB (on the build file, or on Spark's Parquet
    files when dbt ran on Spark), so only what the step uses reaches polars. Absent tables
    are left out, as in `WarehouseResource.read_many`.
    """
    settings = warehouse.settings()
    out: dict[str, pl.DataFrame] = {}
    with warehouse.connect() as con:
        if dates is not None:
            con.register("__dates", pl.DataFrame({"d": sorted(set(dates))},
                                                 schema={"d": pl.Date}).to_arrow())
        if ids is not None:
            con.register("__ids", pl.DataFrame({"id": sorted(set(ids))},
                                               schema={"id": pl.Utf8}).to_arrow())
        for name, sel in selects.items():
            source = _source(con, settings, sel.schema, sel.table)
            if source is None:
                continue
            present = [r[0] for r in con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()]
            cols = present if sel.columns is None else [c for c in sel.columns if c in present]
            query = f"SELECT {', '.join(_quote(c) for c in cols)} FROM {source}"
            if sel.where:
                query += f" WHERE {sel.where}"
            out[name] = con.sql(query).pl()
    return out


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source(con: duckdb.DuckDBPyConnection, settings: Settings, schema: str,
            table: str) -> str | None:
    """The FROM clause of a table, or None if it does not exist."""
    if settings.is_spark and schema in dbt_runner.DBT_SCHEMAS:
        # dbt ran on Spark: its tables are Parquet folders, read the way `lake` reads them.
        folder = dbt_runner.spark_table_dir(settings, schema, table)
        if lake.is_remote(folder):
            return f"read_parquet('{folder.rstrip('/')}/*.parquet')"
        files = sorted(str(p) for p in Path(folder).glob("*.parquet")
                       if not p.name.startswith(("_", ".")))
        if not files:
            return None
        return "read_parquet([" + ", ".join(f"'{f}'" for f in files) + "])"
    if not wh.table_exists(con, schema, table):
        return None
    return f"{_quote(schema)}.{_quote(table)}"


def window_end_dates(windows: pl.DataFrame, days: pl.DataFrame) -> list[dt.date]:
    """Every t0 and t1 of every window and market: the only days the window-level
    figures (decomposition, window returns, P/E at t0) read from the daily facts."""
    bounds = window_bounds(windows, days)
    return sorted({d for col in ("t0_date", "t1_date")
                   for d in bounds[col].drop_nulls().to_list()})


def session_days(warehouse: WarehouseResource) -> pl.DataFrame:
    """(market, trade_date) the window bounds use: the exchange calendar when
    dim_trading_calendar exists, else the days with a close in fct_market_cap_daily
    (what `data_trading_days` computes from the whole table, here computed in DuckDB)."""
    frames = read_selected(warehouse, {
        "dim_trading_calendar": Select("marts", "dim_trading_calendar",
                                       ("market", "calendar_date", "is_trading_day"))})
    days = trading_days(frames)
    if days is not None:
        return days
    with warehouse.connect() as con:
        source = _source(con, warehouse.settings(), "marts", "fct_market_cap_daily")
        if source is None:
            return pl.DataFrame(schema={"market": pl.Utf8, "trade_date": pl.Date})
        return con.sql(
            f"SELECT DISTINCT coalesce(market, {market_of_sql('security_id')}) AS market, "
            f"trade_date FROM {source} WHERE close IS NOT NULL ORDER BY market, trade_date"
        ).pl()
