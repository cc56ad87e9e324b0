"""Landing a table in parts (selloff.warehouse.replace_table_parts): all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest

from selloff.warehouse import replace_table_parts


def _parts(n: int, fail_at: int | None = None) -> Iterator[pl.DataFrame]:
    for i in range(n):
        if i == fail_at:
            raise ValueError(f"part {i} broke a rule")
        yield pl.DataFrame({"k": [2 * i, 2 * i + 1], "v": [float(i)] * 2})


def test_parts_replace_the_table(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.t AS SELECT 99 AS k, 9.0 AS v")
    rows, head = replace_table_parts(con, "raw", "t", _parts(3))
    assert rows == 6 and head is not None and head.height == 2
    got = con.sql("SELECT k, v FROM raw.t ORDER BY k").fetchall()
    assert got == [(0, 0.0), (1, 0.0), (2, 1.0), (3, 1.0), (4, 2.0), (5, 2.0)]
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'").fetchall()}
    assert tables == {"t"}  # no staging table left behind


def test_a_failing_part_leaves_the_old_table(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.t AS SELECT 99 AS k, 9.0 AS v")
    with pytest.raises(ValueError, match="part 2 broke a rule"):
        replace_table_parts(con, "raw", "t", _parts(4, fail_at=2))
    assert con.sql("SELECT k, v FROM raw.t").fetchall() == [(99, 9.0)]
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw'").fetchall()}
    assert tables == {"t"}


def test_connect_releases_memory_and_keeps_data(tmp_path: Path) -> None:
    # Closing a connection hands freed heap back to the OS (release_memory); the data is
    # untouched, and calling it directly is harmless.
    from selloff.warehouse import connect, release_memory

    with connect(tmp_path / "w.duckdb") as con:
        replace_table_parts(con, "raw", "t", _parts(2))
    release_memory()
    with connect(tmp_path / "w.duckdb", read_only=True) as con:
        assert con.sql("SELECT count(*) FROM raw.t").fetchall() == [(4,)]


def test_landing_keeps_row_order_and_restores_threads(tmp_path: Path) -> None:
    # The parts are appended on one DuckDB thread (whole row groups, so the checkpoint
    # has nothing to rewrite); the connection's thread count comes back afterwards, also
    # when a part fails.
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("SET threads = 2")
    big = [pl.DataFrame({"k": range(i * 300_000, (i + 1) * 300_000)}) for i in range(3)]
    rows, _ = replace_table_parts(con, "raw", "t", iter(big))
    assert rows == 900_000
    assert con.sql("SELECT k FROM raw.t").pl()["k"].to_list() == list(range(900_000))
    assert con.execute("SELECT current_setting('threads')").fetchall() == [(2,)]
    with pytest.raises(ValueError, match="part 1 broke a rule"):
        replace_table_parts(con, "raw", "t", _parts(3, fail_at=1))
    assert con.execute("SELECT current_setting('threads')").fetchall() == [(2,)]


def test_types_and_values_land_unchanged(tmp_path: Path) -> None:
    # Parts go to DuckDB as Arrow string views (no copy): text, empty and null strings,
    # dates, floats, booleans and integers come back as they were, with SQL types.
    import datetime as dt

    df = pl.DataFrame({"s": ["a", None, "a string longer than twelve bytes: é", ""],
                       "d": [dt.date(2025, 1, 1)] * 4, "f": [1.5, None, 2.0, 3.0],
                       "b": [True, None, False, True], "i": [1, 2, None, 4]})
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    replace_table_parts(con, "raw", "t", iter([df, df]))
    assert [r[1] for r in con.sql("DESCRIBE raw.t").fetchall()] == [
        "VARCHAR", "DATE", "DOUBLE", "BOOLEAN", "BIGINT"]
    assert con.sql("SELECT * FROM raw.t").pl().equals(pl.concat([df, df]))
