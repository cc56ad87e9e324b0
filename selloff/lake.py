"""The Parquet lake: warehouse tables as hive-partitioned Parquet that any engine can read.

Layout (DESIGN §2 layers, one folder per table):

    <lake>/raw/prices_daily/market=US/month=2025-11/part-0.parquet
    <lake>/raw/prices_daily/_selloff_table.json
    <lake>/marts/fct_market_cap_daily/market=US/month=2025-11/part-0.parquet

A table is partitioned by `market` (its own column, else the `<MARKET>:` prefix of its
security, index or entity id) and `month` (yyyy-MM of its date column) when it has them;
a table with neither is one file. Partition values live in the folder names only (hive
style), so Spark, Trino, DuckDB and polars all see them as columns. `_selloff_table.json`
records the table's own columns and which partition columns were derived, so a reader can
give back exactly the warehouse table (Spark and Trino skip files starting with `_`).

A month-partitioned table on a local disk is written in one streaming scan
(`_write_by_months`); other tables, and every table on object storage, by DuckDB's
`COPY ... PARTITION_BY`. Both give the same folders, files, columns and rows.

A table is replaced whole: written beside its folder, then swapped in by rename, so a
reader of a local lake sees the old or the new table. Object-store roots (`s3://...`) are
written in place by DuckDB's httpfs (no rename there; see docs/CLUSTER.md).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from selloff.markets import market_of_sql
from selloff.warehouse import _ident

META_FILE = "_selloff_table.json"
PART_PATTERN = "part-{i}"
# Where a table's market comes from, first match wins: ids are `<MARKET>:<code>` (DESIGN §3).
MARKET_SOURCES = ("market", "security_id", "index_id", "entity_id")
# The date a row belongs to, first match wins: the trading day for daily tables, the
# fiscal period end for filings, the as-of date for share counts.
DATE_SOURCES = ("trade_date", "calendar_date", "rate_date", "as_of_date", "period_end",
                "knowledge_date")


@dataclass(frozen=True)
class Partitioning:
    """How one table is laid out: partition column -> SQL expression over its columns."""

    expressions: dict[str, str]
    derived: tuple[str, ...]

    @property
    def columns(self) -> list[str]:
        return list(self.expressions)


@dataclass(frozen=True)
class LakeTable:
    """What a write produced."""

    table: str
    path: str
    rows: int
    partition_by: tuple[str, ...]
    files: int


def is_remote(root: str | Path) -> bool:
    return "://" in str(root)


def table_path(root: str | Path, layer: str, table: str) -> str:
    """`<root>/<layer>/<table>` as a string (object-store URLs are not filesystem paths)."""
    return f"{str(root).rstrip('/')}/{_ident(layer)}/{_ident(table)}"


def partitioning(columns: Sequence[str]) -> Partitioning:
    """(market, month) partition expressions for a table with these columns."""
    cols = set(columns)
    exprs: dict[str, str] = {}
    derived: list[str] = []
    market = next((c for c in MARKET_SOURCES if c in cols), None)
    if market == "market":
        exprs["market"] = "market"
    elif market is not None:
        exprs["market"] = market_of_sql(market)
        derived.append("market")
    day = next((c for c in DATE_SOURCES if c in cols), None)
    if day is not None:
        if "month" in cols:
            raise ValueError("a table with its own `month` column cannot be month-partitioned")
        exprs["month"] = f"strftime({day}, '%Y-%m')"
        derived.append("month")
    return Partitioning(exprs, tuple(derived))


# DuckDB's memory limit while writing the lake (see `_copy`).
LAKE_MEMORY_LIMIT = "1GB"
# A month-partitioned write (`_write_by_months`) reads DuckDB's rows LAKE_BATCH_ROWS at a
# time and, every LAKE_BUFFER_BYTES read, writes what it holds as a row group to each open
# file: at 5,000 x 5 a daily table's file gets a few row groups of a few thousand rows.
LAKE_BATCH_ROWS = 500_000
LAKE_BUFFER_BYTES = 128 * 2**20
# DuckDB's limit while it only scans for that write: its buffer pool otherwise keeps up
# to LAKE_MEMORY_LIMIT of the table's blocks cached, on top of our buffers.
LAKE_SCAN_MEMORY_LIMIT = "256MB"
# Most rows in one row group (DuckDB's default).
LAKE_ROW_GROUP_ROWS = 122_880
# Partition values written as folder names without escaping. Anything else (NULL, a
# space, `/`, `=`, ...) goes through DuckDB's own hive writer, which escapes it.
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_-]+")


def _sql_string(value: str) -> str:
    # COPY takes no bound parameter for its target; the path comes from settings, not data.
    return "'" + value.replace("'", "''") + "'"


def _copy(con: duckdb.DuckDBPyConnection, relation: str, columns: list[str], dest: str,
          parts: Partitioning) -> None:
    select = ", ".join([*columns, *(f"{e} AS {c}" for c, e in parts.expressions.items()
                                    if c in parts.derived)])
    options = ["FORMAT parquet", f"FILENAME_PATTERN '{PART_PATTERN}'"]
    if parts.columns:
        options.append(f"PARTITION_BY ({', '.join(parts.columns)})")
        options.append("OVERWRITE_OR_IGNORE true")
        target = dest
    else:
        target = f"{dest.rstrip('/')}/part-0.parquet"
    # A bounded buffer: a partitioned COPY of a 10 M-row table otherwise holds GBs of row
    # groups for its open files in the run's process; past the limit DuckDB flushes and
    # spills instead. It lasts for this connection's database only (the lake assets').
    con.execute(f"SET memory_limit = '{LAKE_MEMORY_LIMIT}'")
    con.execute(f"COPY (SELECT {select} FROM {relation}) TO {_sql_string(target)} "
                f"({', '.join(options)})")


class _PartWriters:
    """One open Parquet file per partition, fed pieces of any size: pieces are kept until
    `budget` bytes are held in all, then every held piece goes out as a row group (one per
    file), on `threads` threads. Memory is the budget, whatever the table's size."""

    def __init__(self, budget: int, threads: int) -> None:
        self.budget = budget
        self.held: dict[Path, list[pa.RecordBatch]] = {}
        self.held_bytes = 0
        self.writers: dict[Path, pq.ParquetWriter] = {}
        self.pool = ThreadPoolExecutor(max_workers=max(1, threads))
        self.pending: list[Future[None]] = []

    def add(self, path: Path, piece: pa.RecordBatch) -> None:
        self.held.setdefault(path, []).append(piece)

    def read(self, nbytes: int) -> None:
        """Count what was read from DuckDB: the pieces share (and keep alive) the buffers
        they were cut from, so that, not their own size, is what they hold."""
        self.held_bytes += nbytes
        if self.held_bytes >= self.budget:
            self.flush()

    def flush(self) -> None:
        # The previous round's writes end first: a file takes one row group at a time.
        self.wait()
        self.pending = [self.pool.submit(self._write, path, pieces)
                        for path, pieces in self.held.items()]
        self.held, self.held_bytes = {}, 0

    def wait(self) -> None:
        for job in self.pending:
            job.result()
        self.pending = []

    def _write(self, path: Path, pieces: list[pa.RecordBatch]) -> None:
        # The pieces as chunks of one table, not copied into one: the writer cuts row
        # groups of LAKE_ROW_GROUP_ROWS across chunk boundaries.
        table = pa.Table.from_batches(pieces)
        writer = self.writers.get(path)
        if writer is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # No Arrow schema in the file: readers take the Parquet types, as for DuckDB's
            # files. Dictionary pages for strings only (ids, currencies repeat; prices
            # don't, and trying costs half the write).
            writer = pq.ParquetWriter(
                path, table.schema, compression="snappy", store_schema=False,
                use_dictionary=[f.name for f in table.schema if pa.types.is_large_string(f.type)
                                or pa.types.is_string(f.type)])
            self.writers[path] = writer
        writer.write_table(table, row_group_size=LAKE_ROW_GROUP_ROWS)

    def finish(self) -> None:
        self.flush()
        self.wait()

    def close(self) -> None:
        # Also after an error: the files are then left half written, in the staging
        # folder that the caller removes.
        self.pool.shutdown(wait=True, cancel_futures=True)
        for writer in self.writers.values():
            writer.close()


def _split(batches: list[pa.RecordBatch], part: str) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(partition number, its rows) of some batches whose column `part` (the last) holds
    each row's partition number, small and never null: one stable sort of the numbers
    (numpy's radix sort for 16-bit ones), one Arrow gather of the other columns in that
    order, then zero-copy slices. Rows keep their table order within a partition.

    Arrow all the way: the strings are copied once (the gather), where a polars split
    converted them to its own layout, gathered, concatenated and converted them back."""
    table = pa.Table.from_batches(batches)
    codes = table.column(part).to_numpy()
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    rows = table.drop_columns([part]).take(_arrow_indices(order)).combine_chunks()
    starts = np.flatnonzero(np.diff(codes)) + 1
    bounds = [0, *starts.tolist(), len(codes)]
    for lo, hi in itertools.pairwise(bounds):
        if hi > lo:
            yield int(codes[lo]), rows.slice(lo, hi - lo).to_batches()[0]


def _arrow_indices(order: np.ndarray) -> pa.Array:
    """numpy's int64 indices as an Arrow array over the same buffer (zero-copy).

    Not `pa.array(order)`: given an ndarray, pyarrow first asks its pandas shim whether
    it is a pandas object, and that imports pyarrow.pandas_compat and pins pandas' classes
    and modules in pyarrow's C globals until the process ends. In `selloff run` that was
    enough for DuckDB's Python module to outlive the interpreter's last collection, and
    nanobind printed its 39 "leaked" lines at exit (issue 25). Nothing else in the lake
    path wakes that shim (`tests/test_lake.py` checks it in a fresh interpreter)."""
    order = np.ascontiguousarray(order, dtype=np.int64)  # argsort's intp: no copy here
    return pa.Array.from_buffers(pa.int64(), len(order), [None, pa.py_buffer(order)])


def _batches_of(reader: pa.RecordBatchReader, rows: int) -> Iterator[list[pa.RecordBatch]]:
    # DuckDB hands out ~100k-row batches whatever is asked; splitting fewer, larger frames
    # makes fewer, larger pieces per partition.
    held: list[pa.RecordBatch] = []
    n = 0
    for batch in reader:
        held.append(batch)
        n += batch.num_rows
        if n >= rows:
            yield held
            held, n = [], 0
    if held:
        yield held


def _write_by_months(con: duckdb.DuckDBPyConnection, relation: str, columns: list[str],
                     dest: Path, parts: Partitioning, day: str) -> None:
    """A (market,) month-partitioned table in one streaming scan: Arrow batches from
    DuckDB, split by partition (`_split`), appended to one Parquet file per partition (see
    `_PartWriters`). Same folders, files and columns as DuckDB's `PARTITION_BY`, with less
    CPU and on both cores: that COPY cuts every input vector into ~300 partition buffers
    (rows are in security order, months interleaved), spills past its memory limit and,
    on the raw tables, ran on about one core."""
    market = parts.expressions.get("market")
    yyyymm = f"year({day}) * 100 + month({day})"
    # The month's text (`month`, strftime of the date) from the distinct yyyymm values
    # only: formatting every row's date costs a full second on fund flows. Years outside
    # 1000-9999 get none, so DuckDB's own writer handles those rows.
    found = con.execute(
        f"SELECT m, k, CASE WHEN k BETWEEN 100001 AND 999912 THEN "
        f"strftime(make_date(k // 100, k % 100, 1), '%Y-%m') END "
        f"FROM (SELECT DISTINCT {market or 'NULL'} AS m, {yyyymm} AS k FROM {relation})").fetchall()
    plain = [r for r in found if r[2] is not None and _PLAIN_VALUE.fullmatch(r[2])
             and (market is None or (r[0] is not None and _PLAIN_VALUE.fullmatch(r[0])))]
    markets = sorted({r[0] for r in plain}) if market else []
    # One small integer per partition: the market's number times the span of months,
    # plus the month's offset from the first. Below 2^15 it sorts by radix (`_split`).
    months = sorted({r[1] for r in plain})
    first = (months[0] // 100) * 12 + months[0] % 100 - 1 if months else 0
    span = ((months[-1] // 100) * 12 + months[-1] % 100 - first) if months else 1
    month_number = f"year({day}) * 12 + month({day}) - 1"
    offset = f"({month_number} - {first})"
    if market:
        number = " ".join(f"WHEN {_sql_string(m)} THEN {i}" for i, m in enumerate(markets))
        key = f"(CASE {market} {number} END) * {span} + {offset}"
    else:
        key = offset
    small = "SMALLINT" if max(1, len(markets)) * span < 2**15 else "INTEGER"

    def code(m: str | None, k: int) -> int:
        return (markets.index(m) * span if market else 0) + (k // 100) * 12 + k % 100 - 1 - first

    folders = {code(r[0], r[1]):
               dest / (f"market={r[0]}/month={r[2]}" if market else f"month={r[2]}")
               for r in plain}
    only_plain = ""
    if len(plain) < len(found):
        # Rows whose partition value is not a plain folder name (a NULL date or market, an
        # id without `:`...): DuckDB's writer escapes them the way hive readers expect.
        # A healthy warehouse has none.
        keys = ", ".join(str(k) for k in months) or "NULL"
        in_markets = f" AND {market} IN ({', '.join(map(_sql_string, markets)) or 'NULL'})"
        is_plain = f"coalesce({yyyymm} IN ({keys}){in_markets if market else ''}, false)"
        _copy(con, f"(SELECT * FROM {relation} WHERE NOT {is_plain})", columns, str(dest), parts)
        only_plain = f" WHERE {is_plain}"
    # Partition values live in the folder names only, as DuckDB writes them.
    kept = [c for c in columns if c not in parts.columns]
    con.execute(f"SET memory_limit = '{LAKE_SCAN_MEMORY_LIMIT}'")
    threads = int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
    writers = _PartWriters(LAKE_BUFFER_BYTES, threads)
    try:
        reader = con.sql(f"SELECT {', '.join(kept)}, CAST({key} AS {small}) AS __part "
                         f"FROM {relation}{only_plain}").to_arrow_reader(LAKE_BATCH_ROWS)
        for batches in _batches_of(reader, LAKE_BATCH_ROWS):
            for part, piece in _split(batches, "__part"):
                writers.add(folders[part] / f"{PART_PATTERN.format(i=0)}.parquet", piece)
            writers.read(sum(b.nbytes for b in batches))
            del batches
        writers.finish()
    finally:
        writers.close()


def _column_types(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    rows = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    return [(r[0], r[1]) for r in rows]


def write_relation(con: duckdb.DuckDBPyConnection, relation: str, dest: str,
                   table: str) -> LakeTable:
    """Write a DuckDB relation (a table name or a registered view) to the folder `dest`,
    replacing what was there. `relation` is an identifier from code, never from data."""
    columns = _column_types(con, relation)
    names = [c for c, _ in columns]
    rows = con.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0]
    # An empty table still gets one (empty) file, so readers find its schema.
    parts = partitioning(names) if rows else Partitioning({}, ())
    meta = {"table": table, "columns": [{"name": c, "type": t} for c, t in columns],
            "partition_by": parts.columns, "derived_columns": list(parts.derived), "rows": rows}
    if is_remote(dest):
        _copy(con, relation, names, dest, parts)
        _write_meta_remote(dest, meta)
        return LakeTable(table, dest, rows, tuple(parts.columns), -1)
    final = Path(dest)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    staging.mkdir()
    day = next((c for c in DATE_SOURCES if c in names), None)
    try:
        # The streaming writer names month folders itself, the way `partitioning` does.
        if day is not None and parts.expressions.get("month") == f"strftime({day}, '%Y-%m')":
            _write_by_months(con, relation, names, staging, parts, day)
        else:
            _copy(con, relation, names, str(staging), parts)
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        _swap_in(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    files = sum(1 for _ in final.rglob("*.parquet"))
    return LakeTable(table, str(final), rows, tuple(parts.columns), files)


def _swap_in(staging: Path, final: Path) -> None:
    # Two renames: the window in which `final` is missing is a directory entry change,
    # never a half-written file.
    old = final.with_name(f".{final.name}.{uuid.uuid4().hex}.old")
    if final.exists():
        final.rename(old)
    staging.rename(final)
    if old.exists():
        shutil.rmtree(old)


def _write_meta_remote(dest: str, meta: dict) -> None:
    from pyarrow import fs

    # pyarrow knows s3://; Spark's s3a:// names the same bucket and key.
    filesystem, base = fs.FileSystem.from_uri(dest.replace("s3a://", "s3://", 1))
    with filesystem.open_output_stream(f"{base.rstrip('/')}/{META_FILE}") as out:
        out.write((json.dumps(meta, indent=2) + "\n").encode("utf-8"))


def write_frame(df: pl.DataFrame, dest: str, table: str) -> LakeTable:
    """Write a polars frame to the lake folder `dest` (through an in-memory DuckDB)."""
    with duckdb.connect() as con:
        _load_httpfs_if_remote(con, dest)
        con.register("__lake_incoming", df.to_arrow())
        return write_relation(con, "__lake_incoming", dest, table)


def write_schema(con: duckdb.DuckDBPyConnection, schema: str, root: str | Path,
                 layer: str | None = None, tables: Sequence[str] | None = None) -> list[LakeTable]:
    """Write every table of a DuckDB schema (or the `tables` named) to `<root>/<layer>/`."""
    schema = _ident(schema)
    layer = layer or schema
    present = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
        "ORDER BY table_name", [schema]).fetchall()]
    wanted = [t for t in present if tables is None or t in tables]
    _load_httpfs_if_remote(con, str(root))
    return [write_relation(con, f"{schema}.{_ident(t)}", table_path(root, layer, t), t)
            for t in wanted]


def _load_httpfs_if_remote(con: duckdb.DuckDBPyConnection, root: str) -> None:
    if is_remote(root):
        # Credentials come from the environment (AWS_* / a DuckDB secret), never from here.
        con.execute("INSTALL httpfs")
        con.execute("LOAD httpfs")
        con.execute("CREATE SECRET IF NOT EXISTS selloff_lake (TYPE s3, PROVIDER credential_chain)")


def table_meta(path: str | Path) -> dict | None:
    meta = Path(path) / META_FILE
    return json.loads(meta.read_text(encoding="utf-8")) if meta.exists() else None


def read_table(path: str | Path) -> pl.DataFrame | None:
    """A lake table as the warehouse had it: its own columns, in order, partition folders
    turned back into columns and derived partition columns dropped; None if absent."""
    path = Path(path)
    if not any(path.rglob("*.parquet")):
        return None
    meta = table_meta(path)
    df = pl.read_parquet(str(path / "**" / "*.parquet"), hive_partitioning=True)
    if meta is None:
        return df
    columns = [c["name"] for c in meta["columns"]]
    if "market" in columns and "market" in df.columns:
        df = df.with_columns(pl.col("market").cast(pl.String))
    return df.select(columns)


def read_parquet_dir(path: str | Path) -> pl.DataFrame | None:
    """Every Parquet file of a folder written by Spark (a table's data folder), or None.
    An object-store URL is read by polars itself (credentials from the environment)."""
    if is_remote(path):
        return pl.read_parquet(f"{str(path).rstrip('/')}/*.parquet")
    files = sorted(p for p in Path(path).glob("*.parquet") if not p.name.startswith(("_", ".")))
    if not files:
        return None
    return pl.read_parquet([str(p) for p in files])


def _month_key(day: dt.date) -> int:
    return day.year * 100 + day.month


def write_months(con: duckdb.DuckDBPyConnection, relation: str, dest: str, table: str,
                 first: dt.date, last: dt.date | None,
                 markets: Sequence[str] = ()) -> LakeTable | None:
    """Rewrite only the partitions of the lake table at `dest` that hold a changed day:
    the months from `first`'s to `last`'s (None: to the newest), in `markets` (empty:
    every market). Each such `market=/month=` folder is written beside the table and
    swapped in by rename, so a reader sees a partition of the old run or of the new one,
    never half of one; a folder whose rows are gone is removed the same way.

    Returns None, writing nothing, when only a whole write is right: a remote root, no
    table there yet, a table whose columns or partitioning changed, or one not
    partitioned by month.
    """
    if is_remote(dest):
        return None
    final = Path(dest)
    meta_path = final / META_FILE
    if not meta_path.is_file():
        return None
    old_meta = json.loads(meta_path.read_text(encoding="utf-8"))
    columns = _column_types(con, relation)
    names = [c for c, _ in columns]
    parts = partitioning(names)
    day = next((c for c in DATE_SOURCES if c in names), None)
    if (day is None or "month" not in parts.columns
            or old_meta.get("columns") != [{"name": c, "type": t} for c, t in columns]
            or old_meta.get("partition_by") != parts.columns):
        return None
    market = parts.expressions.get("market")
    lo = _month_key(first)
    hi = _month_key(last) if last is not None else None
    where = f"year({day}) * 100 + month({day}) >= {lo}"
    if hi is not None:
        where += f" AND year({day}) * 100 + month({day}) <= {hi}"
    if markets and market:
        where += f" AND {market} IN ({', '.join(_sql_string(m) for m in markets)})"
    subset = f"(SELECT * FROM {relation} WHERE {where})"

    def affected(folder: Path) -> bool:
        month = re.fullmatch(r"month=(\d{4})-(\d{2})", folder.name)
        if month is None:
            return False
        key = int(month[1]) * 100 + int(month[2])
        if key < lo or (hi is not None and key > hi):
            return False
        if markets and market:
            return folder.parent.name.removeprefix("market=") in markets
        return True

    pattern = "market=*/month=*" if market else "month=*"
    staging = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    staging.mkdir()
    try:
        if con.execute(f"SELECT count(*) FROM {subset}").fetchall()[0][0]:
            _write_by_months(con, subset, names, staging, parts, day)
        new = {p.relative_to(staging) for p in staging.glob(pattern) if p.is_dir()}
        old = {p.relative_to(final) for p in final.glob(pattern) if p.is_dir() and affected(p)}
        for rel in sorted(new):
            (final / rel).parent.mkdir(parents=True, exist_ok=True)
            _swap_in(staging / rel, final / rel)
        for rel in sorted(old - new):
            gone = (final / rel).with_name(f".{rel.name}.{uuid.uuid4().hex}.old")
            (final / rel).rename(gone)
            shutil.rmtree(gone)
        rows = con.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0]
        meta = {**old_meta, "rows": rows}
        tmp = final / f".{META_FILE}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        tmp.replace(meta_path)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    files = sum(1 for _ in final.rglob("*.parquet"))
    return LakeTable(table, str(final), rows, tuple(parts.columns), files)
