"""The published warehouse opens in the DuckDB clients analysts use (issue 24), and the
project's commands end cleanly, without DuckDB's "nanobind: leaked ..." lines (issue 25).

The 1.x client is the newest DuckDB CLI on PyPI (`duckdb-cli`, pinned in the dev extra:
`make test` installs it as .venv/bin/duckdb, beside the project's DuckDB 2.0 package).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selloff import warehouse
from selloff.settings import DEFAULT_STORAGE_VERSION, settings_from_env

BIN = Path(sys.executable).parent
SCHEMAS = ("raw", "staging", "marts", "analytics")
# How DuckDB names the format of a file written with the default setting.
DEFAULT_TAG = "v1.4.0+"


def duckdb_cli() -> Path:
    cli = BIN / "duckdb"
    assert cli.exists(), (f"{cli} missing: the dev extra pins duckdb-cli "
                          "(make setup, or uv pip install -c constraints.txt '.[dev]')")
    return cli


def cli_json(path: Path, sql: str) -> list[dict]:
    """Rows of `sql` run by the 1.x CLI on `path`, opened read-only."""
    done = subprocess.run([str(duckdb_cli()), "-readonly", "-json", str(path), "-c", sql],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and not done.stderr.strip(), (
        f"duckdb CLI failed on {path}: {done.stderr or done.stdout}")
    out = done.stdout.strip()
    return json.loads(out) if out else []


def cli_version() -> str:
    return subprocess.run([str(duckdb_cli()), "--version"], capture_output=True, text=True,
                          check=True).stdout.strip()


def catalog(con_rows: list[tuple]) -> list[tuple]:
    return sorted(tuple("" if v is None else str(v) for v in row) for row in con_rows)


COLUMNS_SQL = ("SELECT schema_name, table_name, column_name, data_type, comment "
               "FROM duckdb_columns() WHERE database_name = current_database() "
               "AND NOT internal AND schema_name <> 'main'")
TABLES_SQL = ("SELECT schema_name, table_name, comment FROM duckdb_tables() "
              "WHERE database_name = current_database() AND NOT internal")


def _counts_sql(tables: list[tuple[str, str]]) -> str:
    return " UNION ALL ".join(f"SELECT '{s}.{t}' AS name, count(*) AS n FROM {s}.{t}"
                              for s, t in tables)


# ------------------------------------------------------------------ storage version (fast)

def test_cli_is_the_newest_1x_beside_duckdb_2() -> None:
    assert re.match(r"^v1\.\d+\.\d+", cli_version()), cli_version()
    assert duckdb.__version__.startswith("2."), duckdb.__version__


def test_new_file_gets_the_default_storage_version(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    warehouse.write_table(path, "raw", "t", pl.DataFrame({"i": [1, 2, 3]}))
    with duckdb.connect(str(path), read_only=True) as con:
        assert warehouse.file_storage_version(con) == DEFAULT_TAG
    assert DEFAULT_STORAGE_VERSION == "v1.4.0"
    assert cli_json(path, "SELECT sum(i)::BIGINT AS s FROM raw.t") == [{"s": 6}]


def test_latest_gives_duckdb_2_format_which_the_1x_cli_refuses(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    warehouse.write_table(path, "raw", "t", pl.DataFrame({"i": [1]}), storage_version="latest")
    with duckdb.connect(str(path), read_only=True) as con:
        assert warehouse.file_storage_version(con).startswith("v2.")
    done = subprocess.run([str(duckdb_cli()), "-readonly", str(path), "-c", "SELECT 1"],
                          capture_output=True, text=True)
    assert done.returncode != 0 and "version number" in done.stderr


def _rich_file(path: Path) -> None:
    """A DuckDB-2.0-format file (no setting) with the kinds of objects the warehouse holds."""
    with duckdb.connect(str(path)) as con:
        con.execute("""
            CREATE SCHEMA marts;
            CREATE TABLE marts.fct (d DATE, id VARCHAR, x DOUBLE, q DECIMAL(18, 4),
                                    ts TIMESTAMP WITH TIME ZONE, tags VARCHAR[],
                                    s STRUCT(a INTEGER, b VARCHAR), ok BOOLEAN, n BIGINT);
            INSERT INTO marts.fct
              SELECT DATE '2025-01-01' + i::INTEGER, 'US:' || i, i / 7, i / 3,
                     TIMESTAMPTZ '2025-01-01 00:00:00+00' + to_seconds(i),
                     ['a', i::VARCHAR], {'a': i::INTEGER, 'b': 'b' || i}, i % 2 = 0,
                     CASE WHEN i % 5 = 0 THEN NULL ELSE i END
              FROM range(5000) r(i);
            COMMENT ON TABLE marts.fct IS 'one row per thing';
            COMMENT ON COLUMN marts.fct.x IS 'x, in USD';
            CREATE VIEW marts.v AS SELECT id, x FROM marts.fct;
            COMMENT ON VIEW marts.v IS 'a view';
        """)


def test_existing_duckdb_2_file_is_converted_with_nothing_lost(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    _rich_file(path)
    with duckdb.connect(str(path), read_only=True) as con:
        assert warehouse.file_storage_version(con).startswith("v2.")
        before = con.sql("SELECT * FROM marts.fct ORDER BY id").pl()
        before_catalog = catalog(con.execute(COLUMNS_SQL).fetchall()
                                 + con.execute(TABLES_SQL).fetchall())
        before_view = con.execute("SELECT comment FROM duckdb_views() WHERE view_name = 'v'"
                                  ).fetchall()
    # The first writer of the next run converts the file, once.
    with warehouse.connect(path) as con:
        assert warehouse.file_storage_version(con) == DEFAULT_TAG
    with duckdb.connect(str(path), read_only=True) as con:
        assert warehouse.file_storage_version(con) == DEFAULT_TAG
        after = con.sql("SELECT * FROM marts.fct ORDER BY id").pl()
        assert catalog(con.execute(COLUMNS_SQL).fetchall()
                       + con.execute(TABLES_SQL).fetchall()) == before_catalog
        assert con.execute("SELECT comment FROM duckdb_views() WHERE view_name = 'v'"
                           ).fetchall() == before_view == [("a view",)]
    assert after.equals(before)
    assert not list(tmp_path.glob(".*.tmp*")), "conversion left a temporary file"
    # The 1.x CLI reads the converted file, comments included.
    assert cli_json(path, "SELECT count(*) AS n, count(n) AS nn FROM marts.fct") == [
        {"n": 5000, "nn": 4000}]
    assert cli_json(path, "SELECT comment FROM duckdb_columns() WHERE table_name = 'fct' AND column_name = 'x'"
                    ) == [{"comment": "x, in USD"}]


def test_unknown_storage_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SELLOFF_STORAGE_VERSION='1.4'"):
        settings_from_env({"SELLOFF_STORAGE_VERSION": "1.4"})
    assert settings_from_env({}).store.storage_version == DEFAULT_STORAGE_VERSION
    assert settings_from_env({"SELLOFF_STORAGE_VERSION": "latest"}).store.storage_version == "latest"
    with pytest.raises(ValueError, match="v9.9.9"):
        warehouse.write_table(tmp_path / "w.duckdb", "raw", "t", pl.DataFrame({"i": [1]}),
                              storage_version="v9.9.9")


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(-2**62, 2**62), st.text(max_size=12),
                          st.floats(allow_nan=False, allow_infinity=False)), max_size=40))
def test_rows_survive_the_conversion(tmp_path_factory: pytest.TempPathFactory,
                                     rows: list[tuple[int, str, float]]) -> None:
    path = tmp_path_factory.mktemp("conv") / "w.duckdb"
    df = pl.DataFrame(rows, schema={"i": pl.Int64, "s": pl.String, "x": pl.Float64},
                      orient="row")
    with duckdb.connect(str(path)) as con:  # DuckDB 2.0's own format
        con.execute("CREATE SCHEMA raw")
        con.execute("CREATE TABLE raw.t AS SELECT * FROM df")
    warehouse.convert_storage(path, DEFAULT_STORAGE_VERSION)
    with duckdb.connect(str(path), read_only=True) as con:
        assert warehouse.file_storage_version(con) == DEFAULT_TAG
        assert con.sql("SELECT * FROM raw.t").pl().equals(df)


# ------------------------------------------------ a real run, through the CLI (slow, shared)

@pytest.fixture(scope="module")
def cli_run(cli_snapshot_run: dict) -> dict:
    """`selloff run` on the demo market (its exported snapshot), then `selloff query`, each
    in a subprocess as a user runs them, with a private warehouse and Dagster home: the
    session's shared CLI build (conftest), which other tests compare and copy."""
    return cli_snapshot_run


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "query"])
def test_commands_end_without_leak_lines_or_tracebacks(cli_run: dict, command: str) -> None:
    """No "nanobind: leaked" lines (issue 25). The run starts with no trading calendar
    cached (conftest: an empty TMPDIR), so it also covers a machine's first run of the day,
    where exchange_calendars builds them (in a child process, selloff.calendars)."""
    done = cli_run[command]
    for bad in ("leaked", "nanobind", "Traceback"):
        assert bad not in done.stderr, f"selloff {command} stderr:\n{done.stderr[-3000:]}"
        assert bad not in done.stdout, f"selloff {command} stdout:\n{done.stdout[-3000:]}"


def test_a_gx_suite_then_an_ephemeral_instance_end_without_leak_lines() -> None:
    """The smallest known trigger of issue 25 in a fresh interpreter: a GX suite (which
    imports duckdb_engine and its SQLAlchemy compile hook), then a Dagster ephemeral
    instance left undisposed. Each alone printed the 39 "leaked" lines before the hook
    was dropped at exit (selloff.quality.gx_suites._duckdb_engine)."""
    code = ("from selloff.contracts import empty_frame; "
            "from selloff.quality.gx_suites import run_suite; "
            "assert run_suite('securities', empty_frame('securities')).success; "
            "import dagster as dg; instance = dg.DagsterInstance.ephemeral(); print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
    for bad in ("leaked", "nanobind", "Traceback"):
        assert bad not in done.stderr, done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "query"])
def test_commands_print_no_traceback(cli_run: dict, command: str) -> None:
    done = cli_run[command]
    assert "Traceback" not in done.stderr + done.stdout, done.stderr[-3000:]


@pytest.mark.slow
def test_run_ends_with_the_report_paths(cli_run: dict) -> None:
    lines = [ln for ln in cli_run["run"].stdout.splitlines() if ln.strip()]
    reports = cli_run["root"] / "reports"
    assert lines[-3:] == [f"Report: {reports / name}" for name in
                          ("fact_check.md", "fact_check.html", "selloff_report.html")]


@pytest.mark.slow
def test_published_file_opens_in_the_1x_cli_on_every_schema(cli_run: dict) -> None:
    path = cli_run["warehouse"]
    with duckdb.connect(str(path), read_only=True) as con:
        assert warehouse.file_storage_version(con) == DEFAULT_TAG
        tables = sorted(con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE database_name = current_database() AND NOT internal").fetchall())
        columns = catalog(con.execute(COLUMNS_SQL).fetchall())
        table_comments = catalog(con.execute(TABLES_SQL).fetchall())
        counts = dict(con.execute(_counts_sql(tables)).fetchall())
    assert {s for s, _ in tables} >= set(SCHEMAS)

    # The same tables, column types, comments and row counts seen by the 1.x CLI.
    cli_columns = catalog([tuple(r.values()) for r in cli_json(path, COLUMNS_SQL)])
    assert cli_columns == columns
    assert catalog([tuple(r.values()) for r in cli_json(path, TABLES_SQL)]) == table_comments
    cli_counts = {r["name"]: r["n"] for r in cli_json(path, _counts_sql(tables))}
    assert cli_counts == counts
    # A query on each schema, checked against polars on what DuckDB 2.0 reads.
    for schema in SCHEMAS:
        first = next(t for s, t in tables if s == schema and counts[f"{s}.{t}"] > 0)
        with duckdb.connect(str(path), read_only=True) as con:
            frame = con.sql(f"SELECT * FROM {schema}.{first}").pl()
        key = frame.columns[0]
        expected = frame.group_by(key).len().sort(key, nulls_last=True).head(5)
        got = cli_json(path, f"SELECT {key} AS k, count(*) AS n FROM {schema}.{first} "
                             f"GROUP BY 1 ORDER BY 1 NULLS LAST LIMIT 5")
        assert [r["n"] for r in got] == expected["len"].to_list(), (schema, first)
        assert len(got) == expected.height > 0


@pytest.mark.slow
def test_query_prints_the_verdicts(cli_run: dict) -> None:
    with duckdb.connect(str(cli_run["warehouse"]), read_only=True) as con:
        ids = [r[0] for r in con.execute(
            "SELECT claim_id FROM analytics.claim_verdicts ORDER BY claim_id").fetchall()]
    assert ids
    for claim_id in ids[:5]:
        assert claim_id in cli_run["query"].stdout
