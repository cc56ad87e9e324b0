"""Which engine builds the dbt project, and running a build outside Dagster.

The Dagster dbt assets pass `--target <SELLOFF_DBT_TARGET>`; the vars below tell every
target where its data lives. `land_raw` + `dbt_build` let the Spark parity test and
the benchmark build the same raw layer on both engines without a Dagster run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from selloff import lake, warehouse
from selloff.settings import PROJECT_ROOT, Settings, StoreSettings
from selloff.warehouse import _ident

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
# Schemas the dbt models build (docs/ARCHITECTURE.md); `raw` and `analytics` stay in DuckDB.
DBT_SCHEMAS = ("staging", "marts")
# The extract assets land the calendar to this day (assets/extract/datasets.py).
CALENDAR_END = dt.date(2027, 12, 31)


def dbt_vars(settings: StoreSettings) -> dict[str, str]:
    """dbt vars that tell dbt_project/profiles.yml and _sources.yml where this run's data
    lives, absolute so that dbt's working directory does not matter. Passed with `--vars`
    on each invocation: nothing goes through the process environment."""
    return {
        "selloff_build_db": str(settings.build_warehouse),
        "selloff_lake_dir": settings.lake,
        "selloff_spark_dir": settings.spark_root,
        "selloff_spark_master": settings.spark_master,
        # profiles.yml creates the build file in this format if dbt is the first to open it.
        "selloff_storage_version": settings.storage_version,
    }


# The refresh window of the dbt build about to run, for the DuckDB target: dbt's
# incremental macros read it when the models run (macros/incremental_window.sql), so the
# window never changes dbt's vars and a windowed run reuses the full build's parse state.
REFRESH_WINDOW_TABLE = "main.selloff_refresh_window"


def set_refresh_window(con: duckdb.DuckDBPyConnection,
                       window: tuple[dt.date, dt.date] | None) -> None:
    """Write `window` ([first, last] day) as the one row of REFRESH_WINDOW_TABLE, or drop
    the table for a full build (no window). Called just before `dbt build`; the caller
    calls it again with None once dbt is done, so the table never outlives the build."""
    con.execute(f"DROP TABLE IF EXISTS {REFRESH_WINDOW_TABLE}")
    if window is not None:
        con.execute(f"CREATE TABLE {REFRESH_WINDOW_TABLE} AS "
                    "SELECT CAST(? AS DATE) AS min_date, CAST(? AS DATE) AS max_date",
                    [window[0].isoformat(), window[1].isoformat()])


def spark_table_dir(settings: StoreSettings, schema: str, table: str) -> str:
    """Where Spark keeps a managed table's Parquet files: `spark.sql.warehouse.dir` is
    `<spark_root>/warehouse` (profiles.yml), and a table of schema s lives in `s.db/<table>`."""
    return f"{settings.spark_root.rstrip('/')}/warehouse/{_ident(schema)}.db/{_ident(table)}"


def read_spark_table(settings: StoreSettings, schema: str, table: str) -> pl.DataFrame | None:
    """A table built by the local `spark` target, read from its Parquet files (no JVM)."""
    return lake.read_parquet_dir(spark_table_dir(settings, schema, table))


def spark_unavailable_reason() -> str | None:
    """Why the local Spark target cannot run here, or None when it can."""
    try:
        import dbt.adapters.spark  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        return f"pyspark / dbt-spark not installed ({exc.name}): pip install '.[spark]'"
    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home) / "bin" / "java" if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        return "no Java runtime (java on PATH or JAVA_HOME): Spark needs Java 17+"
    return None


def land_raw(settings: Settings, source: object | None = None,
             calendar_end: dt.date = CALENDAR_END) -> dict[str, int]:
    """Land every canonical dataset and the trading calendar into the build file's `raw`
    schema, as the extract assets do (absent datasets as empty tables); rows per table."""
    from selloff.calendars import calendar_frame
    from selloff.contracts import DATASETS, empty_frame
    from selloff.sources import make_source

    src = source or make_source(settings.source)
    rows: dict[str, int] = {}
    with warehouse.connect(settings.store.build_warehouse) as con:
        for dataset in DATASETS:
            df = src.load(dataset)
            if df is None:
                df = empty_frame(dataset).with_columns(pl.lit(src.name).alias("source"))
            rows[dataset] = warehouse.replace_table(con, "raw", dataset, df)
        cal = calendar_frame(end=calendar_end)
        rows["trading_calendar"] = warehouse.replace_table(con, "raw", "trading_calendar", cal)
    return rows


def write_raw_lake(settings: StoreSettings) -> list[lake.LakeTable]:
    """The build file's `raw` schema to `<lake>/raw/` (what the lake_raw asset does)."""
    with warehouse.connect(settings.build_warehouse, read_only=True) as con:
        return lake.write_schema(con, "raw", settings.lake)


@dataclass(frozen=True)
class DbtRun:
    target: str
    seconds: float
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def dbt_build(settings: StoreSettings, target: str, work_dir: Path,
              extra_args: tuple[str, ...] = (),
              extra_vars: Mapping[str, str] | None = None) -> DbtRun:
    """`dbt build --target <target>` in a subprocess (a JVM per Spark build, as Dagster
    runs it), with its own target and log folders under work_dir. `extra_vars` go to
    `--vars` beside `dbt_vars(settings)` (e.g. the Spark session settings profiles.yml
    takes from vars)."""
    dbt = Path(sys.executable).parent / "dbt"
    cmd = [str(dbt) if dbt.exists() else "dbt", "build", "--target", target,
           "--profiles-dir", str(DBT_PROJECT_DIR), "--project-dir", str(DBT_PROJECT_DIR),
           "--target-path", str(work_dir / f"target_{target}"),
           "--log-path", str(work_dir / f"logs_{target}"),
           "--vars", json.dumps({**dbt_vars(settings), **(extra_vars or {})}), *extra_args]
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True,
                          check=False)
    return DbtRun(target, time.perf_counter() - started, proc.returncode,
                  proc.stdout + proc.stderr)


# ------------------------------------------------------------------ what a refresh rebuilds

# The refresh ledger's consumer for the dbt build (selloff.refresh_state), suffixed with
# the project's fingerprint: after a change to the project the suffixed consumer has never
# recorded a seq, so the ledger reports everything as changed and the build is whole.
LEDGER_CONSUMER = "dbt_models"
# What the fingerprint covers: the project's own files (as the Makefile's DBT_FILES).
_PROJECT_SUFFIXES = (".sql", ".yml", ".csv")
_NOT_PROJECT = ("target", "logs", "dbt_packages")


def project_fingerprint(project_dir: Path = DBT_PROJECT_DIR) -> str:
    """A hash of the dbt project's files (models, macros, tests, seeds, configs) and of the
    dbt version: equal only when dbt would build the same SQL from the same raw tables."""
    import hashlib
    import importlib.metadata

    digest = hashlib.sha256(importlib.metadata.version("dbt-core").encode())
    files: list[Path] = []
    for folder, subfolders, names in os.walk(project_dir):
        # Pruned, not filtered: target/ keeps a folder per dbt invocation (tens of
        # thousands of files after a few weeks of runs), which a full walk read each build.
        if Path(folder) == project_dir:
            subfolders[:] = [d for d in subfolders if d not in _NOT_PROJECT]
        files += [Path(folder) / n for n in names if Path(n).suffix in _PROJECT_SUFFIXES]
    for path in sorted(files):
        rel = path.relative_to(project_dir)
        digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class BuildSelection:
    """The models (and seeds) a windowed refresh leaves as built: those no changed raw
    dataset reaches. Every other model is built as in a full build (the daily facts from
    the window on). The Dagster run still materializes every model, and the publication
    gate wants each materialization's blocking checks evaluated (assets/gate.py): a test
    that reads a rebuilt model runs; one that reads only models left as built
    (`tests_on_skipped`) runs too, unless its last result on those same tables is carried
    over (orchestration/dbt.py `carried_check_results`)."""

    changed_datasets: frozenset[str]
    skipped_models: frozenset[str]  # unique_ids of models and seeds

    def tests_on_skipped(self, manifest: Mapping[str, Any]) -> frozenset[str]:
        """The data tests whose every input is a model or seed this build leaves as built."""
        return frozenset(uid for uid, n in manifest["nodes"].items()
                         if n["resource_type"] == "test" and n["depends_on"]["nodes"]
                         and set(n["depends_on"]["nodes"]) <= self.skipped_models)

    def exclude_args(self, manifest: Mapping[str, Any], tests: Iterable[str] = ()) -> list[str]:
        """dbt arguments that leave out exactly these nodes, and the data `tests` named
        (unique_ids). `--indirect-selection empty`: an excluded model does not take its
        tests with it (dbt's default would drop them, and also a test that reads a rebuilt
        fact and an unchanged dimension)."""
        names = sorted(manifest["nodes"][uid]["name"] for uid in {*self.skipped_models, *tests})
        # One value, names separated by spaces (dbt splits it): dagster-dbt takes only the
        # value right after --exclude.
        return ["--exclude", " ".join(names), "--indirect-selection", "empty"] if names else []


def build_selection(manifest: Mapping[str, Any], changed_datasets: frozenset[str]) -> BuildSelection:
    """What a build must rebuild when only `changed_datasets` (raw tables) changed: every
    model downstream of a changed `raw` source (manifest child_map). The others' inputs
    are exactly those of the previous build, so their tables are already what this build
    would write.
    """
    children = manifest["child_map"]
    todo = [uid for uid, src in manifest["sources"].items()
            if src["source_name"] == "raw" and src["name"] in changed_datasets]
    reached: set[str] = set(todo)
    while todo:
        uid = todo.pop()
        for child in children.get(uid, ()):
            if child not in reached:
                reached.add(child)
                todo.append(child)
    skipped = frozenset(uid for uid, n in manifest["nodes"].items()
                        if n["resource_type"] in ("model", "seed") and uid not in reached)
    return BuildSelection(changed_datasets, skipped)
