"""DuckDB warehouse access: atomic table writes, reads into polars, and publication.

One process writes the build file; analysts read the published copy. Publication is
checkpoint -> copy to a temporary file beside the target -> fsync -> atomic rename, so a
reader never sees a half-written file and a failed run never touches the published one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import os
import re
import shutil
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import duckdb
import polars as pl

from selloff.markets import market_of_expr, market_of_sql
from selloff.settings import DEFAULT_STORAGE_VERSION

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _ident(name: str) -> str:
    # Identifiers come from code, never from data; refuse anything else outright.
    if not _IDENT.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_LIBC = _libc()


def release_memory() -> None:
    """Hand memory that this process has freed back to the OS.

    glibc keeps freed heap pages (pandas/numpy buffers of the GX batches, Python objects)
    and Arrow's allocator keeps its freed blocks, so the process's RSS stays at its
    high-water mark long after a big step: the next step (dbt's subprocess, the
    analytics) then adds its own memory on top. Costs a few milliseconds; changes no data.
    """
    if "pyarrow" in sys.modules:
        import pyarrow as pa

        pool = pa.default_memory_pool()
        if hasattr(pool, "release_unused"):
            pool.release_unused()
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


# Build files a run holds open (`held_open`): absolute path -> [the shared connection, opened
# at the first `connect` inside the block (None before), number of nested holds].
_HELD: dict[str, list] = {}
_HELD_LOCK = threading.Lock()
# Instance-wide settings that steps and dbt change for their own work (memory limits, dbt's
# preserve_insertion_order, landing's threads). A file opened per step started each step
# from DuckDB's defaults; on a held instance each connection resets them when it opens.
_STEP_SETTINGS = ("memory_limit", "preserve_insertion_order", "threads")


def _held_key(path: str | Path) -> str:
    return os.path.abspath(path)


@contextmanager
def held_open(path: str | Path) -> Iterator[None]:
    """Keep the build file open in this process for the block (a run): every `connect`
    to it inside shares one DuckDB instance, opened by the first, instead of opening the
    file anew each time.

    Opening the 860 MB build file at 5,000 x 5 reads its catalogue and table metadata
    (20 to 120 ms); a one-day refresh opened it 107 times (2.9 s in `duckdb.connect`).
    The run's process is the file's only writer (writer_lock), so one instance loses
    nothing: dbt in process connects with the same config and joins it, each connection
    is checkpointed when it closes as before (`_settle`), and `publish` checkpoints before
    it copies. Re-entrant; the file is closed when the outermost block ends.
    """
    key = _held_key(path)
    with _HELD_LOCK:
        _HELD.setdefault(key, [None, 0])[1] += 1
    try:
        yield
    finally:
        with _HELD_LOCK:
            held = _HELD[key]
            held[1] -= 1
            if held[1] == 0:
                del _HELD[key]
                if held[0] is not None:
                    held[0].close()
                    release_memory()


def _held_connection(path: Path, read_only: bool,
                     storage_version: str) -> duckdb.DuckDBPyConnection | None:
    """A new cursor of the held instance of `path`, opening it on first use; None when
    `path` is not held (or is held, not yet open, and a reader asks for a missing file)."""
    with _HELD_LOCK:
        held = _HELD.get(_held_key(path))
        if held is None:
            return None
        if held[0] is None:
            if read_only and not path.exists():
                return None
            path.parent.mkdir(parents=True, exist_ok=True)
            held[0] = _open_for_writing(path, storage_version)
        con = held[0].cursor()
    for name in _STEP_SETTINGS:
        con.execute(f"RESET GLOBAL {name}")
    return con


def _settle(path: Path) -> None:
    """After a connection of the held instance closes: checkpoint, then drop the blocks
    it read, as closing the file after each step did.

    The checkpoint keeps the file as it was between steps before (the rows a step wrote
    moved from the WAL into the tables' row groups, so eviction below has no in-memory
    rows to spill); with nothing written it costs well under a millisecond. DuckDB keeps
    the blocks it read in its buffer pool until memory runs short, so one instance for
    the whole run carried dbt's gigabyte of blocks into the analytics steps (peak 2.2 GB
    instead of 1.8 GB at 5,000 x 5): lowering the limit evicts them at once (about
    10 ms; nothing is spilled), and the next connection resets it.
    Either is skipped while another connection is in a transaction (a nested `connect`):
    the outer one settles when it closes."""
    with _HELD_LOCK:
        held = _HELD.get(_held_key(path))
        con = held[0].cursor() if held is not None and held[0] is not None else None
    if con is None:
        return
    try:
        con.execute("CHECKPOINT")
        con.execute("SET GLOBAL memory_limit = '1MB'")
    except duckdb.Error:
        pass
    finally:
        con.execute("RESET GLOBAL memory_limit")
        con.close()


@contextmanager
def connect(path: str | Path, read_only: bool = False,
            storage_version: str = DEFAULT_STORAGE_VERSION) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a warehouse file; a writer creates it in `storage_version`'s format, and
    converts an existing file written in another format (once) before writing to it.

    A file this process holds open (`held_open`, a run's build file) is not opened again:
    the connection is a cursor of the held instance, for readers too (DuckDB refuses a
    second, read-only instance of a file open for writing in the same process)."""
    path = Path(path)
    con = _held_connection(path, read_only, storage_version)
    if con is not None:
        try:
            yield con
        finally:
            con.close()
            _settle(path)
            release_memory()
        return
    if read_only:
        con = duckdb.connect(str(path), read_only=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = _open_for_writing(path, storage_version)
    try:
        yield con
    finally:
        con.close()
        # Every asset reads and writes through here: what a step freed goes back to
        # the OS when it closes its connection, not at the end of the run.
        release_memory()


def _open_for_writing(path: Path, storage_version: str) -> duckdb.DuckDBPyConnection:
    # The format is fixed when DuckDB creates a file and kept by every later connection,
    # whatever they ask for: a file from before this setting (DuckDB 2.0's own format), or
    # from another setting, is converted here, or the published copy would keep it.
    wanted = storage_tag(storage_version)  # refuses an unknown version with its name
    con = duckdb.connect(str(path), config={"storage_compatibility_version": storage_version})
    if file_storage_version(con) == wanted:
        return con
    con.close()
    convert_storage(path, storage_version)
    return duckdb.connect(str(path), config={"storage_compatibility_version": storage_version})


def file_storage_version(con: duckdb.DuckDBPyConnection, database: str | None = None) -> str:
    """The storage format of a connection's file as DuckDB names it (e.g. 'v1.4.0+')."""
    rows = con.execute(
        "SELECT tags['storage_version'] FROM duckdb_databases() "
        "WHERE database_name = coalesce(?, current_database())", [database],
    ).fetchall()
    return str(rows[0][0]) if rows and rows[0][0] is not None else ""


@cache
def storage_tag(storage_version: str) -> str:
    """How DuckDB names the format a file created with `storage_version` gets (several
    versions share one format: v1.4.3 writes 'v1.4.0+'); an unknown version fails here."""
    with tempfile.TemporaryDirectory(prefix="selloff_storage_") as tmp:
        probe = Path(tmp) / "probe.duckdb"
        with duckdb.connect() as con:
            try:
                con.execute(f"ATTACH {_sql_string(probe)} AS probe "
                            f"(STORAGE_VERSION {_sql_string(storage_version)})")
            except duckdb.InvalidInputException as exc:
                raise ValueError(f"storage version {storage_version!r}: {exc}") from exc
            tag = file_storage_version(con, "probe")
            con.execute("DETACH probe")
    return tag


def _sql_string(value: str | Path) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def convert_storage(path: str | Path, storage_version: str) -> None:
    """Rewrite a DuckDB file in another storage format, with every schema, table, view,
    macro, type and comment (COPY FROM DATABASE), then rename it into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.convert.tmp")
    try:
        with duckdb.connect() as con:
            con.execute(f"ATTACH {_sql_string(path)} AS src (READ_ONLY)")
            con.execute(f"ATTACH {_sql_string(tmp)} AS dst "
                        f"(STORAGE_VERSION {_sql_string(storage_version)})")
            con.execute("COPY FROM DATABASE src TO dst")
            con.execute("DETACH dst")
            con.execute("DETACH src")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)


@contextmanager
def _landing(con: duckdb.DuckDBPyConnection, schema: str, df: pl.DataFrame) -> Iterator[str]:
    """One transaction with df registered as a view (its name is yielded); rolled back on
    any error, so readers see the old table or the new one, never half of it."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
        con.register("__incoming", df.to_arrow())
        yield "__incoming"
        con.unregister("__incoming")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def replace_table(con: duckdb.DuckDBPyConnection, schema: str, table: str,
                  df: pl.DataFrame) -> int:
    """Replace schema.table with df in one transaction."""
    target = f"{_ident(schema)}.{_ident(table)}"
    with _landing(con, schema, df) as incoming:
        con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {incoming}")
    return df.height


def replace_table_parts(con: duckdb.DuckDBPyConnection, schema: str, table: str,
                        parts: Iterable[pl.DataFrame]) -> tuple[int, pl.DataFrame | None]:
    """Replace schema.table with the rows of `parts`; readers see the old table or the new
    one, never part of it.

    The parts are consumed one at a time (a generator may produce and check each only
    when asked) and each is appended to a staging table in its own transaction, so
    neither this process nor DuckDB holds more than one part: one transaction for all of
    them would keep every new row in memory until the commit (8 GB for 60 M fund-flow
    rows). A short last transaction drops the old table and renames the staging one into
    place. An error from any part drops the staging table and leaves the old table as it
    was. Returns the row count and the first part's head (for a preview).
    """
    target = f"{_ident(schema)}.{_ident(table)}"
    staging_name = _ident(f"__landing_{table}")
    staging = f"{_ident(schema)}.{staging_name}"
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
    try:
        with _single_thread(con):
            rows, first = _append_parts(con, staging, parts)
        if first is None:
            raise ValueError(f"{target}: no parts to land")
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"DROP TABLE IF EXISTS {target}")
            con.execute(f"ALTER TABLE {staging} RENAME TO {_ident(table)}")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    finally:
        con.execute(f"DROP TABLE IF EXISTS {staging}")
    return rows, first


@contextmanager
def _single_thread(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB on one thread for the block, its previous thread count restored after.

    Two threads appending one Arrow frame each fill their own row groups, so every part
    leaves partly filled ones behind, and the next checkpoint (at the latest when the
    connection closes) rewrites and recompresses the whole table to merge them: at 2 M
    rows a part that doubled the write's CPU time and the file's size. One thread fills
    them in order, and the insert alone costs about what the two threads did.
    """
    threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    con.execute("SET threads = 1")
    try:
        yield
    finally:
        con.execute(f"SET threads = {int(threads)}")


def _append_parts(con: duckdb.DuckDBPyConnection, staging: str,
                  parts: Iterable[pl.DataFrame]) -> tuple[int, pl.DataFrame | None]:
    rows, first = 0, None
    for part in parts:
        # Polars' own string layout (Arrow string views), which DuckDB reads as it is:
        # the default conversion copies every string (0.2 s per 2 M fund-flow rows).
        con.register("__incoming", part.to_arrow(compat_level=pl.CompatLevel.newest()))
        if first is None:
            con.execute(f"CREATE OR REPLACE TABLE {staging} AS SELECT * FROM __incoming")
            first = part.head(5)
        else:
            con.execute(f"INSERT INTO {staging} BY NAME SELECT * FROM __incoming")
        con.unregister("__incoming")
        rows += part.height
        del part
    return rows, first


def replace_window(con: duckdb.DuckDBPyConnection, schema: str, table: str, df: pl.DataFrame,
                   date_column: str, first: dt.date, last: dt.date,
                   entity_column: str | None = None, markets: tuple[str, ...] = ()) -> int:
    """Replace the rows of schema.table with date_column in [first, last] by df's rows in
    that window, in one transaction; rows outside the window stay as they are.

    With `markets` (and the `<MARKET>:<code>` id column `entity_column`), only those
    markets' rows of the window are replaced: one market's session refreshes alone.
    """
    target, column = f"{_ident(schema)}.{_ident(table)}", _ident(date_column)
    rows = df.filter(pl.col(date_column).is_between(first, last))
    where, params = f"{column} BETWEEN ? AND ?", [first, last]
    if markets and entity_column:
        rows = rows.filter(market_of_expr(entity_column).is_in(list(markets)))
        where += f" AND {market_of_sql(_ident(entity_column))} IN ?"
        params.append(list(markets))
    with _landing(con, schema, rows) as incoming:
        con.execute(f"CREATE TABLE IF NOT EXISTS {target} AS SELECT * FROM {incoming} LIMIT 0")
        con.execute(f"DELETE FROM {target} WHERE {where}", params)
        con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {incoming}")
    return rows.height


def write_table(path: str | Path, schema: str, table: str, df: pl.DataFrame,
                storage_version: str = DEFAULT_STORAGE_VERSION) -> int:
    with connect(path, storage_version=storage_version) as con:
        return replace_table(con, schema, table, df)


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    # fetchall, not fetchone: DuckDB 2.0 keeps a half-read result open and blocks the connection.
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, table],
    ).fetchall()
    return bool(rows[0][0])


def row_count(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> int:
    """Rows of schema.table (a table or a view), 0 when it does not exist."""
    if not table_exists(con, schema, table):
        return 0
    return int(con.execute(f"SELECT count(*) FROM {_ident(schema)}.{_ident(table)}")
               .fetchall()[0][0])


def read_frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    """Run a query into polars (DuckDB 2.0: .pl() lives on relations, not on execute())."""
    return con.sql(sql, params=params).pl() if params else con.sql(sql).pl()


def read_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> pl.DataFrame | None:
    if not table_exists(con, schema, table):
        return None
    return con.sql(f"SELECT * FROM {_ident(schema)}.{_ident(table)}").pl()


def publish(build: str | Path, published: str | Path,
            storage_version: str = DEFAULT_STORAGE_VERSION) -> Path:
    """Copy the build file over the published one atomically (same folder, then rename).
    The copy keeps the build file's storage format, which `connect` made `storage_version`."""
    build, published = Path(build), Path(published)
    with connect(build, storage_version=storage_version) as con:
        con.execute("CHECKPOINT")
    published.parent.mkdir(parents=True, exist_ok=True)
    tmp = published.with_name(f".{published.name}.{uuid.uuid4().hex}.tmp")
    try:
        shutil.copyfile(build, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, published)
    finally:
        if tmp.exists():
            tmp.unlink()
    return published
