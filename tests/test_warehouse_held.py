"""A run keeps its build file open once (selloff.warehouse.held_open): every connection of
the run shares one DuckDB instance, and nothing a step did leaks into the next."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from selloff import warehouse
from selloff.resources import WarehouseResource


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths passed to duckdb.connect while the test runs."""
    seen: list[str] = []
    real = duckdb.connect

    def counting(database: str = ":memory:", *args, **kwargs):
        seen.append(str(database))
        return real(database, *args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", counting)
    return seen


def test_connections_inside_a_hold_open_the_file_once(tmp_path: Path, opens: list[str]) -> None:
    path = tmp_path / "build" / "selloff.duckdb"
    with warehouse.held_open(path):
        assert not path.exists(), "held_open alone must not create the file"
        for i in range(5):
            with warehouse.connect(path) as con:
                con.execute(f"CREATE TABLE t{i} AS SELECT {i} AS x")
        # A reader beside an open writer: possible only on the one instance.
        with warehouse.connect(path) as writer, warehouse.connect(path, read_only=True) as reader:
            writer.execute("INSERT INTO t0 VALUES (10)")
            assert reader.execute("SELECT sum(x) FROM t0").fetchall() == [(10,)]
        assert [p for p in opens if p == str(path)] == [str(path)]
        # Still open between connections: a second, read-only instance is refused.
        with pytest.raises(duckdb.ConnectionException):
            duckdb.connect(str(path), read_only=True)
    # Closed (and checkpointed) when the block ends: another client reads every table.
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchall() == [(5,)]
    assert not (tmp_path / "build" / "selloff.duckdb.wal").exists()


def test_each_connection_starts_from_duckdbs_defaults(tmp_path: Path) -> None:
    names = ("memory_limit", "preserve_insertion_order", "threads")
    query = "SELECT " + ", ".join(f"current_setting('{n}')" for n in names)
    with duckdb.connect(str(tmp_path / "defaults.duckdb")) as con:
        defaults = con.execute(query).fetchall()
    path = tmp_path / "build.duckdb"
    with warehouse.held_open(path):
        with warehouse.connect(path) as con:
            # What the lake, the GX suites, dbt and landing set for their own work.
            con.execute("SET memory_limit = '100MB'")
            con.execute("SET preserve_insertion_order = false")
            con.execute("SET threads = 1")
            assert con.execute(query).fetchall() != defaults
        with warehouse.connect(path) as con:
            assert con.execute(query).fetchall() == defaults


def test_an_unfinished_transaction_ends_with_its_connection(tmp_path: Path) -> None:
    path = tmp_path / "build.duckdb"
    with warehouse.held_open(path):
        with pytest.raises(RuntimeError), warehouse.connect(path) as con:
            con.execute("BEGIN TRANSACTION")
            con.execute("CREATE TABLE half AS SELECT 1 AS x")
            raise RuntimeError("the step failed here")
        with warehouse.connect(path) as con:
            assert con.execute("SELECT count(*) FROM duckdb_tables() "
                               "WHERE table_name = 'half'").fetchall() == [(0,)]


def test_holds_nest_and_a_missing_file_is_not_created_for_a_reader(tmp_path: Path) -> None:
    path = tmp_path / "build.duckdb"
    with warehouse.held_open(path):
        with pytest.raises(duckdb.Error), warehouse.connect(path, read_only=True):
            pass
        assert not path.exists()
        with warehouse.held_open(path), warehouse.connect(path) as con:
            con.execute("CREATE TABLE t AS SELECT 1 AS x")
        # The inner block's end left the instance open for the outer one.
        with pytest.raises(duckdb.ConnectionException):
            duckdb.connect(str(path), read_only=True)
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT x FROM t").fetchall() == [(1,)]


def test_publish_inside_a_hold_copies_every_committed_row(tmp_path: Path) -> None:
    build, published = tmp_path / "build" / "selloff.duckdb", tmp_path / "selloff.duckdb"
    with warehouse.held_open(build):
        with warehouse.connect(build) as con:
            con.execute("CREATE SCHEMA marts")
            con.execute("CREATE TABLE marts.f AS SELECT range AS x FROM range(200000)")
            con.execute("DELETE FROM marts.f WHERE x % 2 = 0")
        warehouse.publish(build, published)
        # Read while the build file is still held: the copy needs no WAL of its own.
        with duckdb.connect(str(published), read_only=True) as con:
            assert con.execute("SELECT count(*), sum(x) FROM marts.f").fetchall() == [
                (100000, sum(range(1, 200000, 2)))]


def test_a_run_holds_its_build_file(tmp_path: Path, opens: list[str]) -> None:
    """Through Dagster: the resource holds the build file for the run's steps."""
    resource = WarehouseResource(path=str(tmp_path / "selloff.duckdb"))

    @dg.asset
    def first(warehouse_res: WarehouseResource) -> None:
        with warehouse_res.connect() as con:
            con.execute("CREATE TABLE t AS SELECT 1 AS x")

    @dg.asset(deps=[first])
    def second(warehouse_res: WarehouseResource) -> None:
        with warehouse_res.connect(read_only=True) as con:
            assert con.execute("SELECT x FROM t").fetchall() == [(1,)]

    result = dg.materialize([first, second], resources={"warehouse_res": resource})
    assert result.success
    build = str(resource.build_path)
    assert [p for p in opens if p == build] == [build]


def test_blocks_a_step_read_are_not_kept_for_the_next(tmp_path: Path) -> None:
    """What closing the file per step gave: the next step starts without the last one's
    cached blocks (else the run's memory grows by the buffer pool, up to dbt's 1 GB)."""
    path = tmp_path / "build.duckdb"
    usage = "SELECT sum(memory_usage_bytes) FROM duckdb_memory()"
    with warehouse.held_open(path):
        with warehouse.connect(path) as con:
            con.execute("CREATE TABLE t AS SELECT range AS x, random() AS y FROM range(3000000)")
            con.execute("CHECKPOINT")
            con.execute("SELECT sum(x), sum(y) FROM t").fetchall()
            during = con.execute(usage).fetchall()[0][0]
        with warehouse.connect(path) as con:
            after = con.execute(usage).fetchall()[0][0]
            assert con.execute("SELECT count(*) FROM t").fetchall() == [(3000000,)]
    assert during > 10 * 2**20
    assert after < during / 10


def test_each_connection_is_checkpointed_when_it_closes(tmp_path: Path) -> None:
    """As closing the file after each step did: the rows a step wrote are in the tables'
    row groups, not only in the WAL, when the next step reads them; a connection that
    closes inside another's open transaction leaves it to that one."""
    path = tmp_path / "build.duckdb"
    wal = tmp_path / "build.duckdb.wal"
    with warehouse.held_open(path):
        with warehouse.connect(path) as con:
            con.execute("CREATE TABLE t AS SELECT range AS x FROM range(100000)")
            assert wal.exists() and wal.stat().st_size > 0
        assert not wal.exists() or wal.stat().st_size == 0
        with warehouse.connect(path) as outer:
            outer.execute("BEGIN TRANSACTION")
            outer.execute("INSERT INTO t VALUES (-1)")
            with warehouse.connect(path) as inner:  # closes while outer's write is open
                inner.execute("SELECT count(*) FROM t").fetchall()
            outer.execute("COMMIT")
        with warehouse.connect(path) as con:
            assert con.execute("SELECT count(*) FROM t").fetchall() == [(100001,)]
