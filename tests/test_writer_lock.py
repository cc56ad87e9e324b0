"""One writer per warehouse across processes (selloff.writer_lock) and what happens to runs
whose process dies or is stopped (selloff.run_health, `selloff run`). Every holder here is a
real process: a Python child holding the lock, a real Dagster run in a child process, or
`selloff run` itself."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selloff import run_health, writer_lock
from selloff.settings import settings_from_env
from tests.conftest import REPO_ROOT
from tests.graph_runs import GraphRun, copy_run

CLI = Path(sys.executable).parent / "selloff"
HOLD_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from selloff.writer_lock import hold
    with hold(Path(sys.argv[1]), timeout=0, run_id=sys.argv[2]):
        print("held", flush=True)
        time.sleep(float(sys.argv[3]))
""")


def _holder_process(build: Path, run_id: str, seconds: float) -> subprocess.Popen:
    """A child process holding the lock of `build` for `seconds`; returns once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, str(build), run_id, str(seconds)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held", "the holder did not take the lock"
    return proc


def test_waiter_times_out_naming_a_live_holder_and_gets_the_lock_once_it_is_killed(
        tmp_path: Path) -> None:
    build = tmp_path / "build" / "selloff.duckdb"
    holder = _holder_process(build, "run-A", 600)
    try:
        messages: list[str] = []
        cpu, wall = time.process_time(), time.monotonic()
        with pytest.raises(writer_lock.WriterLockTimeout) as info, \
                writer_lock.hold(build, timeout=2, report=messages.append):
            pass
        waited, cpu_used = time.monotonic() - wall, time.process_time() - cpu
        assert 2 <= waited < 5
        # Waiting polls a non-blocking flock twice a second: no core is spun.
        assert cpu_used < 0.5, cpu_used
        text = str(info.value)
        assert "run run-A" in text and f"pid {holder.pid}" in text and "alive" in text
        assert messages and "waiting for the warehouse writer lock" in messages[0]
        assert "run run-A" in messages[0]
        assert info.value.holder is not None and info.value.holder.alive() is True

        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        start = time.monotonic()
        with writer_lock.hold(build, timeout=5, run_id="run-B") as me:
            # The kernel dropped the dead holder's lock: no wait, nothing to clean up.
            assert time.monotonic() - start < 1
            assert me.pid == os.getpid()
            recorded = writer_lock.read_holder(writer_lock.lock_path(build))
            assert recorded is not None and recorded.run_id == "run-B"
    finally:
        holder.kill()
        holder.wait()


def test_waiter_runs_after_the_holder_finishes(tmp_path: Path) -> None:
    build = tmp_path / "selloff.duckdb"
    holder = _holder_process(build, "run-A", 2)
    messages: list[str] = []
    start = time.monotonic()
    with writer_lock.hold(build, timeout=60, report=messages.append):
        waited = time.monotonic() - start
        # The holder has exited by now: the two never overlap.
        assert holder.wait(timeout=1) == 0
    assert 0.5 < waited < 10
    assert "run run-A" in messages[0] and messages[-1].startswith("got the warehouse writer lock")


def test_the_same_process_takes_the_lock_again_without_waiting(tmp_path: Path) -> None:
    build = tmp_path / "selloff.duckdb"
    with writer_lock.hold(build, timeout=0), writer_lock.hold(build, timeout=0, run_id="r1"):
        assert writer_lock.read_holder(writer_lock.lock_path(build)).run_id == "r1"
    # Released after the outer block: another process gets it at once.
    _holder_process(build, "run-C", 0).wait(timeout=30)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(
    lambda b: b.decode("latin-1")), st.builds(lambda d: json.dumps(d), st.dictionaries(
        st.sampled_from(["pid", "host", "started", "command", "run_id", "start_ticks"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=10), st.floats())))))
def test_a_lock_file_of_any_content_never_breaks_the_waiter(text: str) -> None:
    holder = writer_lock.Holder.parse(text)
    if holder is not None:
        assert isinstance(holder.pid, int) and isinstance(holder.host, str)
        holder.describe()  # names it, whatever it says


def test_a_holder_record_reads_back() -> None:
    me = writer_lock.Holder.this_process("run-X")
    assert writer_lock.Holder.parse(json.dumps(me.__dict__)) == me
    assert me.alive() is True
    other = writer_lock.Holder(**{**me.__dict__, "host": me.host + "-elsewhere"})
    assert other.alive() is None and "on another host" in other.describe()


@pytest.mark.parametrize("value", ["-1", "abc", "inf", "nan", "1e999"])
def test_a_bad_timeout_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(ValueError, match="SELLOFF_WRITER_TIMEOUT"):
        settings_from_env({"SELLOFF_WRITER_TIMEOUT": value})
    assert settings_from_env({"SELLOFF_WRITER_TIMEOUT": " 2.5 "}).store.writer_timeout == 2.5
    assert settings_from_env({}).store.writer_timeout == writer_lock.DEFAULT_TIMEOUT_SECONDS


def test_cli_refuses_a_bad_wait_with_exit_2(tmp_path: Path) -> None:
    out = subprocess.run([str(CLI), "run", "--wait", "soon",
                          "--warehouse", str(tmp_path / "w.duckdb")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out
    assert "--wait='soon' is not a number of seconds" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


# --------------------------------------------------------------- dead runs of an instance

def _instance_home(tmp_path: Path) -> Path:
    """A fresh DAGSTER_HOME with the project's instance settings (pool limit 1, launcher,
    run monitoring), as on a fresh clone."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return home


SLOT_JOB = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import dagster as dg
    from selloff.run_health import process_tags

    @dg.op(pool="duckdb_writer")
    def write(context):
        print("claimed", flush=True)
        time.sleep(600)

    @dg.job
    def writer():
        write()

    instance = dg.DagsterInstance.from_config(sys.argv[1])
    writer.execute_in_process(instance=instance, run_id=sys.argv[2],
                              tags=process_tags(Path(sys.argv[3])))
""")


def test_dead_run_is_marked_failed_and_its_slot_freed(tmp_path: Path) -> None:
    home = _instance_home(tmp_path)
    build = tmp_path / "build" / "selloff.duckdb"
    run_id = str(uuid.uuid4())
    proc = subprocess.Popen([sys.executable, "-c", SLOT_JOB, str(home), run_id, str(build)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "claimed"
        instance = dg.DagsterInstance.from_config(str(home))
        run = instance.get_run_by_id(run_id)
        assert run.status == dg.DagsterRunStatus.STARTED
        launcher = instance.run_launcher
        assert isinstance(launcher, run_health.SelloffRunLauncher)
        assert launcher.check_run_worker_health(run).status.value == "RUNNING"
        # A live run is left alone.
        assert run_health.release_dead_runs(instance, "me") == []
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        run = instance.get_run_by_id(run_id)
        info = instance.event_log_storage.get_concurrency_info("duckdb_writer")
        assert run.status == dg.DagsterRunStatus.STARTED  # what issue 23 found
        assert [s.run_id for s in info.claimed_slots] == [run_id]
        assert launcher.check_run_worker_health(run).status.value == "FAILED"
        # The daemon's monitoring fails the run on that answer; the launcher freed its slot.
        info = instance.event_log_storage.get_concurrency_info("duckdb_writer")
        assert info.claimed_slots == []

        released = run_health.release_dead_runs(instance, "me")
        assert len(released) == 1 and run_id in released[0]
        run = instance.get_run_by_id(run_id)
        assert run.status == dg.DagsterRunStatus.FAILURE
        info = instance.event_log_storage.get_concurrency_info("duckdb_writer")
        assert info.claimed_slots == [] and info.pending_steps == []
        failure = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert "is gone" in failure[0].message
        assert run_health.release_dead_runs(instance, "me") == []
    finally:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------- `selloff run` itself

N = "30"


def _cli_env(tmp_path: Path, home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "DAGSTER_HOME": str(home), "SELLOFF_SOURCE": "demo",
            "SELLOFF_WAREHOUSE": str(tmp_path / "warehouse" / "selloff.duckdb"),
            "SELLOFF_DEMO_SECURITIES": N, "SELLOFF_DEMO_YEARS": "1", "PYTHONUNBUFFERED": "1",
            **extra}


def _start_run(env: dict[str, str], out: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(CLI), "run", *args], env=env, stdout=out.open("w"),
                            stderr=subprocess.STDOUT)


def _wait_mid_build(proc: subprocess.Popen, build: Path) -> None:
    """Until the run is inside the dbt build (its steps hold the pool slot then)."""
    log = build.parent / "last_run.log"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if log.exists() and "START sql" in log.read_text(errors="ignore"):
            return
        assert proc.poll() is None, "the run ended before it could be stopped"
        time.sleep(0.2)
    pytest.fail("the run never reached the dbt build")


def _sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


@pytest.mark.slow
def test_sigterm_stops_a_run_promptly_and_leaves_nothing_held(tmp_path: Path,
                                                              demo_run: GraphRun) -> None:
    home = _instance_home(tmp_path)
    env = _cli_env(tmp_path, home)
    # A published warehouse (the shared demo build, copied), so that "left as it was" is
    # checked on real bytes.
    published = copy_run(demo_run, tmp_path).warehouse
    build = published.parent / "build" / "selloff.duckdb"
    before = _sha(published)
    proc = _start_run(env, tmp_path / "a.txt")
    _wait_mid_build(proc, build)
    proc.send_signal(signal.SIGTERM)
    start = time.monotonic()
    code = proc.wait(timeout=60)
    stopped_in = time.monotonic() - start
    out = (tmp_path / "a.txt").read_text()
    assert code == 128 + signal.SIGTERM, out
    assert stopped_in < 30, stopped_in
    assert "stopped by SIGTERM" in out and "Traceback" not in out
    assert _sha(published) == before
    instance = dg.DagsterInstance.from_config(str(home))
    (run,) = instance.get_runs()
    assert run.status in (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE)
    info = instance.event_log_storage.get_concurrency_info("duckdb_writer")
    assert info.claimed_slots == [] and info.pending_steps == []
    with writer_lock.hold(build, timeout=0):
        pass


@pytest.mark.slow
def test_killed_run_never_blocks_the_next_and_a_third_times_out_naming_it(
        tmp_path: Path, demo_run: GraphRun) -> None:
    home = _instance_home(tmp_path)
    # A warehouse an earlier run published (the session's demo build, copied; another
    # market than this run's settings): the killed run must leave its bytes as they were.
    published = copy_run(demo_run, tmp_path).warehouse
    before = _sha(published)
    env = _cli_env(tmp_path, home)
    build = tmp_path / "warehouse" / "build" / "selloff.duckdb"
    killed = _start_run(env, tmp_path / "killed.txt")
    _wait_mid_build(killed, build)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert _sha(published) == before
    instance = dg.DagsterInstance.from_config(str(home))
    (dead,) = instance.get_runs()
    assert dead.status == dg.DagsterRunStatus.STARTED
    assert instance.event_log_storage.get_concurrency_info("duckdb_writer").claimed_slots

    start = time.monotonic()
    nxt = _start_run(env, tmp_path / "next.txt")
    # While it runs, a third run with a short --wait gives up naming it (exit 3).
    lock = writer_lock.lock_path(build)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        holder = writer_lock.read_holder(lock)
        if holder is not None and holder.pid == nxt.pid and holder.run_id:
            break
        assert nxt.poll() is None, (tmp_path / "next.txt").read_text()
        time.sleep(0.2)
    else:
        pytest.fail("the next run never took the writer lock")
    third = subprocess.run([str(CLI), "run", "--wait", "2"], env=env, capture_output=True,
                           text=True, timeout=300)
    assert third.returncode == 3, third.stdout + third.stderr
    said = " ".join(third.stdout.split())
    assert f"run {holder.run_id}" in said and "alive" in said and "gave up after 2s" in said
    assert nxt.poll() is None, "the waiting run must not disturb the holder"

    assert nxt.wait(timeout=900) == 0, (tmp_path / "next.txt").read_text()
    took = time.monotonic() - start
    out = (tmp_path / "next.txt").read_text()
    assert "refresh succeeded" in out and f"released a dead run: run {dead.run_id}" in out
    assert took < 600, took
    assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
    runs = {r.run_id: r.status for r in instance.get_runs()}
    assert list(runs.values()).count(dg.DagsterRunStatus.SUCCESS) == 1


def test_a_dagster_run_waits_in_its_warehouse_resource_and_fails_naming_the_holder(
        tmp_path: Path) -> None:
    """The path of UI, schedule and sensor runs: the lock is taken by the warehouse
    resource when the run starts, before any step; a run that cannot get it fails, naming
    the holder, and writes nothing."""
    from orchestration.definitions import build_definitions

    published = tmp_path / "warehouse" / "selloff.duckdb"
    build = published.parent / "build" / "selloff.duckdb"
    defs = build_definitions(settings_from_env({
        "SELLOFF_WAREHOUSE": str(published), "SELLOFF_DEMO_SECURITIES": N,
        "SELLOFF_WRITER_TIMEOUT": "1"}))
    instance = dg.DagsterInstance.ephemeral()
    holder = _holder_process(build, "run-A", 600)
    try:
        result = defs.resolve_job_def("refresh").execute_in_process(
            instance=instance, raise_on_error=False)
        assert not result.success
        steps = [e for e in result.all_events
                 if e.event_type == dg.DagsterEventType.STEP_START]
        assert steps == []
        failure = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        text = str([e.dagster_event.event_specific_data for e in failure])
        text += str([e for e in instance.all_logs(result.run_id)])
        assert "gave up after 1s" in text and "run run-A" in text, text[:3000]
        assert not build.exists()
        tags = instance.get_run_by_id(result.run_id).tags
        assert tags[run_health.TAG_PID] == str(os.getpid())
        assert tags[run_health.TAG_BUILD_FILE] == str(build)
    finally:
        holder.kill()
        holder.wait()
        instance.dispose()  # issue 25: an undisposed one ends pytest with "leaked" lines
