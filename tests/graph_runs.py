"""Run the whole refresh job in process into a private folder (used by the graph tests)."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl


@dataclass
class GraphRun:
    root: Path
    result: dg.ExecuteInProcessResult | None

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse" / "selloff.duckdb"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def table(self, name: str) -> pl.DataFrame:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.sql(f"SELECT * FROM {name}").pl()

    def tables(self, schema: str) -> list[str]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            rows = con.execute("SELECT table_name FROM information_schema.tables "
                               "WHERE table_schema = ? ORDER BY 1", [schema]).fetchall()
        return [r[0] for r in rows]


class StoredResult(dg.ExecuteInProcessResult):
    """A finished in-process run read back from the file `save_result` wrote: its DagsterRun
    and every event it emitted. Whatever reads the events (`success`, `run_id`, `all_events`,
    `get_asset_check_evaluations()`, `get_asset_materialization_events()`...) answers as the
    run's own result did, in any process: a shared build (tests/conftest.py) is run by one
    pytest-xdist worker and read by all. The job definition and the op outputs stay in the
    process that ran it (neither is serializable), so `job_def` and `output_value` refuse."""

    def __init__(self, events: list, dagster_run: object) -> None:
        super().__init__(events, dagster_run, output_capture=None, job_def=None)  # type: ignore[arg-type]

    @property
    def job_def(self) -> dg.JobDefinition:
        raise AttributeError("a stored run result has no job definition (it stays in the "
                             "process that ran the job)")


def save_result(result: dg.ExecuteInProcessResult, path: Path) -> None:
    """Write `result`'s DagsterRun and events to `path` (Dagster's serdes JSON: the events'
    metadata values and check evaluations come back as the same objects)."""
    path.write_text(dg.serialize_value({"run": result.dagster_run,
                                        "events": list(result.all_events)}), encoding="utf-8")


def load_result(path: Path) -> StoredResult:
    """The result `save_result` wrote to `path`."""
    stored = dg.deserialize_value(path.read_text(encoding="utf-8"), as_type=dict)
    return StoredResult(stored["events"], stored["run"])


def run_refresh(root: Path, window: tuple[str, str] | None = None,
                markets: tuple[str, ...] = (), job: str = "refresh",
                instance: dg.DagsterInstance | None = None, **settings_values: str) -> GraphRun:
    """Materialize every asset (the `refresh` job) into root/warehouse, in process. The
    SELLOFF_* keyword values become the definitions' settings (nothing touches os.environ);
    `window` = (first, last) day runs a windowed refresh instead of a full one;
    `job="market_refresh"` runs what a market schedule runs (no filings); `instance`, the
    Dagster instance whose run history the run reads and extends (default: a new one)."""
    from orchestration.definitions import build_definitions
    from orchestration.schedules import refresh_window_config
    from selloff.settings import settings_from_env

    root.mkdir(parents=True, exist_ok=True)
    values = {"SELLOFF_WAREHOUSE": str(root / "warehouse" / "selloff.duckdb"), **settings_values}
    defs = build_definitions(settings_from_env(values))
    job_def = defs.resolve_job_def(job)
    run_config = {}
    if window:
        first, last = (dt.date.fromisoformat(d) for d in window)
        run_config = refresh_window_config(first, last, markets)
    # No instance passed: Dagster makes an ephemeral one and disposes of it (issue 25).
    result = job_def.execute_in_process(raise_on_error=False, run_config=run_config,
                                        instance=instance)
    return GraphRun(root, result)


def run_assets(root: Path, selection: dg.AssetSelection, **settings_values: str) -> GraphRun:
    """Materialize only `selection` (with the selected assets' checks) into root/warehouse,
    in process, where a build already holds everything upstream of it (a copy_run). The
    SELLOFF_* keyword values become the definitions' settings, as in run_refresh."""
    from orchestration.definitions import build_definitions
    from selloff.settings import settings_from_env

    values = {"SELLOFF_WAREHOUSE": str(root / "warehouse" / "selloff.duckdb"), **settings_values}
    defs = build_definitions(settings_from_env(values))
    keys = selection.resolve(defs.resolve_asset_graph())
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        asset_selection=sorted(keys), raise_on_error=False)
    return GraphRun(root, result)


def copy_run(run: GraphRun, root: Path) -> GraphRun:
    """A private copy of a built run's folder (warehouse with its build file, lake, reports)
    at root, for a test that writes: the shared build stays as every reader expects it.
    The copy carries the original run's result (its events describe the copied files)."""
    import shutil

    shutil.copytree(run.root, root, dirs_exist_ok=True)
    return GraphRun(root, run.result)


def failures(run: GraphRun) -> list[str]:
    out = []
    for ev in run.result.all_events:
        if ev.event_type == dg.DagsterEventType.STEP_FAILURE:
            out.append(f"{ev.step_key}: {ev.step_failure_data.error.message}")
    for ev in run.result.get_asset_check_evaluations():
        if not ev.passed:
            out.append(f"check {ev.asset_key.to_user_string()}:{ev.check_name}: {ev.description}")
    return out


def _close_json(a: object, b: object) -> bool:
    """Equal JSON values, numbers within 1e-12 relative (see assert_same_table)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-6)
    return a == b


def assert_same_table(a: pl.DataFrame, b: pl.DataFrame, name: str) -> None:
    """Same rows and keys; floats equal within 1e-12 relative, because DuckDB's parallel
    SUM adds doubles in a varying order (last-bit differences, far below a cent). Text
    columns holding JSON (`*_json`) are compared as JSON, their numbers the same way."""
    from polars.testing import assert_frame_equal

    json_cols = [c for c in a.columns if c.endswith("_json") and a.schema[c] == pl.Utf8]
    a, b = a.sort(a.columns, nulls_last=True), b.sort(b.columns, nulls_last=True)
    if json_cols and a.height == b.height:
        keys = [c for c in a.columns if c not in json_cols]
        a, b = a.sort(keys, nulls_last=True), b.sort(keys, nulls_last=True)
        for col in json_cols:
            for i, (x, y) in enumerate(zip(a[col], b[col], strict=True)):
                same = x == y or (x is not None and y is not None
                                  and _close_json(json.loads(x), json.loads(y)))
                assert same, f"{name} differs: {col} row {i}: {x} != {y}"
        a, b = a.drop(json_cols), b.drop(json_cols)
    try:
        assert_frame_equal(a, b, check_row_order=False, rel_tol=1e-12, abs_tol=1e-6)
    except AssertionError as exc:
        raise AssertionError(f"{name} differs: {exc}") from exc
