"""The shared builds' machinery (tests/shared_builds.py; tests/graph_runs.py's save_result
and load_result): one process builds, the others wait and read; a failed or abandoned build
fails every reader, never builds again unseen; a stored run result answers as the run's own
did."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from tests.graph_runs import GraphRun, failures, load_result, save_result
from tests.shared_builds import build_once

REPO_ROOT = Path(__file__).resolve().parent.parent

# A child process (another xdist worker, in effect) that builds "b" in argv[1]; its build
# waits for argv[1]/go before writing, or dies mid-way with "die".
CHILD = """
import os, sys, time
from pathlib import Path
from tests.shared_builds import build_once

shared, how = Path(sys.argv[1]), sys.argv[2]

def build(folder):
    if how == "die":
        os._exit(3)
    while not (shared / "go").exists():
        time.sleep(0.05)
    (folder / "data").write_text("built by the child")

build_once(shared, "b", "child", build)
"""


def _never(folder: Path) -> None:
    raise AssertionError(f"built a second time into {folder}")


def _child(shared: Path, how: str) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(shared), how], cwd=REPO_ROOT)
    deadline = time.monotonic() + 120
    while not (shared / "b" / "started").exists():
        assert child.poll() is None or how == "die", "the child ended before building"
        assert time.monotonic() < deadline, "the child never started its build"
        time.sleep(0.05)
    return child


def test_the_first_asker_builds_and_another_waits_for_it_then_reads_it(tmp_path: Path) -> None:
    child = _child(tmp_path, "wait")
    assert child.poll() is None  # building (it holds the lock) until told to go on
    go = threading.Timer(0.5, (tmp_path / "go").touch)
    go.start()
    try:
        folder = build_once(tmp_path, "b", "parent", _never)  # waits on the lock
    finally:
        go.join()
        assert child.wait(timeout=120) == 0
    assert (folder / "data").read_text() == "built by the child"
    assert (folder / "done").read_text() == "child"
    assert build_once(tmp_path, "b", "third", _never) == folder


def test_a_failed_build_fails_every_later_request_with_its_traceback(tmp_path: Path) -> None:
    def broken(folder: Path) -> None:
        raise ValueError("the run found no securities")

    with pytest.raises(ValueError, match="no securities"):
        build_once(tmp_path, "b", "gw0", broken)
    for _ in range(2):
        with pytest.raises(pytest.fail.Exception,
                           match=r"(?s)'b' failed in gw0:.*ValueError: the run found no securities"):
            build_once(tmp_path, "b", "gw1", _never)


def test_a_build_whose_process_died_fails_the_others(tmp_path: Path) -> None:
    child = _child(tmp_path, "die")
    assert child.wait(timeout=120) == 3
    with pytest.raises(pytest.fail.Exception, match="'b' started in child never ended"):
        build_once(tmp_path, "b", "parent", _never)


def _job_result(fail: bool) -> dg.ExecuteInProcessResult:
    @dg.asset
    def prices() -> dg.MaterializeResult:
        if fail:
            raise RuntimeError("no rows landed")
        return dg.MaterializeResult(metadata={"dagster/row_count": 3, "rebuilt": False,
                                              "top": dg.MetadataValue.md("| a |\n|---|\n| 1 |")})

    @dg.asset_check(asset=prices)
    def positive() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, description="a negative close")

    defs = dg.Definitions(assets=[prices], asset_checks=[positive])
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(raise_on_error=False)


@pytest.mark.parametrize("fail", [False, True])
def test_a_stored_result_answers_as_the_run_did(tmp_path: Path, fail: bool) -> None:
    result = _job_result(fail)
    save_result(result, tmp_path / "result")
    stored = load_result(tmp_path / "result")
    assert stored.success == result.success == (not fail)
    assert stored.run_id == result.run_id
    assert stored.all_events == result.all_events
    assert stored.get_asset_materialization_events() == result.get_asset_materialization_events()
    assert stored.get_asset_check_evaluations() == result.get_asset_check_evaluations()
    assert failures(GraphRun(tmp_path, stored)) == failures(GraphRun(tmp_path, result)) != []
    if not fail:
        [mat] = stored.get_asset_materialization_events()
        assert mat.materialization.metadata["rebuilt"].value is False
        assert "| 1 |" in mat.materialization.metadata["top"].value
    with pytest.raises(AttributeError, match="no job definition"):
        stored.job_def  # noqa: B018
