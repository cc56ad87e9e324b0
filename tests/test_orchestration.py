"""Production orchestration: partitioned backfill = full run, schedules, publication."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from selloff.sources.demo import export_demo_snapshot
from selloff.sources.snapshot import SnapshotSource
from tests.graph_runs import assert_same_table, failures, run_refresh

N = "30"
BACKFILL = ("2025-10-01", "2025-11-30")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- schedules

@pytest.mark.parametrize(("name", "cron", "tz", "local_day", "expect_day"), [
    ("daily_us_after_close", "30 16 * * 1-5", "America/New_York", dt.date(2025, 11, 21), True),
    ("daily_cn_after_close", "30 15 * * 1-5", "Asia/Shanghai", dt.date(2025, 11, 21), True),
    ("daily_kr_after_close", "0 16 * * 1-5", "Asia/Seoul", dt.date(2025, 11, 21), True),
    ("daily_jp_after_close", "0 16 * * 1-5", "Asia/Tokyo", dt.date(2025, 11, 21), True),
    ("daily_us_after_close", "30 16 * * 1-5", "America/New_York", dt.date(2025, 11, 27), False),
    ("daily_cn_after_close", "30 15 * * 1-5", "Asia/Shanghai", dt.date(2025, 10, 1), False),
    ("daily_jp_after_close", "0 16 * * 1-5", "Asia/Tokyo", dt.date(2025, 11, 24), False),
])
def test_market_schedules_request_their_local_day(name, cron, tz, local_day, expect_day) -> None:
    from zoneinfo import ZoneInfo

    from orchestration.definitions import defs

    schedule = defs.resolve_schedule_def(name)
    assert schedule.cron_schedule == cron
    assert schedule.execution_timezone == tz
    hour, minute = int(cron.split()[1]), int(cron.split()[0])
    when = dt.datetime.combine(local_day, dt.time(hour, minute), tzinfo=ZoneInfo(tz))
    with dg.build_schedule_context(scheduled_execution_time=when,
                                   repository_def=defs.get_repository_def()) as ctx:
        result = schedule.evaluate_tick(ctx)
    if expect_day:
        assert [r.partition_key for r in result.run_requests] == [local_day.isoformat()]
        assert result.run_requests[0].tags["selloff/market"] == name.split("_")[1].upper()
    else:  # a holiday: Thanksgiving, China's National Day, Japan's Labour Thanksgiving (observed)
        assert not result.run_requests and result.skip_message


def test_filings_schedule_and_automation() -> None:
    from orchestration.definitions import defs

    filings = defs.resolve_schedule_def("filings_daily")
    assert (filings.cron_schedule, filings.execution_timezone) == ("0 7 * * 1-5", "America/New_York")
    assert filings.job_name == "filings_refresh"
    graph = defs.resolve_asset_graph()
    for key in (dg.AssetKey(["marts", "fct_market_cap_daily"]),
                dg.AssetKey(["analytics", "selloff_decomposition"]),
                dg.AssetKey(["warehouse", "published"])):
        assert graph.get(key).automation_condition is not None, key
    prices = graph.get(dg.AssetKey(["raw", "prices_daily"]))
    assert prices.partitions_def is not None and prices.automation_condition is None


def test_every_writer_is_in_the_one_pool() -> None:
    from orchestration.definitions import defs

    job = defs.resolve_job_def("refresh")
    pools = {node.name: node.definition.pool for node in job.graph.node_dict.values()}
    assert pools and all(p == "duckdb_writer" for p in pools.values()), pools


# ------------------------------------------------------------------ backfill vs full run

@pytest.mark.slow
def test_backfill_gives_the_same_warehouse_as_a_full_run(tmp_path: Path) -> None:
    full_snapshot = export_demo_snapshot(tmp_path / "demo", n_securities=int(N))
    # The same market with October-November missing from every daily dataset: as if those
    # days arrived late. Reference data and filings are complete in both.
    gap = tmp_path / "demo_gap"
    gap.mkdir()
    src = SnapshotSource(full_snapshot)
    for f in full_snapshot.iterdir():
        target = gap / f.name
        if f.suffix != ".parquet":
            target.write_bytes(f.read_bytes())
            continue
        df = pl.read_parquet(f)
        if "trade_date" in df.columns and f.stem != "shares_outstanding":
            df = df.filter(~pl.col("trade_date").is_between(dt.date(2025, 10, 1), dt.date(2025, 11, 30)))
        df.write_parquet(target)
    assert src.load("prices_daily").height > SnapshotSource(gap).load("prices_daily").height

    full = run_refresh(tmp_path / "full", SELLOFF_SOURCE="snapshot", SELLOFF_SNAPSHOT_DIR=str(full_snapshot))
    assert full.result.success, failures(full)
    root = tmp_path / "backfilled"
    first = run_refresh(root, SELLOFF_SOURCE="snapshot", SELLOFF_SNAPSHOT_DIR=str(gap))
    assert first.result.success, failures(first)
    backfill = run_refresh(root, partition_range=BACKFILL, SELLOFF_SOURCE="snapshot",
                           SELLOFF_SNAPSHOT_DIR=str(full_snapshot))
    assert backfill.result.success, failures(backfill)
    planned = backfill.result.dagster_run.tags
    assert planned["dagster/asset_partition_range_start"] == BACKFILL[0]

    compared = 0
    for schema in ("raw", "marts", "analytics"):
        assert backfill.tables(schema) == full.tables(schema)
        for table in full.tables(schema):
            assert_same_table(full.table(f"{schema}.{table}"), backfill.table(f"{schema}.{table}"),
                              f"{schema}.{table} after the backfill")
            compared += 1
    assert compared >= 25


# --------------------------------------------------------------------------- publication

@pytest.mark.slow
def test_reader_during_refresh_sees_old_data_until_it_reconnects(tmp_path: Path) -> None:
    first = run_refresh(tmp_path, SELLOFF_SOURCE="demo", SELLOFF_DEMO_SECURITIES=N)
    assert first.result.success, failures(first)
    query = ("SELECT market_cap_usd FROM marts.fct_market_cap_daily "
             "WHERE security_id = 'US:NVDA' AND trade_date = DATE '2025-11-20'")
    reader = duckdb.connect(str(first.warehouse), read_only=True)
    try:
        old = reader.execute(query).fetchall()[0][0]
        # Another seed: a different market, so the new figure differs from the old one.
        second = run_refresh(tmp_path, SELLOFF_SOURCE="demo", SELLOFF_DEMO_SECURITIES=N,
                             SELLOFF_DEMO_SEED="7")
        assert second.result.success, failures(second)
        assert reader.execute(query).fetchall()[0][0] == old
    finally:
        reader.close()
    with duckdb.connect(str(first.warehouse), read_only=True) as fresh:
        assert fresh.execute(query).fetchall()[0][0] != old


@pytest.mark.slow
def test_killed_run_leaves_the_published_file_intact(tmp_path: Path) -> None:
    first = run_refresh(tmp_path, SELLOFF_SOURCE="demo", SELLOFF_DEMO_SECURITIES=N)
    assert first.result.success, failures(first)
    before = _sha(first.warehouse)
    env = {**os.environ, "SELLOFF_WAREHOUSE": str(first.warehouse), "SELLOFF_SOURCE": "demo",
           "SELLOFF_DEMO_SECURITIES": N, "SELLOFF_DEMO_SEED": "7",
           "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    (tmp_path / "dagster_home").mkdir(exist_ok=True)
    cli = Path(sys.executable).parent / "selloff"
    proc = subprocess.Popen([str(cli), "run"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = first.warehouse.parent / "build" / "last_run.log"
    deadline = time.monotonic() + 240
    # Kill it in the middle of the dbt build: the build file is being written then.
    while time.monotonic() < deadline:
        if log.exists() and "START sql" in log.read_text(errors="ignore"):
            break
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.2)
    else:
        pytest.fail("the run never reached the dbt build")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert _sha(first.warehouse) == before
    again = run_refresh(tmp_path, SELLOFF_SOURCE="demo", SELLOFF_DEMO_SECURITIES=N)
    assert again.result.success, failures(again)


@pytest.mark.slow
def test_failing_blocking_check_stops_publication(tmp_path: Path, monkeypatch) -> None:
    first = run_refresh(tmp_path, SELLOFF_SOURCE="demo", SELLOFF_DEMO_SECURITIES=N)
    assert first.result.success, failures(first)
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
