"""Runs whose process is gone: found by the process each run names in its tags, marked
failed, their pool slots freed.

Every run that writes a warehouse tags itself with its process (pid, its start time, host)
and its build file: `selloff run` when it creates the run, a run launched from the UI, a
schedule or a sensor when its warehouse resource starts (before any step claims a slot).
Two places act on a dead one:
- the run that takes a warehouse's writer lock (`release_dead_runs`), so that a killed run
  never blocks the next one, with or without a daemon;
- the daemon's run monitoring under `make ui`, through `SelloffRunLauncher`, Dagster's
  default launcher that can also tell whether a run's process is alive (the default one
  cannot, so the Runs page would show a killed run in progress forever).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from pathlib import Path

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus

from selloff.writer_lock import process_alive, process_start_ticks

TAG_PID = "selloff/pid"
TAG_PID_START = "selloff/pid_start"
TAG_HOST = "selloff/host"
TAG_BUILD_FILE = "selloff/build_file"

# A run in these states claims to be running (or about to); NOT_STARTED counts only for
# runs that named their process, i.e. `selloff run` killed before its first step.
_LIVE_STATUSES = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                  dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def process_tags(build_file: Path) -> dict[str, str]:
    """The tags naming this process as the writer of `build_file`."""
    pid = os.getpid()
    ticks = process_start_ticks(pid)
    tags = {TAG_PID: str(pid), TAG_HOST: socket.gethostname(),
            TAG_BUILD_FILE: str(build_file)}
    if ticks is not None:
        tags[TAG_PID_START] = str(ticks)
    return tags


def run_process_alive(run: dg.DagsterRun) -> bool | None:
    """Whether the process a run names is alive: None when it names none (or a malformed
    one) or ran on another host, so nothing is concluded about it."""
    tags = run.tags
    if TAG_PID not in tags or TAG_HOST not in tags:
        return None
    try:
        pid = int(tags[TAG_PID])
        ticks = int(tags[TAG_PID_START]) if TAG_PID_START in tags else None
    except ValueError:
        return None
    return process_alive(pid, tags[TAG_HOST], ticks)


def release_dead_runs(instance: dg.DagsterInstance, own_run_id: str | None) -> list[str]:
    """Mark failed every run of `instance` that claims to be running but whose process is
    gone, and free its pool slots (claimed and pending). Returns one line per run."""
    released = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=_LIVE_STATUSES)):
        run = record.dagster_run
        if run.run_id == own_run_id or run_process_alive(run) is not False:
            continue
        started = _iso(record.start_time or record.create_timestamp.timestamp())
        reason = (f"process {run.tags[TAG_PID]} on {run.tags[TAG_HOST]} is gone (killed, out "
                  f"of memory or rebooted): marked failed by run {own_run_id or '?'}, which "
                  f"found it when it took the warehouse writer lock")
        # Re-read: the run may have finished between the query and now.
        current = instance.get_run_by_id(run.run_id)
        if current is not None and current.status in _LIVE_STATUSES:
            instance.report_run_failed(current, reason)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(f"run {run.run_id} (job {run.job_name}, started {started}, "
                        f"{run.status.value}): {reason}; its pool slots were freed")
    return released


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


class SelloffRunLauncher(DefaultRunLauncher):
    """Dagster's default run launcher that also answers the daemon's run monitoring: a run
    whose tagged process is gone is FAILED. Untagged runs (not yet at their first resource)
    stay RUNNING here: the monitoring's start timeout covers a run that never starts."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        if run_process_alive(run) is False:
            # The monitoring marks the run failed on this answer; its slots are freed now,
            # not after the daemon's slower slot sweep (seen > 60 s).
            self._instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            return CheckRunHealthResult(
                WorkerStatus.FAILED,
                f"process {run.tags[TAG_PID]} on {run.tags[TAG_HOST]} is gone (killed, out "
                "of memory or rebooted)")
        return CheckRunHealthResult(WorkerStatus.RUNNING, "")
