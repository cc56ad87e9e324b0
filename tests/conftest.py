"""Shared fixtures: paths, the real snapshot (skipped with a reason when absent), and
a private warehouse path so tests never touch the project's own files."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# An xdist worker's __main__ (execnet) has neither __spec__ nor __file__, which pyspark's
# Spark Connect module takes for a doctest run: importing it (GX does) then calls
# sys.exit(0) (pyspark/sql/connect/utils.py, check_dependencies). Real entry points have one.
_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = "<pytest-xdist worker>"

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_SNAPSHOT = (REPO_ROOT.parent / "shared" / "data" / "real_2025").resolve()

requires_real_snapshot = pytest.mark.skipif(
    not (REAL_SNAPSHOT / "manifest.json").exists(),
    reason=f"real snapshot not found at {REAL_SNAPSHOT} (it lives in ../shared/data, beside the repo)",
)


# The modules that take longest (minutes: a Dagster UI journey, a Spark cluster, killed and
# waiting runs), first: `make test` runs the modules on two workers (pytest-xdist,
# `--dist loadfile --no-loadscope-reorder`), which take modules in this order, so the long
# ones start at once instead of ending the session alone. Without xdist only the order
# changes; no test depends on it.
LONGEST_FIRST = ("test_ui_browser", "test_spark_parity", "test_writer_lock",
                 "test_orchestration", "test_dbt_selection", "test_duckdb_clients",
                 "test_landing_fuzz", "test_catalog", "test_gate", "test_discovery",
                 "test_refresh_window_dbt")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: keeps the rest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Issue 25: exchange_calendars in this process (beside duckdb_engine and GX) ends the
    # test run with nanobind's "leaked" lines. Tests ask it in a child (tests/xcals_child.py).
    if "exchange_calendars" in sys.modules:
        sys.stderr.write("\nexchange_calendars was imported into the pytest process; "
                         "ask it through tests/xcals_child.py (issue 25)\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture()
def isolated_env(tmp_path: Path) -> Path:
    """A private published-warehouse path (pass it to WarehouseResource(path=...))."""
    return tmp_path / "warehouse" / "selloff.duckdb"


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A Spark standalone cluster for the session: a master and two workers, each its own
    JVM on 127.0.0.1 (selloff.spark_cluster); yields its spark:// URL once both workers
    have registered with the master, and stops every JVM afterwards."""
    from selloff import dbt_runner
    from selloff.spark_cluster import StandaloneCluster

    reason = dbt_runner.spark_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with StandaloneCluster(tmp_path_factory.mktemp("spark_cluster"), workers=2) as cluster:
        assert cluster.alive_workers() == 2
        yield cluster


# ------------------------------------------------------------------ shared built warehouses
# A full refresh costs a minute on two cores; tests that only read a built warehouse share
# one build per source. Tests that write copy it first (tests.graph_runs.copy_run: a file
# copy), so every reader sees the build as the run left it.
#
# Under pytest-xdist (`make test`: two workers) each worker is a session of its own, so a
# session fixture alone would build once per worker. The pattern xdist documents ("Making
# session-scoped fixtures execute only once"): the first worker to ask builds into a folder
# beside the workers' temp folders while holding a file lock; another worker that asks
# waits on the lock, then reads what was built. Both read the build back from the folder
# (the run's Dagster events included), so every test asserts the same on either worker.

DEMO_SECURITIES = "40"  # the demo's named securities (NVDA, 9984's split...) and some more


def _shared_build(request: pytest.FixtureRequest, name: str,
                  build: Callable[[Path], object]) -> Path:
    """tests.shared_builds.build_once in the folder every worker of this session sees (the
    session's own temp folder without xdist: nothing else reads it there)."""
    from xdist import get_xdist_worker_id, is_xdist_worker

    from tests.shared_builds import build_once

    base = request.getfixturevalue("tmp_path_factory").getbasetemp()
    if is_xdist_worker(request):
        base = base.parent  # the session's temp folder, above the workers' popen-gwN
    return build_once(base / "shared_builds", name, get_xdist_worker_id(request), build)


def _shared_graph_run(request: pytest.FixtureRequest, name: str, **settings_values: str):
    """run_refresh(**settings_values) as a shared build: the run's folder and its result
    (tests.graph_runs.save_result), read back as a GraphRun on every worker, the builder
    included; the run must have succeeded."""
    from tests.graph_runs import GraphRun, failures, load_result, run_refresh, save_result

    def build(folder: Path) -> None:
        save_result(run_refresh(folder / "run", **settings_values).result, folder / "result")

    folder = _shared_build(request, name, build)
    run = GraphRun(folder / "run", load_result(folder / "result"))
    assert run.result.success, failures(run)
    return run


@pytest.fixture(scope="session")
def demo_run(request: pytest.FixtureRequest):
    """The refresh job on the demo market at DEMO_SECURITIES, in process (shared build)."""
    return _shared_graph_run(request, "demo_run", SELLOFF_SOURCE="demo",
                             SELLOFF_DEMO_SECURITIES=DEMO_SECURITIES)


@pytest.fixture(scope="session")
def demo_snapshot(request: pytest.FixtureRequest) -> Path:
    """The same demo market exported as a snapshot folder (read only: copy it to change it;
    shared build)."""
    from selloff.sources.demo import export_demo_snapshot

    folder = _shared_build(request, "demo_snapshot", lambda folder: export_demo_snapshot(
        folder / "demo_snapshot", n_securities=int(DEMO_SECURITIES)))
    return folder / "demo_snapshot"


@pytest.fixture(scope="session")
def real_run(request: pytest.FixtureRequest):
    """The refresh job on the real snapshot with the bundled episodes, in process (shared
    build)."""
    if not (REAL_SNAPSHOT / "manifest.json").exists():
        pytest.skip(f"real snapshot not found at {REAL_SNAPSHOT}")
    return _shared_graph_run(request, "real_run", SELLOFF_SOURCE="snapshot",
                             SELLOFF_SNAPSHOT_DIR=str(REAL_SNAPSHOT))


@pytest.fixture(scope="session")
def cli_snapshot_run(request: pytest.FixtureRequest, demo_snapshot: Path) -> dict:
    """`selloff run --source snapshot --snapshot-dir <demo_snapshot>`, then `selloff query`,
    each in a subprocess as a user runs them, with a private warehouse and Dagster home and
    no other SELLOFF_* setting (as run_refresh gives the in-process runs). The second,
    independent build of the demo market (through its exported files) beside `demo_run`,
    and the full build the windowed refreshes are compared with (shared build: the
    commands' exit codes and output are kept beside it and checked on every worker)."""
    import json
    import os
    import subprocess
    import sys

    def build(folder: Path) -> None:
        root = folder / "run"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SELLOFF_")}
        # An empty temp folder: the run finds no trading calendars cached for the day and
        # builds them, as a machine's first run does (issue 25's leak came from that path).
        tmp = root / "tmp"
        tmp.mkdir(parents=True)
        env.update(SELLOFF_WAREHOUSE=str(root / "warehouse" / "selloff.duckdb"),
                   DAGSTER_HOME=str(root / "dagster_home"), COLUMNS="200", TMPDIR=str(tmp))
        selloff = str(Path(sys.executable).parent / "selloff")
        done = {"run": subprocess.run([selloff, "run", "--source", "snapshot", "--snapshot-dir",
                                       str(demo_snapshot)], capture_output=True, text=True,
                                      env=env, cwd=root, timeout=1800)}
        if done["run"].returncode == 0:
            done["query"] = subprocess.run(
                [selloff, "query", "select claim_id, verdict from "
                 "analytics.claim_verdicts order by claim_id"],
                capture_output=True, text=True, env=env, cwd=root, timeout=300)
        (folder / "commands.json").write_text(json.dumps(
            {k: {"args": p.args, "returncode": p.returncode, "stdout": p.stdout,
                 "stderr": p.stderr} for k, p in done.items()}), encoding="utf-8")

    folder = _shared_build(request, "cli_snapshot_run", build)
    done = {k: subprocess.CompletedProcess(**p) for k, p in
            json.loads((folder / "commands.json").read_text(encoding="utf-8")).items()}
    run = done["run"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    query = done["query"]
    assert query.returncode == 0, query.stdout + query.stderr
    root = folder / "run"
    return {"root": root, "run": run, "query": query,
            "warehouse": root / "warehouse" / "selloff.duckdb"}


@pytest.fixture(scope="session")
def demo_snapshot_run(cli_snapshot_run: dict):
    """`cli_snapshot_run` as a GraphRun (its tables; no in-process result)."""
    from tests.graph_runs import GraphRun

    return GraphRun(cli_snapshot_run["root"], None)
