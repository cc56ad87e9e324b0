"""The code location: assembles assets, checks, jobs, schedules and resources. No logic."""

import warnings

import dagster as dg

from assets.analytics import analytics_assets, analytics_checks
from assets.catalog import with_catalog
from assets.extract import extract_assets, extract_checks, freshness_checks
from assets.lake import lake_assets
from assets.report import report_assets
from orchestration.alerts import alert_sensors
from orchestration.automation import automation_sensor, gate_automation
from orchestration.dbt import dbt_resource, selloff_dbt_models
from orchestration.jobs import build_jobs
from orchestration.progress import step_progress
from orchestration.schedules import build_schedules
from selloff.alerts import alert_channel
from selloff.resources import resources_for
from selloff.settings import Settings, settings_from_env


def build_definitions(settings: Settings) -> dg.Definitions:
    """The one asset graph, for the UI, `selloff run`, the schedules, the tests and the
    benchmark; `settings` become the resources' fields (shown in the launchpad)."""
    jobs = build_jobs()
    defs = dg.Definitions(
        assets=with_catalog([*extract_assets, selloff_dbt_models, *analytics_assets,
                             *report_assets, *lake_assets]),
        asset_checks=[*extract_checks, *freshness_checks, *analytics_checks],
        jobs=list(jobs.values()),
        schedules=build_schedules(jobs),
        sensors=[automation_sensor, *alert_sensors],
        loggers={"step_progress": step_progress, "console": dg.colored_console_logger},
        resources={**resources_for(settings), "dbt": dbt_resource(),
                   "alerts": alert_channel(settings)},
        # Every step writes the one DuckDB file (pool duckdb_writer, limit 1), so steps run
        # one after another anyway: a process per step would only add seconds of imports
        # each. One process per run, as `selloff run`, also for the UI and the schedules.
        executor=dg.in_process_executor,
    )
    # Downstream automation waits for every upstream blocking check (orchestration/automation.py).
    return gate_automation(defs)


@dg.definitions
def defs() -> dg.Definitions:
    # Called when the code location loads (not at import): SELLOFF_* are read here, once.
    # Single-run backfill policies and the like are "beta" in Dagster 1.13.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    return build_definitions(settings_from_env())
