"""Production orchestration: windowed refresh = full run, single assets, schedules,
publication."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from selloff.episode import FACTS_LOOKAHEAD
from selloff.markets import market_of_expr
from selloff.sources.snapshot import SnapshotSource
from tests.conftest import DEMO_SECURITIES as N
from tests.graph_runs import GraphRun, assert_same_table, copy_run, failures, run_refresh

BACKFILL = ("2025-10-01", "2025-11-30")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- schedules

@pytest.mark.parametrize(("name", "cron", "tz", "local_day", "expect_day"), [
    ("daily_us_after_close", "30 16 * * 1-5", "America/New_York", dt.date(2025, 11, 21), True),
    ("daily_cn_after_close", "30 15 * * 1-5", "Asia/Shanghai", dt.date(2025, 11, 21), True),
    ("daily_kr_after_close", "0 16 * * 1-5", "Asia/Seoul", dt.date(2025, 11, 21), True),
    ("daily_jp_after_close", "0 16 * * 1-5", "Asia/Tokyo", dt.date(2025, 11, 21), True),
    ("daily_tw_after_close", "0 14 * * 1-5", "Asia/Taipei", dt.date(2025, 11, 21), True),
    ("daily_us_after_close", "30 16 * * 1-5", "America/New_York", dt.date(2025, 11, 27), False),
    ("daily_cn_after_close", "30 15 * * 1-5", "Asia/Shanghai", dt.date(2025, 10, 1), False),
    ("daily_jp_after_close", "0 16 * * 1-5", "Asia/Tokyo", dt.date(2025, 11, 24), False),
    ("daily_tw_after_close", "0 14 * * 1-5", "Asia/Taipei", dt.date(2025, 10, 10), False),
])
def test_market_schedules_request_their_local_day(name, cron, tz, local_day, expect_day) -> None:
    from zoneinfo import ZoneInfo

    defs = _defs()
    schedule = defs.resolve_schedule_def(name)
    assert schedule.cron_schedule == cron
    assert schedule.execution_timezone == tz
    assert schedule.job_name == "market_refresh"
    hour, minute = int(cron.split()[1]), int(cron.split()[0])
    when = dt.datetime.combine(local_day, dt.time(hour, minute), tzinfo=ZoneInfo(tz))
    with dg.build_schedule_context(scheduled_execution_time=when,
                                   repository_def=defs.get_repository_def()) as ctx:
        result = schedule.evaluate_tick(ctx)
    if expect_day:
        market = name.split("_")[1].upper()
        [request] = result.run_requests
        window = request.run_config["resources"]["refresh"]["config"]
        assert window == {"start": local_day.isoformat(), "end": local_day.isoformat(),
                          "markets": [market]}
        assert request.tags["selloff/market"] == market
    else:  # a holiday: Thanksgiving, China's National Day, Japan's Labour Thanksgiving
        # (observed), Taiwan's National Day
        assert not result.run_requests and result.skip_message


def _defs() -> dg.Definitions:
    from orchestration.definitions import defs

    return defs()


def test_filings_schedule_and_automation() -> None:
    defs = _defs()

    filings = defs.resolve_schedule_def("filings_daily")
    assert (filings.cron_schedule, filings.execution_timezone) == ("0 7 * * 1-5", "America/New_York")
    assert filings.job_name == "filings_refresh"
    graph = defs.resolve_asset_graph()
    for key in (dg.AssetKey(["marts", "fct_market_cap_daily"]),
                dg.AssetKey(["analytics", "selloff_decomposition"]),
                dg.AssetKey(["warehouse", "published"])):
        assert graph.get(key).automation_condition is not None, key
    prices = graph.get(dg.AssetKey(["raw", "prices_daily"]))
    assert prices.automation_condition is None


def test_a_market_refresh_is_the_refresh_without_the_filings() -> None:
    """The market schedules' job lands a session, not the filings (their own schedule):
    the same steps as the refresh but the two filings assets and their GX checks."""
    defs = _defs()
    steps = {name: set(defs.resolve_job_def(name).graph.node_dict)
             for name in ("refresh", "market_refresh", "filings_refresh")}
    filings = {"raw__fundamentals", "raw__fundamentals_gx_suite", "raw__shares_outstanding",
               "raw__shares_outstanding_gx_suite"}
    assert steps["refresh"] - steps["market_refresh"] == filings
    assert steps["market_refresh"] < steps["refresh"]
    assert {"raw__fundamentals", "raw__shares_outstanding"} <= steps["filings_refresh"]


def test_one_graph_without_partitions() -> None:
    """One Definitions for every entry point, and nothing partitioned: "Materialize all"
    in the UI is one run, with no partition dialog (the refresh window is run config)."""
    graph = _defs().resolve_asset_graph()
    keys = list(graph.get_all_asset_keys())
    assert len(keys) > 40
    assert all(graph.get(k).partitions_def is None for k in keys)


def test_every_writer_is_in_the_one_pool() -> None:
    defs = _defs()
    job = defs.resolve_job_def("refresh")
    pools = {node.name: node.definition.pool for node in job.graph.node_dict.values()}
    assert pools and all(p == "duckdb_writer" for p in pools.values()), pools


# ------------------------------------------------------------- windowed refresh vs full run

def _snapshot_without(full: Path, target: Path, first: dt.date, last: dt.date,
                      markets: tuple[str, ...] = ()) -> Path:
    """A copy of a snapshot whose daily datasets lack [first, last] (only `markets`' rows
    when given): as if those days had not arrived yet. Reference data and filings stay."""
    from assets.extract import DAILY_DATASETS

    target.mkdir()
    for f in full.iterdir():
        out = target / f.name
        if f.suffix != ".parquet" or f.stem not in DAILY_DATASETS:
            out.write_bytes(f.read_bytes())
            continue
        date_col, id_col = DAILY_DATASETS[f.stem]
        df = pl.read_parquet(f)
        gone = pl.col(date_col).is_between(first, last)
        if markets and id_col:
            gone = gone & market_of_expr(id_col).is_in(list(markets))
        df.filter(~gone).write_parquet(out)
    return target


def _assert_same_warehouse(expected, got, label: str) -> None:
    compared = 0
    for schema in ("raw", "marts", "analytics"):
        assert got.tables(schema) == expected.tables(schema)
        for table in expected.tables(schema):
            assert_same_table(expected.table(f"{schema}.{table}"), got.table(f"{schema}.{table}"),
                              f"{schema}.{table} after {label}")
            compared += 1
    assert compared >= 25


@pytest.fixture(scope="module")
def full_build(demo_snapshot: Path, demo_snapshot_run: GraphRun) -> tuple[Path, GraphRun]:
    """The demo exported as a snapshot and its full build: the session's shared ones
    (conftest). Tests copy the build before writing to it."""
    return demo_snapshot, demo_snapshot_run


@pytest.mark.slow
def test_window_refresh_gives_the_same_warehouse_as_a_full_run(tmp_path: Path, full_build) -> None:
    full_snapshot, full = full_build
    first_day, last_day = (dt.date.fromisoformat(d) for d in BACKFILL)
    gap = _snapshot_without(full_snapshot, tmp_path / "gap", first_day, last_day)
    assert SnapshotSource(full_snapshot).load("prices_daily").height > \
        SnapshotSource(gap).load("prices_daily").height

    root = tmp_path / "refreshed"
    before = run_refresh(root, SELLOFF_SOURCE="snapshot", SELLOFF_SNAPSHOT_DIR=str(gap))
    assert before.result.success, failures(before)
    refreshed = run_refresh(root, window=BACKFILL, SELLOFF_SOURCE="snapshot",
                            SELLOFF_SNAPSHOT_DIR=str(full_snapshot))
    assert refreshed.result.success, failures(refreshed)
    _assert_same_warehouse(full, refreshed, f"refreshing {BACKFILL}")


@pytest.mark.slow
def test_one_market_one_day_refresh_gives_the_same_warehouse(tmp_path: Path, full_build) -> None:
    """What a market schedule does: the US session of one day arrives; its rows are
    replaced in raw, the daily facts rebuilt from that day on (not from the start).
    A reader connected to the published file meanwhile sees the old data until it
    reconnects."""
    full_snapshot, full = full_build
    day = dt.date(2025, 11, 20)
    gap = _snapshot_without(full_snapshot, tmp_path / "gap", day, day, markets=("US",))
    root = tmp_path / "refreshed"
    before = run_refresh(root, SELLOFF_SOURCE="snapshot", SELLOFF_SNAPSHOT_DIR=str(gap))
    assert before.result.success, failures(before)
    cn_rows = before.table("raw.prices_daily").filter(pl.col("security_id").str.starts_with("CN:"))
    # The day's US market caps: none before the refresh, the session's after it.
    query = ("SELECT count(*), sum(market_cap_usd) FROM marts.fct_market_cap_daily "
             f"WHERE security_id LIKE 'US:%' AND trade_date = DATE '{day}'")
    reader = duckdb.connect(str(before.warehouse), read_only=True)
    try:
        old = reader.execute(query).fetchall()[0]
        refreshed = run_refresh(root, window=(day.isoformat(), day.isoformat()), markets=("US",),
                                job="market_refresh", SELLOFF_SOURCE="snapshot",
                                SELLOFF_SNAPSHOT_DIR=str(full_snapshot))
        assert refreshed.result.success, failures(refreshed)
        assert reader.execute(query).fetchall()[0] == old
    finally:
        reader.close()
    with duckdb.connect(str(before.warehouse), read_only=True) as fresh:
        assert fresh.execute(query).fetchall()[0] != old
    [extract] = [e for e in refreshed.result.get_asset_materialization_events()
                 if e.asset_key == dg.AssetKey(["raw", "prices_daily"])]
    meta = extract.materialization.metadata
    assert meta["window"].value == f"{day} .. {day} (US)"
    # only the US rows of that day were written; other markets' rows were left as they were
    us_day = SnapshotSource(full_snapshot).load("prices_daily").filter(
        (pl.col("trade_date") == day) & pl.col("security_id").str.starts_with("US:"))
    assert meta["rows_replaced"].value == us_day.height > 0
    assert meta["dagster/row_count"].value == refreshed.table("raw.prices_daily").height
    assert_same_table(cn_rows, refreshed.table("raw.prices_daily").filter(
        pl.col("security_id").str.starts_with("CN:")), "CN prices")
    _assert_same_warehouse(full, refreshed, f"refreshing US {day}")
    # 2025-11-20 lies in the AI sell-off's span, after the tariff shock's last day
    # (2025-04-25): only the former's rows were recomputed, the latter's kept as they were.
    for key, meta in _per_episode_metadata(refreshed).items():
        assert meta["episodes_recomputed"].value == "ai_selloff_2025", key
        assert meta["episodes_kept"].value == "tariff_shock_2025", key


def _per_episode_metadata(run) -> dict[str, dict]:
    """Each per-episode analytics table's materialization metadata in `run`."""
    from selloff.analytics.tables import TABLE_SCHEMAS

    whole = {"data_quality_findings", "episode_candidates", "episode_candidate_events"}
    out = {}
    for e in run.result.get_asset_materialization_events():
        key = e.asset_key.path
        if key[0] == "analytics" and key[1] in TABLE_SCHEMAS and key[1] not in whole:
            out[key[1]] = e.materialization.metadata
    assert len(out) >= 10, sorted(out)
    return out


@pytest.mark.slow
def test_a_day_after_every_episode_changes_no_analytics_table(tmp_path: Path,
                                                             full_build) -> None:
    """A session after every episode's span: the daily facts change, no episode's
    analytics rows do, and each table records that it kept them all."""
    import shutil

    snapshot, full = full_build
    prices = pl.read_parquet(snapshot / "prices_daily.parquet")
    last = prices["trade_date"].max()
    # A US session past the AI sell-off's span (its claims read 2025's event days, to
    # 2025-12-31) by more than FACTS_LOOKAHEAD.
    from selloff.calendars import is_trading_day

    day = max(last, dt.date(2025, 12, 31)) + FACTS_LOOKAHEAD + dt.timedelta(days=1)
    while not is_trading_day("US", day):
        day += dt.timedelta(days=1)
    later = tmp_path / "later"
    shutil.copytree(snapshot, later)
    us = prices.filter((pl.col("trade_date") == last) & pl.col("security_id").str.starts_with("US:"))
    moved = [pl.col(c) * 0.97 for c in ("open", "high", "low", "close", "adj_close")]
    pl.concat([prices, us.with_columns(pl.lit(day).alias("trade_date"), *moved)]
              ).write_parquet(later / "prices_daily.parquet")
    root = tmp_path / "run"
    shutil.copytree(full.root / "warehouse", root / "warehouse")
    refreshed = run_refresh(root, window=(day.isoformat(), day.isoformat()), markets=("US",),
                            job="market_refresh", SELLOFF_SOURCE="snapshot",
                            SELLOFF_SNAPSHOT_DIR=str(later))
    assert refreshed.result.success, failures(refreshed)
    assert refreshed.table("marts.fct_market_cap_daily")["trade_date"].max() == day
    metadata = _per_episode_metadata(refreshed)
    for table, meta in metadata.items():
        assert meta["episodes_recomputed"].value == "none", (table, meta["refresh_reasons"])
        assert meta["episodes_kept"].value == "ai_selloff_2025, tariff_shock_2025", table
        assert_same_table(full.table(f"analytics.{table}"), refreshed.table(f"analytics.{table}"),
                          f"analytics.{table} after a day past every episode")


@pytest.mark.slow
@pytest.mark.parametrize("key", [
    ["raw", "securities"],                       # extract
    ["staging", "stg_prices_daily"],             # dbt staging (a view)
    ["marts", "fct_market_cap_daily"],           # dbt mart, with its tests as checks
    ["analytics", "valuation_spread"],           # analytics
    ["report", "selloff_report"],                # report
])
def test_one_asset_whose_parents_exist_materializes_alone(key, tmp_path: Path, full_build) -> None:
    import shutil

    snapshot, full = full_build
    root = tmp_path / "one"
    shutil.copytree(full.root / "warehouse", root / "warehouse")
    from orchestration.definitions import build_definitions
    from selloff.settings import settings_from_env

    defs = build_definitions(settings_from_env({
        "SELLOFF_WAREHOUSE": str(root / "warehouse" / "selloff.duckdb"),
        "SELLOFF_SOURCE": "snapshot", "SELLOFF_SNAPSHOT_DIR": str(snapshot)}))
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(asset_selection=[dg.AssetKey(key)], raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    keys = {e.asset_key for e in result.get_asset_materialization_events()}
    assert keys == {dg.AssetKey(key)}


# --------------------------------------------------------------------------- publication

# A reader connected to the published file during a refresh sees the old data until it
# reconnects: checked inside test_one_market_one_day_refresh_gives_the_same_warehouse, on
# the refresh it already runs.


# A run killed in the middle of its dbt build leaves the published file intact, and the next
# run succeeds: tests/test_writer_lock.py (test_killed_run_never_blocks_the_next_...), on a
# copy of the shared demo build, through `selloff run` as a user starts it.


@pytest.mark.slow
def test_failing_blocking_check_stops_publication(tmp_path: Path, demo_run: GraphRun, monkeypatch) -> None:
    first = copy_run(demo_run, tmp_path)  # a full demo build at N, published
    before = _sha(first.warehouse)

    import assets.extract.datasets as extract
    from selloff.quality.gx_suites import SuiteOutcome

    real = extract.run_suite_on_table

    def failing(con, dataset, *args, **kwargs):
        # The real suite runs on the build file first, inside the materialization.
        outcome = real(con, dataset, *args, **kwargs)
        assert outcome is not None and outcome.success, outcome
        if dataset != "prices_daily":
            return outcome
        return SuiteOutcome(**{**outcome.__dict__, "success": False, "failed": [
            {"rule": "injected failure", "column": "close", "description": "injected failure"}]})

    monkeypatch.setattr(extract, "run_suite_on_table", failing)
    second = run_refresh(tmp_path, SELLOFF_SOURCE="demo", SELLOFF_DEMO_SECURITIES=N)
    assert not second.result.success
    published = [e for e in second.result.get_asset_materialization_events()
                 if e.asset_key == dg.AssetKey(["warehouse", "published"])]
    assert not published
    assert _sha(first.warehouse) == before


def test_project_instance_has_one_writer_and_a_run_queue(monkeypatch) -> None:
    from tests.conftest import REPO_ROOT

    monkeypatch.setenv("DAGSTER_HOME", str(REPO_ROOT / "dagster_home"))
    instance = dg.DagsterInstance.get()
    config = instance.get_concurrency_config()
    assert config.pool_config.default_pool_limit == 1
    assert config.run_queue_config.max_concurrent_runs == 1
    assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
