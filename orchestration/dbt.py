"""dbt models as Dagster assets, through the project's one DagsterDbtTranslator."""


import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from assets import WRITER_POOL
from assets.partitions import daily_partitions, single_run, window_dates
from selloff import engines
from selloff.resources import WarehouseResource

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class SelloffDbtTranslator(DagsterDbtTranslator):
    """Sources map onto the extract assets (`raw/<table>`); models onto `<schema>/<name>`."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey(["raw", dbt_resource_props["name"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or "marts"
        return dg.AssetKey([schema, dbt_resource_props["name"]])

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition | None:
        if dbt_resource_props["resource_type"] == "source":
            return None
        return dg.AutomationCondition.eager()

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return "extract"
        return dbt_resource_props.get("config", {}).get("schema") or "marts"


translator = SelloffDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


DAILY_FACTS = "tag:daily"


def build_dbt_assets(partitioned: bool = True) -> list[dg.AssetsDefinition]:
    """dbt models as assets. Partitioned: the daily facts (tag:daily) are a separate,
    daily-partitioned asset set built incrementally on the partition window; the rest is
    rebuilt in full. Unpartitioned (the full refresh): one dbt build of everything."""

    @dbt_assets(
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        dagster_dbt_translator=translator,
        exclude=DAILY_FACTS if partitioned else None,
        pool=WRITER_POOL,
        name="selloff_dbt_models",
    )
    def selloff_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource,
                           warehouse: WarehouseResource) -> Iterator[Any]:
        with _point_dbt_at(warehouse) as target_args:
            yield from dbt.cli(["build", *target_args], context=context).stream()

    if not partitioned:
        return [selloff_dbt_models]

    @dbt_assets(
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        dagster_dbt_translator=translator,
        select=DAILY_FACTS,
        partitions_def=daily_partitions,
        backfill_policy=single_run,
        pool=WRITER_POOL,
        name="selloff_dbt_daily_facts",
    )
    def selloff_dbt_daily_facts(context: dg.AssetExecutionContext, dbt: DbtCliResource,
                                warehouse: WarehouseResource) -> Iterator[Any]:
        args = ["build"]
        window = window_dates(context)
        if window is not None:
            args += ["--vars", json.dumps({"min_date": window[0].isoformat(),
                                           "max_date": window[1].isoformat()})]
        with _point_dbt_at(warehouse) as target_args:
            yield from dbt.cli([*args, *target_args], context=context).stream()

    return [selloff_dbt_models, selloff_dbt_daily_facts]


@contextmanager
def _point_dbt_at(warehouse: WarehouseResource) -> Iterator[list[str]]:
    """Point the dbt subprocess started inside the block at this run's data; yields the
    `--target` arguments (SELLOFF_DBT_TARGET: duckdb, or spark reading the Parquet lake)."""
    settings = warehouse.settings()
    if settings.is_spark:
        # Spark reads raw from the lake, so the lake must hold this run's raw layer; the
        # lake_raw asset is not upstream of dbt (dbt sources are the extract assets).
        engines.write_raw_lake(settings)
    # dbt.cli() copies os.environ when it starts dbt; restored after, so that the next run
    # in this process (another warehouse) does not inherit this run's lake and Spark paths.
    values = engines.dbt_env(settings)
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield ["--target", settings.dbt_target]
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def dbt_resource() -> DbtCliResource:
    # The dbt installed beside this interpreter (the venv), whether or not it is on PATH.
    beside = Path(sys.executable).parent / "dbt"
    executable = str(beside) if beside.exists() else "dbt"
    return DbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR),
                          dbt_executable=executable)
