"""The code location: assembles assets, checks, jobs, schedules and resources. No logic."""

import dagster as dg

from assets.analytics import analytics_assets, analytics_checks
from assets.extract import extract_assets, extract_checks
from assets.report import report_assets
from orchestration.dbt import dbt_resource, selloff_dbt_models
from orchestration.jobs import extract_job, refresh_job
from selloff.resources import SourceResource, WarehouseResource

defs = dg.Definitions(
    assets=[*extract_assets, selloff_dbt_models, *analytics_assets, *report_assets],
    asset_checks=[*extract_checks, *analytics_checks],
    jobs=[refresh_job, extract_job],
    resources={
        "source": SourceResource(),
        "warehouse": WarehouseResource(),
        "dbt": dbt_resource(),
    },
)
