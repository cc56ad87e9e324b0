"""The code location: assembles assets, checks, jobs, schedules and resources. No logic."""

import warnings

import dagster as dg

from assets.analytics import analytics_assets, analytics_checks
from assets.extract import build_extract_assets, extract_checks
from assets.lake import lake_assets
from assets.report import report_assets
from orchestration.automation import automation_sensor
from orchestration.dbt import build_dbt_assets, dbt_resource
from orchestration.jobs import build_jobs
from orchestration.progress import step_progress
from orchestration.schedules import build_schedules
from selloff.resources import SourceResource, WarehouseResource


def build_definitions(partitioned: bool = True) -> dg.Definitions:
    """Partitioned (the UI, schedules, backfills) or not (`selloff run`, a full refresh in
    one process: a range run over every daily partition would spend minutes writing
    per-partition events). Same asset keys, same tables."""
    jobs = build_jobs(partitioned)
    return dg.Definitions(
        assets=[*build_extract_assets(partitioned), *build_dbt_assets(partitioned),
                *analytics_assets, *report_assets, *lake_assets],
        asset_checks=[*extract_checks, *analytics_checks],
        jobs=list(jobs.values()),
        schedules=build_schedules(jobs) if partitioned else [],
        sensors=[automation_sensor] if partitioned else [],
        loggers={"step_progress": step_progress, "console": dg.colored_console_logger},
        resources={
            "source": SourceResource(),
            "warehouse": WarehouseResource(),
            "dbt": dbt_resource(),
        },
    )


# Single-run backfill policies are "beta" in Dagster 1.13; we rely on them knowingly.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
defs = build_definitions(partitioned=True)
