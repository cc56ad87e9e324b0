"""dbt models as Dagster assets, through the project's one DagsterDbtTranslator."""


import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from assets import WRITER_POOL
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

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return "extract"
        return dbt_resource_props.get("config", {}).get("schema") or "marts"


translator = SelloffDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    pool=WRITER_POOL,
    name="selloff_dbt_models",
)
def selloff_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource,
                       warehouse: WarehouseResource) -> Iterator[Any]:
    # The dbt subprocess inherits this process's environment; the profile reads the path.
    os.environ["SELLOFF_BUILD_DB"] = str(warehouse.build_path)
    yield from dbt.cli(["build"], context=context).stream()


def dbt_resource() -> DbtCliResource:
    # The dbt installed beside this interpreter (the venv), whether or not it is on PATH.
    beside = Path(sys.executable).parent / "dbt"
    executable = str(beside) if beside.exists() else "dbt"
    return DbtCliResource(project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR),
                          dbt_executable=executable)
