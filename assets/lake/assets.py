"""`lake/raw/*` after the extract assets, `lake/marts/*` after the dbt marts,
`lake/analytics/*` after the analytics tables (selloff/lake.py).

All three replace their tables whole on every run (a streaming Parquet write, selloff/lake.py),
and the lake then never holds a mix of two runs' rows.
"""

import dagster as dg
import polars as pl

from assets import WRITER_POOL
from selloff import dbt_runner, lake
from selloff.analytics.tables import TABLE_SCHEMAS as ANALYTICS_TABLES
from selloff.contracts import DATASETS
from selloff.markdown import markdown_table
from selloff.marts import MART_KEYS
from selloff.resources import WarehouseResource

RAW_TABLES = (*DATASETS, "trading_calendar")


def _written(tables: list[lake.LakeTable]) -> dict[str, dg.MetadataValue]:
    return {
        "tables": dg.MetadataValue.md(markdown_table(pl.DataFrame(
            [(t.table, t.rows, ", ".join(t.partition_by) or "-", t.files) for t in tables],
            schema={"table": pl.Utf8, "rows": pl.Int64, "partition_by": pl.Utf8,
                    "files": pl.Int64}, orient="row"), max_rows=None)),
        "rows": sum(t.rows for t in tables),
    }


@dg.asset(
    key=["lake", "raw"],
    group_name="lake",
    deps=[dg.AssetKey(["raw", t]) for t in RAW_TABLES],
    pool=WRITER_POOL,
    kinds={"parquet", "duckdb"},
    description="The raw layer as hive-partitioned Parquet (<lake>/raw/<table>/market=../"
    "month=../part-0.parquet), readable by Spark, Trino or DuckDB without the DuckDB file. "
    "SELLOFF_LAKE_DIR sets the root (default <project>/lake).",
)
def lake_raw(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = warehouse.settings()
    written = dbt_runner.write_raw_lake(settings)
    context.log.info(f"wrote {len(written)} raw tables to {settings.lake}/raw")
    return dg.MaterializeResult(metadata={"path": settings.lake + "/raw", **_written(written)})


@dg.asset(
    key=["lake", "marts"],
    group_name="lake",
    deps=[dg.AssetKey(["marts", m]) for m in MART_KEYS],
    pool=WRITER_POOL,
    kinds={"parquet"},
    description="The dbt marts as hive-partitioned Parquet (<lake>/marts/<table>/...), from "
    "whichever engine built them (SELLOFF_DBT_TARGET: the DuckDB build file, or Spark's "
    "Parquet tables).",
)
def lake_marts(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = warehouse.settings()
    if settings.is_spark:
        written = [lake.write_frame(df, lake.table_path(settings.lake, "marts", table), table)
                   for table in MART_KEYS
                   if (df := dbt_runner.read_spark_table(settings, "marts", table)) is not None]
    else:
        with warehouse.connect(read_only=True) as con:
            written = lake.write_schema(con, "marts", settings.lake, tables=list(MART_KEYS))
    missing = sorted(set(MART_KEYS) - {t.table for t in written})
    if missing:
        raise dg.Failure(f"marts not built by {settings.dbt_target}: {', '.join(missing)}")
    context.log.info(f"wrote {len(written)} marts ({settings.dbt_target}) to {settings.lake}/marts")
    return dg.MaterializeResult(metadata={"path": settings.lake + "/marts",
                                          "engine": settings.dbt_target, **_written(written)})


@dg.asset(
    key=["lake", "analytics"],
    group_name="lake",
    deps=[dg.AssetKey(["analytics", t]) for t in ANALYTICS_TABLES],
    pool=WRITER_POOL,
    kinds={"parquet", "duckdb"},
    description="The analytics tables as Parquet, same layout as raw and marts "
    "(<lake>/analytics/<table>/market=../month=../part-0.parquet where the table has a "
    "market or a date column, else one file), each swapped in whole: the main outputs for "
    "Spark, Trino or polars without the DuckDB file.",
)
def lake_analytics(context: dg.AssetExecutionContext,
                   warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = warehouse.settings()
    # The analytics are polars tables in the build file whichever engine ran dbt.
    with warehouse.connect() as con:
        written = lake.write_schema(con, "analytics", settings.lake,
                                    tables=list(ANALYTICS_TABLES))
    missing = sorted(set(ANALYTICS_TABLES) - {t.table for t in written})
    if missing:
        raise dg.Failure(f"analytics tables not built: {', '.join(missing)}")
    context.log.info(f"wrote {len(written)} analytics tables to {settings.lake}/analytics")
    return dg.MaterializeResult(metadata={"path": settings.lake + "/analytics",
                                          **_written(written)})


lake_assets = [lake_raw, lake_marts, lake_analytics]
