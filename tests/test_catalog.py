"""The analyst's warehouse (issue 20) and what runs say they refreshed (issue 18, item 5).

Fast part: every raw, analytics and dbt column has a description; the Dagster catalog
carries column schemas, owners and code links; COMMENT ON survives any text; the query
command refuses bad input with exit code 2.
Slow part, on one real demo run: every column of raw, staging, marts and analytics has a
comment in the published file; every ```sql block of README.md and docs/ returns rows;
`selloff query --format csv|json|parquet` gives the table polars reads; the lake holds
the analytics tables; the extract and dbt materializations carry `dagster/row_count`;
Harlequin, the engine of `selloff sql`, opens the published file read-only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selloff import catalog
from selloff.analytics import tables as analytics_tables
from selloff.contracts import DATASETS
from tests.conftest import DEMO_SECURITIES, REPO_ROOT
from tests.graph_runs import GraphRun, copy_run

SELLOFF = str(Path(sys.executable).parent / "selloff")
MANIFEST = REPO_ROOT / "dbt_project" / "target" / "manifest.json"
DOC_FILES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
SQL_BLOCK = re.compile(r"```sql\n(.*?)```", re.S)


# --- descriptions: one source each, none missing -------------------------------------

def test_every_raw_column_has_a_description() -> None:
    for name, doc in catalog.raw_tables().items():
        assert doc.description, f"raw.{name} has no description"
        missing = [c.name for c in doc.columns if not c.description]
        assert not missing, f"raw.{name}: columns without a description: {missing}"
    assert set(catalog.raw_tables()) == {*DATASETS, "trading_calendar"}


def test_every_analytics_column_has_a_description() -> None:
    assert set(analytics_tables.TABLE_DOCS) == set(analytics_tables.TABLE_SCHEMAS)
    for name, doc in catalog.analytics_table_docs().items():
        missing = [c.name for c in doc.columns if not c.description]
        assert not missing, f"analytics.{name}: columns without a description: {missing}"
        if name not in analytics_tables.WHOLE_DATA_TABLES:
            assert doc.columns[0].name == analytics_tables.EPISODE_COLUMN, name
    # an override for a column that does not exist would be a stale description
    stale = [k for k in analytics_tables.TABLE_COLUMN_DOCS
             if k[1] not in analytics_tables.TABLE_SCHEMAS.get(k[0], {})]
    assert not stale, stale


def test_every_dbt_model_and_column_has_a_description() -> None:
    manifest = json.loads(MANIFEST.read_text())
    missing = []
    for node in manifest["nodes"].values():
        if node["resource_type"] not in ("model", "seed") or node["package_name"] != "selloff":
            continue
        if not node["description"].strip():
            missing.append(node["name"])
        missing.extend(f"{node['name']}.{c}" for c, v in node["columns"].items()
                       if not v["description"].strip())
    assert not missing, missing


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
               max_size=80))
def test_any_description_text_survives_comment_on(text: str) -> None:
    # Quotes, backslashes, newlines, non-ASCII: the comment reads back exactly.
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw; CREATE TABLE raw.t (x INTEGER)")
    con.execute(f"COMMENT ON COLUMN raw.t.x IS {catalog._literal(text)}")
    got = con.execute("SELECT comment FROM duckdb_columns() WHERE table_name = 't'").fetchall()
    assert got[0][0] == text


def test_comments_cover_what_exists_and_skip_what_does_not() -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw; CREATE SCHEMA analytics")
    con.execute("CREATE TABLE raw.fx_rates_daily (trade_date DATE, currency VARCHAR, "
                "usd_per_unit DOUBLE, source VARCHAR)")
    # an older table lacking a column now in the schema: commented for what it has
    con.execute("CREATE TABLE analytics.selloff_rollup (episode_id VARCHAR, window_id VARCHAR)")
    con.execute("CREATE TABLE analytics.scratch (y INTEGER)")  # not ours: left alone
    n = catalog.apply_comments(con)
    assert n == 2 + 4 + 2
    assert catalog.uncommented(con, ("raw",)) == []
    assert catalog.uncommented(con, ("analytics",)) == ["analytics.scratch",
                                                        "analytics.scratch.y"]
    comment = con.execute("SELECT comment FROM duckdb_columns() WHERE table_name = "
                          "'fx_rates_daily' AND column_name = 'usd_per_unit'").fetchall()[0][0]
    assert comment == DATASETS["fx_rates_daily"].column_doc("usd_per_unit")


def test_dbt_docs_yaml_is_generated_from_the_library() -> None:
    from selloff import dbt_docs

    assert dbt_docs.YAML_PATH.read_text(encoding="utf-8") == dbt_docs.dbt_yaml_text(), (
        "dbt_project/models/analytics/_analytics.yml is stale: run `python -m selloff.dbt_docs`")


def test_dbt_exposures_reach_the_report_fact_check_and_warehouse() -> None:
    from selloff.marts import MART_KEYS
    from selloff.report import REPORT_TABLES

    manifest = json.loads(MANIFEST.read_text())
    exposures = {e["name"]: set(e["depends_on"]["nodes"]) for e in manifest["exposures"].values()}
    assert set(exposures) == {"selloff_report", "fact_check", "published_warehouse"}
    assert exposures["selloff_report"] == {f"source.selloff.analytics.{t}" for t in REPORT_TABLES}
    assert "source.selloff.analytics.claim_verdicts" in exposures["fact_check"]
    assert {f"model.selloff.{m}" for m in MART_KEYS} <= exposures["published_warehouse"]
    sources = {s["source_name"] + "." + s["name"]: s for s in manifest["sources"].values()}
    rollup = sources["analytics.selloff_rollup"]
    assert rollup["columns"]["share_of_total"]["description"] == analytics_tables.column_doc(
        "selloff_rollup", "share_of_total")


# --- the catalog in the UI -----------------------------------------------------------

@pytest.fixture(scope="module")
def asset_graph():
    from orchestration.definitions import build_definitions
    from selloff.settings import settings_from_env

    return build_definitions(settings_from_env({})).resolve_asset_graph()


def test_table_assets_carry_column_schema_owners_and_code_links(asset_graph) -> None:
    tables = [k for k in asset_graph.get_all_asset_keys()
              if k.path[0] in ("raw", "staging", "marts", "analytics")]
    assert {k.path[0] for k in tables} == {"raw", "staging", "marts", "analytics"}
    for key in tables:
        node = asset_graph.get(key)
        schema = node.metadata.get("dagster/column_schema")
        assert schema is not None and schema.columns, f"{key.to_user_string()}: no column schema"
        assert all(c.description for c in schema.columns), key.to_user_string()
        assert node.owners, f"{key.to_user_string()}: no owner"
        refs = node.metadata["dagster/code_references"].code_references
        assert refs and all(Path(r.file_path).exists() for r in refs), key.to_user_string()
    raw = asset_graph.get(dg.AssetKey(["raw", "prices_daily"])).metadata["dagster/column_schema"]
    assert [c.name for c in raw.columns] == DATASETS["prices_daily"].column_names
    model = asset_graph.get(dg.AssetKey(["marts", "fct_market_cap_daily"]))
    assert any(r.file_path.endswith("fct_market_cap_daily.sql")
               for r in model.metadata["dagster/code_references"].code_references)


# --- selloff query: bad input -------------------------------------------------------

@pytest.fixture()
def small_warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA analytics; CREATE TABLE analytics.t AS "
                    "SELECT range AS n, DATE '2025-11-01' + range::INT AS d, "
                    "'x''' || range AS s FROM range(5)")
    return path


@pytest.mark.parametrize(("args", "message"), [
    (["select * from analytics.nope"], "query failed"),
    (["select 1", "--format", "xml"], "unknown format 'xml'"),
    (["select 1", "--format", "parquet"], "needs --out"),
    (["select 1", "--out", "x.csv"], "--format table prints to the terminal"),
    (["create table analytics.u (x int)"], "read-only"),
    (["   "], "the SQL is empty"),
])
def test_query_refuses_bad_input_with_exit_2(small_warehouse: Path, tmp_path: Path,
                                              args: list[str], message: str) -> None:
    done = subprocess.run([SELLOFF, "query", *args, "--warehouse", str(small_warehouse)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2, done
    assert message in " ".join((done.stderr + done.stdout).split())
    assert "Traceback" not in done.stderr


def test_query_writes_each_format(small_warehouse: Path, tmp_path: Path) -> None:
    expected = duckdb.connect(str(small_warehouse), read_only=True).sql(
        "SELECT * FROM analytics.t ORDER BY n").pl()
    for fmt, read in (("csv", pl.read_csv), ("json", pl.read_json),
                      ("parquet", pl.read_parquet)):
        out = tmp_path / f"t.{fmt}"
        subprocess.run([SELLOFF, "query", "SELECT * FROM analytics.t ORDER BY n", "--format",
                        fmt, "--out", str(out), "--warehouse", str(small_warehouse)],
                       check=True, capture_output=True)
        got = read(out)
        if fmt != "parquet":  # text formats: the date comes back as text
            got = got.with_columns(pl.col("d").str.to_date())
        assert got.equals(expected), fmt
    # csv to standard output
    done = subprocess.run([SELLOFF, "query", "SELECT n, s FROM analytics.t ORDER BY n",
                           "--format", "csv", "--warehouse", str(small_warehouse)],
                          check=True, capture_output=True, text=True)
    assert done.stdout.splitlines()[:2] == ["n,s", "0,x'0"]


# --- on a real demo run ------------------------------------------------------------------

N_SECURITIES = DEMO_SECURITIES


@pytest.fixture(scope="module")
def demo(demo_run: GraphRun) -> GraphRun:
    """The session's shared demo build (conftest); these tests only read it."""
    return demo_run


def _published(demo: GraphRun) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(demo.warehouse), read_only=True)


@pytest.mark.slow
def test_every_table_and_column_of_the_four_schemas_has_a_comment(demo: GraphRun) -> None:
    with _published(demo) as con:
        assert catalog.uncommented(con) == []
        counts = dict(con.execute(
            "SELECT schema_name, count(*) FROM duckdb_columns() WHERE schema_name IN "
            "('raw', 'staging', 'marts', 'analytics') GROUP BY 1").fetchall())
        assert set(counts) == {"raw", "staging", "marts", "analytics"}
        # the library's description is what the file says (one source)
        got = con.execute("SELECT comment FROM duckdb_columns() WHERE schema_name = "
                          "'analytics' AND table_name = 'selloff_rollup' AND "
                          "column_name = 'share_of_total'").fetchall()[0][0]
        assert got == analytics_tables.column_doc("selloff_rollup", "share_of_total")


def _sql_blocks() -> list[tuple[str, int, str]]:
    blocks = []
    for path in DOC_FILES:
        for i, sql in enumerate(SQL_BLOCK.findall(path.read_text(encoding="utf-8"))):
            blocks.append((path.relative_to(REPO_ROOT).as_posix(), i + 1, sql))
    return blocks


def test_the_cookbook_has_at_least_ten_questions() -> None:
    assert sum(1 for f, _, _ in _sql_blocks() if f == "docs/SQL.md") >= 10


@pytest.mark.slow
@pytest.mark.parametrize(("doc", "n", "sql"), _sql_blocks(),
                         ids=[f"{f}#{n}" for f, n, _ in _sql_blocks()])
def test_every_sql_block_of_the_docs_returns_rows(demo: GraphRun, doc: str, n: int,
                                                  sql: str) -> None:
    with _published(demo) as con:
        df = con.sql(sql).pl()
    assert df.height > 0, f"{doc}, sql block {n} returned no rows"


@pytest.mark.slow
def test_query_csv_json_parquet_on_the_published_file(demo: GraphRun, tmp_path: Path) -> None:
    sql = ("SELECT episode_id, claim_id, verdict, computed_value, window_start "
           "FROM analytics.claim_verdicts ORDER BY episode_id, claim_id")
    # independent figure: the table itself, read by polars through DuckDB's Arrow export
    with _published(demo) as con:
        expected = con.sql("SELECT * FROM analytics.claim_verdicts").pl().select(
            "episode_id", "claim_id", "verdict", "computed_value", "window_start").sort(
            "episode_id", "claim_id")
    assert expected.height > 0
    outs = {}
    for fmt in ("csv", "json", "parquet"):
        out = tmp_path / f"verdicts.{fmt}"
        subprocess.run([SELLOFF, "query", sql, "--format", fmt, "--out", str(out),
                        "--warehouse", str(demo.warehouse)], check=True, capture_output=True)
        outs[fmt] = out
    assert pl.read_parquet(outs["parquet"]).equals(expected)
    csv = pl.read_csv(outs["csv"], schema=expected.schema)
    assert csv.equals(expected)
    rows = json.loads(outs["json"].read_text())
    assert [r["claim_id"] for r in rows] == expected["claim_id"].to_list()
    assert rows[0]["window_start"] == str(expected["window_start"][0])


@pytest.mark.slow
def test_the_lake_holds_the_analytics_tables(demo: GraphRun) -> None:
    from selloff import lake

    root = demo.root / "lake"
    with _published(demo) as con:
        for table in analytics_tables.TABLE_SCHEMAS:
            back = lake.read_table(lake.table_path(root, "analytics", table))
            assert back is not None, f"lake/analytics/{table} missing"
            want = con.sql(f"SELECT * FROM analytics.{table}").pl()
            assert back.columns == want.columns, table
            key = [c for c in want.columns if want.schema[c] != pl.Float64]
            assert back.sort(key, nulls_last=True).equals(want.sort(key, nulls_last=True)), table
    # the same hive layout as raw and marts: market folders where the table has a market
    assert any((root / "analytics" / "selloff_decomposition").glob("market=*/*.parquet"))
    assert any((root / "analytics" / "valuation_spread").glob("month=*/*.parquet"))


@pytest.mark.slow
def test_materializations_report_row_counts_and_refresh_scope(demo: GraphRun) -> None:
    events = {e.asset_key: e.materialization.metadata
              for e in demo.result.get_asset_materialization_events()}
    with _published(demo) as con:
        def count(schema: str, table: str) -> int:
            return con.execute(f"SELECT count(*) FROM {schema}.{table}").fetchall()[0][0]

        for key, meta in events.items():
            if key.path[0] not in ("raw", "staging", "marts", "analytics"):
                continue
            assert meta["dagster/row_count"].value == count(*key.path), key.to_user_string()
        prices = events[dg.AssetKey(["raw", "prices_daily"])]
        assert prices["rows_replaced"].value == count("raw", "prices_daily") > 0
        assert prices["refresh_scope"].value == "full"
        assert "rows" not in prices
    assert dg.AssetKey(["marts", "fct_market_cap_daily"]) in events
    assert dg.AssetKey(["staging", "stg_prices_daily"]) in events


@pytest.mark.slow
def test_harlequin_opens_the_published_file_read_only(demo: GraphRun) -> None:

    from selloff.query import sql_shell_command

    command = sql_shell_command(demo.warehouse)
    assert Path(command[0]).exists() and "--read-only" in command and "--no-init" in command
    # The adapter `selloff sql` starts, with the same options, on this environment's duckdb;
    # in a process of its own, as the shell is (DuckDB refuses a second configuration of a
    # file within one process).
    with _published(demo) as con:
        expected = con.execute("SELECT count(*) FROM analytics.claim_verdicts").fetchall()[0][0]
    probe = (
        "import sys\n"
        "from harlequin_duckdb.adapter import DuckDbAdapter\n"
        "conn = DuckDbAdapter(conn_str=[sys.argv[1]], read_only=True, no_init=True).connect()\n"
        "cur = conn.execute('SELECT count(*) AS n FROM analytics.claim_verdicts')\n"
        "print(cur.fetchall().column('n').to_pylist()[0])\n"
        "try:\n"
        "    conn.execute('CREATE TABLE analytics.x AS SELECT 1')\n"
        "except Exception as exc:\n"
        "    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", probe, str(demo.warehouse)],
                          capture_output=True, text=True, check=True)
    count, refusal = done.stdout.splitlines()[:2]
    assert int(count) == expected > 0
    assert "read-only" in refusal


@pytest.mark.slow
def test_selloff_sql_starts_the_shell_in_a_terminal(demo: GraphRun) -> None:
    """`selloff sql` in a pseudo-terminal: Harlequin connects to the published file and
    quits on ctrl+q with exit code 0."""
    import os
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: the command as a user types it
        os.environ.update({"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"})
        os.execv(SELLOFF, [SELLOFF, "sql", "--warehouse", str(demo.warehouse)])
    screen = b""

    def read_for(seconds: float, until: bytes | None = None) -> None:
        nonlocal screen
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and until in screen):
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    screen += os.read(fd, 65536)
                except OSError:  # the child closed the terminal
                    return

    try:
        read_for(90, until=b"Connected")
        text = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", screen)
        assert b"Harlequin" in text and b"Connected" in text, text[-2000:]
        os.write(fd, b"\x11")  # ctrl+q
        read_for(20)
        for _ in range(40):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.5)
        assert done == pid and os.waitstatus_to_exitcode(status) == 0
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)


@pytest.mark.slow
def test_a_window_refresh_reports_rows_replaced_and_its_window(demo: GraphRun,
                                                               tmp_path: Path) -> None:
    """Issue 18, item 5: a windowed refresh of one market's session says what it replaced."""
    from orchestration.definitions import build_definitions
    from orchestration.schedules import refresh_window_config
    from selloff.settings import settings_from_env
    from selloff.sources.demo import DemoSource

    day = dt.date(2025, 11, 20)
    # On a private copy: the refresh rewrites the build file, which the shared build keeps.
    demo = copy_run(demo, tmp_path / "copy")
    defs = build_definitions(settings_from_env({
        "SELLOFF_WAREHOUSE": str(demo.warehouse), "SELLOFF_SOURCE": "demo",
        "SELLOFF_DEMO_SECURITIES": N_SECURITIES}))
    result = defs.resolve_job_def("extract_only").execute_in_process(
        raise_on_error=False,
        run_config=refresh_window_config(day, day, ("US",)))
    assert result.success
    meta = {e.asset_key: e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    prices = meta[dg.AssetKey(["raw", "prices_daily"])]
    # independent figure: the demo source's US rows of that day, counted in polars
    expected = DemoSource(n_securities=int(N_SECURITIES)).load("prices_daily").filter(
        (pl.col("trade_date") == day) & pl.col("security_id").str.starts_with("US:")).height
    assert prices["rows_replaced"].value == expected > 0
    assert prices["refresh_scope"].value == "window"
    midnight = dt.datetime(2025, 11, 20, tzinfo=dt.UTC).timestamp()
    assert prices["window_start"].value == prices["window_end"].value == midnight
    assert prices["window_markets"].value == "US"
    build = demo.root / "warehouse" / "build" / "selloff.duckdb"
    with duckdb.connect(str(build), read_only=True) as con:
        total = con.execute("SELECT count(*) FROM raw.prices_daily").fetchall()[0][0]
    assert prices["dagster/row_count"].value == total > expected
    # reference data is replaced whole on every run
    securities = meta[dg.AssetKey(["raw", "securities"])]
    assert securities["refresh_scope"].value == "full"
    assert securities["rows_replaced"].value == securities["dagster/row_count"].value
