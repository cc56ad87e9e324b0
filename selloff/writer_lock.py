"""One writer per warehouse, across processes: an exclusive `flock` on `<build file>.lock`.

The kernel drops a `flock` when the last descriptor of its holder closes, which includes
SIGKILL, the OOM killer and a reboot, so the lock can never outlive the process that took it
(no stale lock, nothing to clean up). The holder writes who it is into the file (run id,
pid, host, start time, command) so that a waiting run can say whom it waits for, since when
and whether that process is still alive. The file is left in place: deleting it would let a
late waiter lock an unlinked inode while a newcomer locks a fresh file.

Same host only: `flock` on a network file system is not reliable across machines.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_TIMEOUT_SECONDS = 1800.0
# How often a waiter retries; one non-blocking flock call per poll costs nothing.
POLL_SECONDS = 0.5
# How often a waiter repeats that it is still waiting (the holder may change in between).
REPORT_EVERY_SECONDS = 30.0


def lock_path(build_file: Path) -> Path:
    """The lock file beside the build file: `<build file>.lock`."""
    return build_file.with_name(build_file.name + ".lock")


def process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux /proc), or None. With the
    pid it identifies a process: a recycled pid has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    try:
        return int(fields[19])  # field 22 of proc(5), counted from field 3
    except (IndexError, ValueError):
        return None


def process_alive(pid: int, host: str, start_ticks: int | None = None) -> bool | None:
    """True/False for a process of this host; None when it ran on another host (unknown)."""
    if host != socket.gethostname():
        return None
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if start_ticks is not None:
        now = process_start_ticks(pid)
        if now is not None and now != start_ticks:
            return False  # the pid was recycled
    return True


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) the writer lock, as written into the lock file."""

    pid: int
    host: str
    started: str  # ISO time the lock was taken (UTC)
    command: str
    run_id: str | None = None
    start_ticks: int | None = None

    @classmethod
    def this_process(cls, run_id: str | None = None) -> Holder:
        pid = os.getpid()
        return cls(pid=pid, host=socket.gethostname(),
                   started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                   command=" ".join(sys.argv)[:500], run_id=run_id,
                   start_ticks=process_start_ticks(pid))

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        """The holder written in a lock file, or None for anything else (empty, a partial
        write, garbage): the file is input like any other and only informs a message."""
        try:
            data = json.loads(text)
            holder = cls(pid=int(data["pid"]), host=str(data["host"]),
                         started=str(data["started"]), command=str(data.get("command", "")),
                         run_id=None if data.get("run_id") is None else str(data["run_id"]),
                         start_ticks=None if data.get("start_ticks") is None
                         else int(data["start_ticks"]))
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            return None
        return holder

    def alive(self) -> bool | None:
        return process_alive(self.pid, self.host, self.start_ticks)

    def describe(self) -> str:
        state = {True: "alive", False: "no longer running", None: "on another host"}[self.alive()]
        run = f"run {self.run_id}" if self.run_id else "a run that has not started its steps yet"
        return (f"{run} (pid {self.pid} on {self.host}, {state}), holding it since "
                f"{self.started}: {self.command}")


def read_holder(path: Path) -> Holder | None:
    try:
        return Holder.parse(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


class WriterLockTimeout(Exception):
    """Another run kept the warehouse for longer than the waiter's timeout."""

    def __init__(self, path: Path, timeout: float, holder: Holder | None) -> None:
        self.path, self.timeout, self.holder = path, timeout, holder
        who = holder.describe() if holder else "an unknown process (no holder written yet)"
        super().__init__(f"gave up after {timeout:g}s waiting for the warehouse writer lock "
                         f"{path}, held by {who}")


# Locks this process holds: path -> [descriptor, depth]. A run started by `selloff run`
# takes the lock in the CLI (to report and exit cleanly) and again in the warehouse
# resource; the inner take must not wait for the outer one (a second open + flock of the
# same file in one process would block on itself).
_held: dict[Path, list] = {}
_held_guard = threading.Lock()


def _write_holder(fd: int, holder: Holder) -> None:
    data = json.dumps(asdict(holder)).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def set_run_id(build_file: Path, run_id: str) -> None:
    """Name the run in the holder record of a lock this process holds."""
    path = lock_path(build_file).resolve()
    with _held_guard:
        entry = _held.get(path)
        if entry is None:
            raise RuntimeError(f"this process does not hold {path}")
        current = read_holder(path) or Holder.this_process()
        _write_holder(entry[0], Holder(**{**asdict(current), "run_id": run_id}))


@contextmanager
def hold(build_file: Path, *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
         run_id: str | None = None,
         report: Callable[[str], None] | None = None,
         interrupted: Callable[[], bool] | None = None) -> Iterator[Holder]:
    """Hold the writer lock of `build_file` for the block, waiting at most `timeout`
    seconds (0: do not wait) for another holder; `report` receives what it waits for.
    Re-entrant within one process. Raises WriterLockTimeout naming the holder, or
    KeyboardInterrupt while waiting once `interrupted()` is true (a signal a framework has
    caught and deferred, as Dagster does during a run)."""
    if timeout < 0:
        raise ValueError(f"writer lock timeout must be >= 0 seconds, got {timeout}")
    path = lock_path(build_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    path = path.resolve()
    with _held_guard:
        entry = _held.get(path)
        if entry is not None:
            entry[1] += 1
    if entry is not None:
        try:
            if run_id:
                set_run_id(build_file, run_id)
            yield read_holder(path) or Holder.this_process(run_id)
        finally:
            with _held_guard:
                entry[1] -= 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        _acquire(fd, path, timeout, report, interrupted)
        me = Holder.this_process(run_id)
        _write_holder(fd, me)
        with _held_guard:
            _held[path] = [fd, 1]
        try:
            yield me
        finally:
            with _held_guard:
                del _held[path]
    finally:
        # Closing the descriptor releases the flock (the holder record stays, as history).
        os.close(fd)


def _acquire(fd: int, path: Path, timeout: float, report: Callable[[str], None] | None,
             interrupted: Callable[[], bool] | None) -> None:
    started = time.monotonic()
    last_holder: Holder | None = None
    last_report = -REPORT_EVERY_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            if report and last_report >= 0:
                report(f"got the warehouse writer lock {path} after "
                       f"{time.monotonic() - started:.0f}s")
            return
        if interrupted is not None and interrupted():
            raise KeyboardInterrupt(f"stopped while waiting for the writer lock {path}")
        waited = time.monotonic() - started
        holder = read_holder(path)
        if waited >= timeout:
            raise WriterLockTimeout(path, timeout, holder)
        if report and (holder != last_holder or waited - last_report >= REPORT_EVERY_SECONDS):
            who = holder.describe() if holder else "a process that has not named itself yet"
            report(f"waiting for the warehouse writer lock {path} (up to {timeout:g}s, "
                   f"{waited:.0f}s so far): held by {who}")
            last_holder, last_report = holder, waited
        time.sleep(min(POLL_SECONDS, max(timeout - waited, 0.01)))
