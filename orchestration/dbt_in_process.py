"""`dbt build` inside the Dagster step's own process (dbt's `dbtRunner`), for the DuckDB target.

Why: a `dbt` subprocess costs, per build, a Python start-up that imports dbt (3-5 s on two
cores) and, whenever this build's vars differ from the last parse (another warehouse path),
a whole parse of the project (5-11 s). In process, dbt is imported once per process and the
parsed project (dbt's `Manifest`) is kept and handed to the next build (`dbtRunner(manifest=)`,
dbt's documented way to reuse it), so a process that runs several builds (a test session,
the benchmark, a long `dagster dev`'s in-process runs) parses once.

What a reused manifest may not change: the SQL a model compiles to. On DuckDB that depends on
the project's files, the target, the vars other than where the data lives, and the build
file's catalog name (its file stem, which qualifies every relation): `manifest_key` is made
of exactly those. The vars that only say where files are (the build file's folder, the lake,
Spark's folder) reach the profile alone, which dbt reads anew on every invocation.

The events dbt fires go through the callback into the same JSON shape `dbt --log-format json`
prints, so dagster-dbt turns them into the same Dagster events as from a subprocess
(`DbtCliInvocation.stream`).

Three things a subprocess gave for free are done here explicitly:
- dbt-duckdb keeps its DuckDB database open in a process-wide environment after the build
  (`DuckDBConnectionManager._ENV`); it is closed when the build ends. In a run, dbt's
  connection joins the run's one instance of the build file (`warehouse.held_open`), which
  stays open for the steps after dbt; outside one, closing it checkpoints and releases the
  file before anything else opens or copies it.
- An interrupted step (SIGTERM/SIGINT: Dagster raises in the step's thread) stops dbt as
  the subprocess's SIGINT did: dbt's thread gets a KeyboardInterrupt (dbt then cancels its
  queries, writes run_results.json and returns) and its DuckDB queries are interrupted.
- `dbtRunner.invoke` returns any exception instead of raising it; a failed invocation is an
  error message and a non-zero return code here, as it was from the subprocess.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import queue
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

# Vars that only say where data lives (dbt_runner.dbt_vars): they reach the profile, which
# dbt reads on every invocation, never a model's SQL on DuckDB (_sources.yml uses the lake
# only on Spark/Databricks; the build file's name is in the key as its catalog).
LOCATION_VARS = frozenset({"selloff_build_db", "selloff_lake_dir", "selloff_spark_dir"})
# dbt's stdout at its default log level carried these; the callback also sees debug events.
_PRINTED_LEVELS = frozenset({"info", "warn", "error"})
# How long an interrupted build may take to stop before the step gives up on it (the
# subprocess had dagster-dbt's termination timeout, 25 s).
STOP_TIMEOUT_S = 25.0

_manifests: dict[str, Any] = {}
_manifests_lock = threading.Lock()


def manifest_key(project_fingerprint: str, target: str, dbt_vars: Mapping[str, Any]) -> str:
    """What a parsed project depends on, for the DuckDB target: the project's files (their
    fingerprint), the target, the vars other than LOCATION_VARS, and the build file's stem
    (DuckDB's catalog name for it, which qualifies every relation in the compiled SQL)."""
    kept = {k: v for k, v in dbt_vars.items() if k not in LOCATION_VARS}
    catalog = Path(str(dbt_vars.get("selloff_build_db", ""))).stem
    blob = json.dumps([project_fingerprint, target, catalog, kept], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def forget_manifests() -> None:
    """Drop the parsed projects kept in this process (the next build parses again)."""
    with _manifests_lock:
        _manifests.clear()


@dataclass
class InProcessRun:
    """The part of `subprocess.Popen` that DbtCliInvocation reads: the command, its return
    code, `wait()`."""

    args: list[str]
    returncode: int | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float | None = None) -> int | None:
        self.done.wait(timeout)
        return self.returncode


_DONE = object()


def _close_duckdb_environment() -> None:
    """Close dbt-duckdb's process-wide DuckDB database (see the module docstring)."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None:
            env.close()


def _cancel_duckdb_queries() -> None:
    """Interrupt the queries dbt-duckdb is running (a build being stopped)."""
    from dbt.adapters.factory import FACTORY

    adapter = FACTORY.adapters.get("duckdb")
    if adapter is not None:
        adapter.cancel_open_connections()


def _raise_in_thread(thread: threading.Thread, exc: type[BaseException]) -> None:
    """Raise `exc` in `thread` at its next Python instruction (CPython's async exception):
    how dbt learns it is interrupted when it does not run in the main thread."""
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident),
                                                   ctypes.py_object(exc))


@dataclass
class InProcessDbtInvocation(DbtCliInvocation):
    """A DbtCliInvocation whose dbt runs in this process (see the module docstring).
    `process` is an InProcessRun; `dbt_args` the build's dbt command line (no executable),
    `parse_args` the `parse` that gives its manifest when none is kept under `key`
    (manifest_key)."""

    dbt_args: list[str] = field(default_factory=list)
    parse_args: list[str] = field(default_factory=list)
    key: str = ""

    def _stream_stdout(self) -> Iterator[str | dict[str, Any]]:
        if self.process.done.is_set():  # streamed already (is_successful after stream)
            return
        events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        thread = threading.Thread(target=self._invoke, args=(events,), name="dbt", daemon=True)
        thread.start()
        try:
            while (item := events.get()) is not _DONE:
                if item["info"]["level"] == "error":
                    self._error_messages.append(item["info"]["msg"])
                yield item
        except BaseException:
            # The step is interrupted (or its consumer went away): stop dbt as SIGINT did.
            if thread.is_alive():
                _raise_in_thread(thread, KeyboardInterrupt)
                _cancel_duckdb_queries()
                thread.join(STOP_TIMEOUT_S)
            raise
        thread.join()

    def _invoke(self, events: queue.SimpleQueue[Any]) -> None:
        from dbt.cli.main import dbtRunner
        from dbt_common.events.functions import msg_to_dict

        def callback(msg: Any) -> None:
            if msg.info.level in _PRINTED_LEVELS:
                events.put(msg_to_dict(msg))

        code = 2
        try:
            with _manifests_lock:
                manifest = _manifests.get(self.key)
            if manifest is None:
                parsed = dbtRunner(callbacks=[callback]).invoke(self.parse_args)
                if not parsed.success:
                    raise RuntimeError(f"dbt parse failed: {parsed.exception}")
                manifest = parsed.result
                with _manifests_lock:
                    _manifests[self.key] = manifest
            result = dbtRunner(manifest=manifest, callbacks=[callback]).invoke(self.dbt_args)
            if result.exception is not None:
                raise result.exception
            code = 0 if result.success else 1
        except BaseException as exc:  # reported as the subprocess's stderr would be
            self._error_messages.append(f"dbt failed in process: {type(exc).__name__}: {exc}")
        finally:
            try:
                _close_duckdb_environment()
            finally:
                self.process.returncode = code
                self.process.done.set()
                events.put(_DONE)


def dbt_core_flags(*, target: str, dbt_vars: str, project_dir: Path, profiles_dir: str | None,
                   target_path: Path) -> list[str]:
    """The flags every in-process invocation of a build takes (its `parse` too): the target
    and vars, and, as flags, what dagster-dbt gives its subprocess as environment variables
    (DBT_TARGET_PATH, DBT_LOG_PATH, DBT_PROJECT_DIR, DBT_PROFILES_DIR), so nothing goes
    through os.environ. dbt's own stdout is quiet: its events reach Dagster through the
    callback."""
    out = ["--target", target, "--vars", dbt_vars, "--project-dir", str(project_dir),
           "--target-path", str(target_path), "--log-path", str(target_path), "--quiet",
           "--no-send-anonymous-usage-stats"]
    if profiles_dir:
        out += ["--profiles-dir", str(profiles_dir)]
    return out
