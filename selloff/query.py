"""Read-only SQL on the published warehouse, and its result as a table, CSV, JSON or Parquet."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import duckdb
import polars as pl

FORMATS = ("table", "csv", "json", "parquet")


class QueryError(ValueError):
    """Bad input to `selloff query` or `selloff sql`: the message says what and why."""


def run_query(path: Path, sql: str) -> pl.DataFrame:
    """`sql` on the published file, opened read-only (a refresh never waits for it, and a
    write statement is refused by DuckDB)."""
    if not sql.strip():
        raise QueryError("the SQL is empty")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise QueryError(f"cannot open {path} read-only: {exc}") from exc
    try:
        return con.sql(sql).pl()
    except AttributeError as exc:
        # con.sql returns None for a statement that yields no rows (SET, PRAGMA ...).
        raise QueryError("the statement returns no result set; write a SELECT") from exc
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {str(exc).strip()}") from exc
    finally:
        con.close()


def check_target(fmt: str, out: Path | None) -> None:
    """Refuse a format that does not exist or cannot go where asked."""
    if fmt not in FORMATS:
        raise QueryError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "table" and out is not None:
        raise QueryError("--format table prints to the terminal; with --out use csv, json "
                         "or parquet")
    if fmt == "parquet" and out is None:
        raise QueryError("--format parquet needs --out FILE (Parquet is binary)")


def write_result(df: pl.DataFrame, fmt: str, out: Path | None) -> Path | None:
    """Write `df` as csv, json or parquet to `out`, or CSV/JSON to stdout when `out` is
    None; the file written (None for stdout)."""
    check_target(fmt, out)
    if fmt == "table":
        raise QueryError("a table is printed, not written: use csv, json or parquet")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target and renamed: a reader never sees half a file.
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            _write(df, fmt, tmp)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        return out
    _write(df, fmt, sys.stdout)
    return None


def _write(df: pl.DataFrame, fmt: str, target) -> None:
    if fmt == "csv":
        text = df.write_csv()
    elif fmt == "json":
        # One JSON array of row objects; dates as ISO text.
        text = df.write_json()
    else:
        df.write_parquet(target)
        return
    if isinstance(target, Path):
        target.write_text(text, encoding="utf-8")
    else:
        target.write(text if text.endswith("\n") else text + "\n")
        target.flush()


def sql_shell_command(path: Path) -> list[str]:
    """The interactive SQL shell on `path`: Harlequin (a maintained terminal SQL IDE) on
    this environment's DuckDB, read-only, without ~/.duckdbrc."""
    beside = Path(sys.executable).parent / "harlequin"
    exe = str(beside) if beside.exists() else shutil.which("harlequin")
    if exe is None:
        raise QueryError("harlequin is not installed in this environment: run `make setup`")
    return [exe, "--adapter", "duckdb", "--read-only", "--no-init", str(path)]
