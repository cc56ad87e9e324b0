"""Jobs: the refresh (everything; a full refresh or a refresh window), filings, extract."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from assets.extract import freshness_check_keys


def build_jobs() -> dict[str, UnresolvedAssetJobDefinition]:
    return {
        "refresh": dg.define_asset_job(
            name="refresh",
            selection=dg.AssetSelection.all(),
            description="Materialize everything in one run: extract -> dbt -> analytics -> "
            "report -> publish. Without a refresh window (resource `refresh`) a full "
            "refresh; the market schedules set the window to one market's session.",
        ),
        "filings_refresh": dg.define_asset_job(
            name="filings_refresh",
            selection=dg.AssetSelection.assets(["raw", "fundamentals"],
                                               ["raw", "shares_outstanding"]),
            description="New filings and share counts; downstream follows by automation "
            "conditions.",
        ),
        "extract_only": dg.define_asset_job(
            name="extract_only",
            selection=dg.AssetSelection.groups("extract"),
            description="Land the raw datasets from the configured source (no dbt, no "
            "analytics).",
        ),
        "freshness": dg.define_asset_job(
            name="freshness",
            selection=dg.AssetSelection.checks(*freshness_check_keys()),
            description="Only the market freshness checks of the raw daily data (no "
            "materialization); the freshness_<market> schedules run it at each deadline.",
        ),
    }
