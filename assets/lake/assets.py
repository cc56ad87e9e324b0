"""`lake/raw/*` after the extract assets, `lake/marts/*` after the dbt marts,
`lake/analytics/*` after the analytics tables (selloff/lake.py).

A full build replaces every table whole (a streaming Parquet write, selloff/lake.py). After a
windowed refresh, raw and marts rewrite only what the refresh changed (selloff.refresh_state's
ledger since the layer's last write): a month-partitioned table only its `market=/month=`
folders that hold a changed day, each swapped in by rename; a raw table the ledger does not
name (reference data re-landed with the same content) is left as it is. A reader then sees
each partition from one run, never half of one.
"""

import dataclasses
import datetime as dt
import json
from pathlib import Path

import dagster as dg
import polars as pl

from assets import WRITER_POOL
from selloff import dbt_runner, lake, refresh_state
from selloff.analytics.tables import TABLE_SCHEMAS as ANALYTICS_TABLES
from selloff.contracts import DATASETS
from selloff.episode import FACTS_LOOKAHEAD
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
    changes = _changes(warehouse, "raw")
    if changes.everything:
        written = dbt_runner.write_raw_lake(settings)
        how = {t.table: "whole" for t in written}
    else:
        written, how = [], {}
        with warehouse.connect(read_only=True) as con:
            for table in _present(con, "raw", RAW_TABLES):
                dest = lake.table_path(settings.lake, "raw", table)
                if not changes.changed(table) and (Path(dest) / lake.META_FILE).is_file():
                    how[table] = "unchanged, kept"
                    continue
                part = None
                if table not in changes.whole:
                    part = _write_spans(con, f"raw.{table}", dest, table,
                                        changes.datasets.get(table, []))
                if part is None:
                    part = lake.write_relation(con, f"raw.{table}", dest, table)
                    how[table] = "whole"
                else:
                    how[table] = "changed months"
                written.append(part)
    _mark(warehouse, "raw", changes.seq)
    context.log.info(f"wrote {len(written)} raw tables to {settings.lake}/raw")
    return dg.MaterializeResult(metadata={"path": settings.lake + "/raw", **_written(written),
                                          "written": dg.MetadataValue.json(how)})


LEDGER_MARK = "_selloff_ledger.json"


def _changes(warehouse: WarehouseResource, layer: str) -> refresh_state.Changes:
    """What changed since this layer of the lake was last written from this build file:
    everything when the lake folder's mark names another file or another ledger seq (a
    lake shared by two warehouses, or written by a run this ledger does not know)."""
    settings = warehouse.settings()
    with warehouse.connect() as con:
        changes = refresh_state.changes_since(con, f"lake_{layer}")
    mark = Path(settings.lake) / layer / LEDGER_MARK
    if lake.is_remote(settings.lake) or not mark.is_file():
        return dataclasses.replace(changes, everything=True)
    try:
        seen = json.loads(mark.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return dataclasses.replace(changes, everything=True)
    if seen != {"warehouse": str(warehouse.build_path), "seq": _consumed(warehouse, layer)}:
        return dataclasses.replace(changes, everything=True)
    return changes


def _consumed(warehouse: WarehouseResource, layer: str) -> int | None:
    with warehouse.connect() as con:
        return refresh_state.consumed_seq(con, f"lake_{layer}")


def _mark(warehouse: WarehouseResource, layer: str, seq: int) -> None:
    """Record, in the build file and beside the lake layer, that it reflects `seq`."""
    with warehouse.connect() as con:
        refresh_state.mark_seq(con, f"lake_{layer}", seq)
    settings = warehouse.settings()
    if lake.is_remote(settings.lake):
        return
    mark = Path(settings.lake) / layer / LEDGER_MARK
    mark.parent.mkdir(parents=True, exist_ok=True)
    tmp = mark.with_name(f".{mark.name}.tmp")
    tmp.write_text(json.dumps({"warehouse": str(warehouse.build_path), "seq": seq}),
                   encoding="utf-8")
    tmp.replace(mark)


def _present(con, schema: str, tables) -> list[str]:
    rows = con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
                       "ORDER BY table_name", [schema]).fetchall()
    return [r[0] for r in rows if r[0] in tables]


def _write_spans(con, relation: str, dest: str, table: str,
                 spans: list[tuple[dt.date, dt.date | None, tuple[str, ...]]]
                 ) -> lake.LakeTable | None:
    """The months of each changed span rewritten (lake.write_months); None when a whole
    write is needed instead."""
    out = None
    for first, last, markets in spans:
        out = lake.write_months(con, relation, dest, table, first, last, markets)
        if out is None:
            return None
    return out


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
    changes = _changes(warehouse, "marts")
    how: dict[str, str] = {}
    if not (settings.is_spark or changes.any_whole):
        # The daily facts were rebuilt from the first changed day to the end of the data
        # (dbt_project/macros/incremental_window.sql), in every market: the months from
        # that day's on are rewritten; the other marts (dims, small) whole.
        first = None if changes.first is None else changes.first - FACTS_LOOKAHEAD
        written = []
        with warehouse.connect(read_only=True) as con:
            for table in _present(con, "marts", MART_KEYS):
                dest = lake.table_path(settings.lake, "marts", table)
                part = (None if first is None else
                        lake.write_months(con, f"marts.{table}", dest, table, first, None))
                how[table] = "changed months" if part is not None else "whole"
                written.append(part or lake.write_relation(con, f"marts.{table}", dest, table))
    elif settings.is_spark:
        written = [lake.write_frame(df, lake.table_path(settings.lake, "marts", table), table)
                   for table in MART_KEYS
                   if (df := dbt_runner.read_spark_table(settings, "marts", table)) is not None]
    else:
        with warehouse.connect(read_only=True) as con:
            written = lake.write_schema(con, "marts", settings.lake, tables=list(MART_KEYS))
    missing = sorted(set(MART_KEYS) - {t.table for t in written})
    if missing:
        raise dg.Failure(f"marts not built by {settings.dbt_target}: {', '.join(missing)}")
    _mark(warehouse, "marts", changes.seq)
    context.log.info(f"wrote {len(written)} marts ({settings.dbt_target}) to {settings.lake}/marts")
    return dg.MaterializeResult(metadata={"path": settings.lake + "/marts",
                                          "engine": settings.dbt_target, **_written(written),
                                          "written": dg.MetadataValue.json(
                                              how or {t.table: "whole" for t in written})})


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
