"""dbt models as Dagster assets, through the project's one DagsterDbtTranslator."""


import importlib.metadata
import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliInvocation,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from dagster_dbt.asset_utils import get_asset_check_key_for_test
from packaging import version

from assets import DBT_ASSETS_NAME, WRITER_POOL, gate
from orchestration import dbt_in_process
from selloff import dbt_runner, refresh_state, run_health
from selloff.resources import RefreshWindow, WarehouseResource
from selloff.warehouse import row_count

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class SelloffDbtTranslator(DagsterDbtTranslator):
    """Sources map onto the assets that write them (`raw/<table>`, `analytics/<table>`);
    models onto `<schema>/<name>`."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str,
                       project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            # raw.* are the extract assets; analytics.* (declared for the docs' lineage
            # to the exposures) are the polars assets of the same keys.
            layer = props["source_name"]
            return spec.replace_attributes(key=dg.AssetKey([layer, props["name"]]),
                                           group_name="extract" if layer == "raw" else layer)
        schema = props.get("config", {}).get("schema") or "marts"
        return spec.replace_attributes(
            key=dg.AssetKey([schema, props["name"]]),
            group_name=schema,
            automation_condition=dg.AutomationCondition.eager(),
        )


# Code references: each model links to its .sql file in the UI.
translator = SelloffDbtTranslator(settings=DagsterDbtTranslatorSettings(
    enable_asset_checks=True, enable_code_references=True))


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    pool=WRITER_POOL,
    name=DBT_ASSETS_NAME,
)
def selloff_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource,
                       warehouse: WarehouseResource, refresh: RefreshWindow) -> Iterator[Any]:
    """One `dbt build` of the selected models and their data tests. With a refresh window,
    the daily facts (tag:daily) are rebuilt from its first day on, incrementally, and only
    the models downstream of the raw datasets that changed since the last build (the
    refresh ledger) are built at all: the others are left as the last build made them
    (`dbt_runner.build_selection`). Every data test runs, except one that reads only
    models left as built and passed on them when they were last checked: its result is
    carried over (`carried_check_results`).
    The dbt unit tests (SQL logic on fixtures, not data) are left to `make test`
    (tests/test_refresh_window_dbt.py)."""
    window_in_file = not warehouse.settings().is_spark
    window = refresh.dates()
    manifest = load_manifest()
    selection: dbt_runner.BuildSelection | None = None
    ledger: tuple[str, int] | None = None
    if window_in_file:
        # Before dbt opens the file (it holds it until it exits); also on a full build, so
        # that no earlier window is left for dbt to find.
        with warehouse.connect() as con:
            dbt_runner.set_refresh_window(con, window)
            if not context.is_subset:
                consumer = f"{dbt_runner.LEDGER_CONSUMER}:{dbt_runner.project_fingerprint()}"
                changes = refresh_state.changes_since(con, consumer)
                ledger = (consumer, changes.seq)
                if window is not None and not changes.everything:
                    selection = dbt_runner.build_selection(
                        manifest, changes.whole | frozenset(changes.datasets))
    if selection is not None:
        context.log.info(
            f"raw datasets changed since the last dbt build: "
            f"{', '.join(sorted(selection.changed_datasets)) or 'none'}; left as built: "
            f"{len(selection.skipped_models)} models/seeds")
    carried = carried_check_results(context, manifest, selection, warehouse.build_path)
    if carried:
        context.log.info(
            f"{len(carried)} data tests not run again: they read only models left as built, "
            "and their last result on those same tables (passed) is carried over")
    args = dbt_build_args(warehouse, refresh)
    if selection is not None:
        args += selection.exclude_args(manifest, tests=carried)
    events: list[Any] = []
    try:
        invocation = (dbt.cli(args, context=context) if warehouse.settings().is_spark
                      else dbt_in_process_cli(dbt, args, context))
        # dbt holds the DuckDB file until it exits, so the row counts are read after it:
        # the events are kept until then (also when the build fails, so that what was built
        # is still recorded, with its count), then passed on in dbt's order.
        try:
            events.extend(invocation.stream())
        finally:
            keep_partial_parse(invocation.target_path, context.log)
            prune_run_targets(DBT_PROJECT_DIR / "target")
    except Exception:
        yield from with_row_counts(context, warehouse, events, clear_window=window_in_file)
        raise
    # First: a model left as built is upstream of none that was rebuilt, and Dagster wants
    # a multi-asset's outputs in topological order.
    events[:0] = unchanged_outputs(context, manifest, selection)
    events.extend(carried.values())  # after their models' outputs
    yield from with_row_counts(context, warehouse, events, clear_window=window_in_file,
                               ledger=ledger)


def dbt_in_process_cli(dbt: DbtCliResource, args: list[str],
                       context: dg.AssetExecutionContext) -> DbtCliInvocation:
    """dbt in this process when the resource can (the project's own resource); any other
    DbtCliResource runs its subprocess."""
    if isinstance(dbt, SelloffDbtCliResource):
        return dbt.cli_in_process(args, context=context)
    return dbt.cli(args, context=context)


def load_manifest() -> Mapping[str, Any]:
    """The manifest the dbt assets were defined from (dagster-dbt caches it)."""
    from dagster_dbt.dbt_manifest import validate_manifest

    return validate_manifest(dbt_project.manifest_path)


def unchanged_outputs(context: dg.AssetExecutionContext, manifest: Mapping[str, Any],
                      selection: dbt_runner.BuildSelection | None) -> Iterator[dg.Output]:
    """An output for each model a windowed refresh left as built: its table is current
    (none of its inputs changed), and the assets downstream of it in this run (the lake,
    the analytics) must not be skipped for want of it."""
    if selection is None:
        return
    parents = manifest["parent_map"]
    ordered: list[str] = []

    def visit(uid: str) -> None:  # parents first (depth-first topological order)
        if uid in ordered or uid not in selection.skipped_models:
            return
        for parent in sorted(parents.get(uid, ())):
            visit(parent)
        ordered.append(uid)

    for uid in sorted(selection.skipped_models):
        visit(uid)
    for uid in ordered:
        key = translator.get_asset_spec(manifest, uid, dbt_project).key
        if key not in context.selected_asset_keys:
            continue
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_key(key),
                        metadata={"rebuilt": False,
                                  "why": "none of its raw inputs changed since the last build"})


def carried_check_results(context: dg.AssetExecutionContext, manifest: Mapping[str, Any],
                          selection: dbt_runner.BuildSelection | None,
                          build_file: Path) -> dict[str, dg.AssetCheckResult]:
    """test unique_id -> its result carried over, for the data tests a windowed refresh
    need not run again: every table the test reads is left as built (none of its raw
    inputs changed since the last build, `BuildSelection.tests_on_skipped`), and the
    test's latest evaluation passed on the model's latest materialization
    (`gate.passed_on_latest`) in a run that wrote this same build file. The test would
    read the same rows and pass again; a failed, stale or missing result, or one from
    another warehouse sharing this Dagster instance, is not carried: the test runs."""
    if selection is None:
        return {}
    keys: dict[str, dg.AssetCheckKey] = {}
    for uid in sorted(selection.tests_on_skipped(manifest)):
        key = get_asset_check_key_for_test(manifest, translator, uid, dbt_project)
        if key is not None and key in context.selected_asset_check_keys:
            keys[uid] = key
    by_asset: dict[dg.AssetKey, list[dg.AssetCheckKey]] = {}
    for key in keys.values():
        by_asset.setdefault(key.asset_key, []).append(key)
    passed = gate.passed_on_latest(context.instance, by_asset) if by_asset else {}
    same_file: dict[str, bool] = {}
    out: dict[str, dg.AssetCheckResult] = {}
    for uid, key in keys.items():
        record = passed.get(key)
        if record is None:
            continue
        if record.run_id not in same_file:
            run = context.instance.get_run_by_id(record.run_id)
            same_file[record.run_id] = (
                run is not None and run.tags.get(run_health.TAG_BUILD_FILE) == str(build_file))
        if not same_file[record.run_id]:
            continue
        evaluation = record.event.dagster_event.asset_check_evaluation_data
        out[uid] = dg.AssetCheckResult(
            asset_key=key.asset_key, check_name=key.name, passed=True,
            severity=evaluation.severity,
            metadata={"carried_over": True, "evaluated_in_run": record.run_id,
                      "why": "not run again: every table it reads was left as built "
                             "(none of their raw inputs changed), and it passed on them "
                             "in that run"})
    return out


def with_row_counts(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                    events: list[Any], clear_window: bool = False,
                    ledger: tuple[str, int] | None = None) -> Iterator[Any]:
    """`events` with `dagster/row_count` on each model's materialization (DuckDB target;
    on Spark the tables are Parquet folders that the lake asset counts). With
    `clear_window`, the refresh window table goes first (dbt has exited: the file is ours).
    With `ledger` (consumer, seq), the build is recorded as reflecting the ledger up to seq
    (only after a whole, successful build: a failed one leaves its changes to the next)."""
    if warehouse.settings().is_spark:
        yield from events
        return
    counted_as = row_count_relations(load_manifest())
    with warehouse.connect() as con:
        if clear_window:
            dbt_runner.set_refresh_window(con, None)
        if ledger is not None:
            refresh_state.mark_seq(con, *ledger)
        for event in events:
            key = (context.asset_key_for_output(event.output_name)
                   if isinstance(event, dg.Output) else
                   event.asset_key if isinstance(event, dg.AssetMaterialization) else None)
            if key is None or len(key.path) != 2:
                yield event
                continue
            count = row_count(con, *counted_as.get(tuple(key.path), key.path))
            yield event.with_metadata({**event.metadata, "dagster/row_count": count})



def row_count_relations(manifest: Mapping[str, Any]) -> dict[tuple[str, ...], tuple[str, str]]:
    """(schema, model) -> the relation whose row count is the model's, for the models whose
    meta `row_count_of` names a model of the same grain (a view whose count(*) would
    recompute an as-of join over every price row; the grain is documented in its yml)."""
    by_name = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    out: dict[tuple[str, ...], tuple[str, str]] = {}
    for node in by_name.values():
        of = (node.get("config", {}).get("meta") or {}).get("row_count_of")
        if of:
            out[(node["schema"], node["name"])] = (by_name[of]["schema"], of)
    return out


PARTIAL_PARSE = "partial_parse.msgpack"


def keep_partial_parse(run_target: Path, log: Any) -> None:
    """Keep this invocation's parse state where the next invocation starts from.

    dagster-dbt gives every invocation a fresh target folder and seeds it with
    `dbt_project/target/partial_parse.msgpack`, written by `dbt parse` with the default
    vars. A run's own vars (the warehouse paths) differ from those, so every run parsed
    the whole project again (5 to 12 s). With the run's state kept, the next run with the
    same settings parses only what changed; dbt itself falls back to a full parse when
    the vars, profile or files differ, so a stale copy costs nothing but that parse.
    """
    src = run_target / PARTIAL_PARSE
    dest = DBT_PROJECT_DIR / "target" / PARTIAL_PARSE
    if not src.exists():
        return
    tmp = dest.with_name(f".{PARTIAL_PARSE}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)  # atomic: a concurrent run reads the old state or the new
    except OSError as exc:  # a read-only project folder (an image): only the speed-up is lost
        tmp.unlink(missing_ok=True)
        log.info(f"dbt parse state not kept ({exc}); the next run parses in full")


# dagster-dbt names each invocation's folder `<op name>-<run id[:7]>-<uuid[:7]>`.
RUN_TARGET_PREFIX = f"{selloff_dbt_models.op.name}-"


def prune_run_targets(target_dir: Path, keep: int = 20, min_age_s: float = 3600.0,
                      now: float | None = None) -> list[Path]:
    """Delete the per-invocation target folders dagster-dbt leaves (`<op>-<run>-<id>`,
    compiled SQL, logs and run_results.json: 7 MB each, hundreds of MB after a few weeks of
    scheduled runs), except the `keep` newest and any younger than `min_age_s` (a run
    still in progress, or one whose results are being read). Returns what was deleted."""
    import time

    now = time.time() if now is None else now
    try:
        folders = sorted((p for p in target_dir.iterdir()
                          if p.is_dir() and p.name.startswith(RUN_TARGET_PREFIX)),
                         key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:  # no target folder, or a read-only image: nothing to tidy
        return []
    gone = []
    for folder in folders[keep:]:
        try:
            if now - folder.stat().st_mtime >= min_age_s:
                shutil.rmtree(folder)
                gone.append(folder)
        except OSError:  # another run pruned it first, or it is not ours to delete
            continue
    return gone


def dbt_build_args(warehouse: WarehouseResource, refresh: RefreshWindow) -> list[str]:
    """`build` with this run's target and vars: where the data lives (the build file, the
    lake, Spark's folder), and on Spark the refresh window, all per invocation."""
    settings = warehouse.settings()
    if settings.is_spark:
        # Spark reads raw from the lake, so the lake must hold this run's raw layer; the
        # lake_raw asset is not upstream of dbt (dbt sources are the extract assets).
        dbt_runner.write_raw_lake(settings)
    # The refresh window is in the build file on DuckDB (set_refresh_window): vars that
    # stay the same from run to run keep dbt's parse state valid.
    dbt_vars = {**dbt_runner.dbt_vars(settings), **(refresh.dbt_vars() if settings.is_spark else {})}
    # The unit tests check SQL logic on fixtures, whatever the data: `make test` runs them
    # all (tests/test_refresh_window_dbt.py), a run need not (2.4 s of a full build).
    return ["build", "--target", settings.dbt_target, "--vars", json.dumps(dbt_vars),
            "--exclude-resource-type", "unit_test"]


class SelloffDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt CLI resource, without its two set-up costs before each build
    (9 s of the dbt step's 36 s at 5,000 x 5 on a quiet machine).

    - To learn which dbt it drives, dagster-dbt runs `<dbt executable> --version` once
      per resource instance, i.e. once per run: a second Python process that imports dbt,
      4 to 7 s. When the executable is the one installed beside this interpreter, its
      version is the installed dbt-core's, which the package metadata gives at once; any
      other executable is still asked.
    - It also builds a dbt adapter inside this process (importing dbt here, 2 to 3 s),
      used only by `fetch_column_metadata()` / `fetch_row_counts()` on the event stream,
      which this project does not call (the row counts come from the assets' own reads).
    """

    def _initialize_dbt_core_adapter(self, args: Any) -> None:
        return None

    def cli_in_process(self, args: Sequence[str], *,
                       context: dg.AssetExecutionContext) -> DbtCliInvocation:
        """`self.cli(args, context=context)` with dbt run in this process
        (orchestration/dbt_in_process.py), for the DuckDB target. `args` carry `--target`
        and `--vars` (dbt_build_args). Falls back to the subprocess where dagster-dbt
        builds a temporary copy of the project for a large subset selection (a manifest
        kept for the project would not know its generated selectors)."""
        from dagster_dbt.asset_utils import (
            extract_runtime_selection_from_args,
            get_updated_cli_invocation_params_for_context,
        )

        cleaned, selects, excludes = extract_runtime_selection_from_args(args)
        params = get_updated_cli_invocation_params_for_context(
            context=context, manifest={}, dagster_dbt_translator=translator,
            runtime_selects=selects, runtime_excludes=excludes)
        project_dir = Path(params.dbt_project.project_dir if params.dbt_project
                           else self.project_dir).resolve()
        if project_dir != DBT_PROJECT_DIR.resolve() or params.indirect_selection:
            return self.cli(args, context=context)
        target = cleaned[cleaned.index("--target") + 1]
        dbt_vars = cleaned[cleaned.index("--vars") + 1]
        target_path = self._get_unique_target_path(context=context)
        if not target_path.is_absolute():
            target_path = project_dir / target_path
        target_path.mkdir(parents=True, exist_ok=True)
        # As dagster-dbt does for its subprocess: start from the project's parse state.
        seed = DBT_PROJECT_DIR / "target" / PARTIAL_PARSE
        if seed.exists():
            shutil.copyfile(seed, target_path / PARTIAL_PARSE)
        flags = dbt_in_process.dbt_core_flags(
            target=target, dbt_vars=dbt_vars, project_dir=project_dir,
            profiles_dir=self.profiles_dir, target_path=target_path)
        build = [a for a in cleaned if a not in ("--target", target, "--vars", dbt_vars)]
        dbt_args = [*build, *flags, *params.selection_args]
        invocation = dbt_in_process.InProcessDbtInvocation(
            process=dbt_in_process.InProcessRun(args=["dbt (in process)", *dbt_args]),
            manifest=params.manifest, dagster_dbt_translator=params.dagster_dbt_translator,
            project_dir=project_dir, target_path=target_path, raise_on_error=True,
            context=context, adapter=None, cli_version=self._cli_version,
            project=params.dbt_project, dbt_args=dbt_args, parse_args=["parse", *flags],
            key=dbt_in_process.manifest_key(
                f"{dbt_runner.project_fingerprint()}:{project_dir}", target, json.loads(dbt_vars)))
        context.log.info(f"Running dbt in process: `{' '.join(dbt_args)}`")
        return invocation

    @cached_property
    def _cli_version(self) -> version.Version:
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            return version.parse(importlib.metadata.version("dbt-core"))
        return DbtCliResource._cli_version.func(self)  # type: ignore[attr-defined]


def dbt_resource() -> DbtCliResource:
    # The dbt installed beside this interpreter (the venv), whether or not it is on PATH.
    beside = Path(sys.executable).parent / "dbt"
    executable = str(beside) if beside.exists() else "dbt"
    return SelloffDbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR),
                                 dbt_executable=executable)
