"""Jobs: the refresh (whole range, a range or one day), filings, the extract layer alone."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from assets.partitions import daily_partitions


def build_jobs(partitioned: bool = True) -> dict[str, UnresolvedAssetJobDefinition]:
    partitions = daily_partitions if partitioned else None
    return {
        "refresh": dg.define_asset_job(
            name="refresh",
            selection=dg.AssetSelection.all(),
            partitions_def=partitions,
            description="Materialize everything: extract -> dbt -> analytics -> report -> "
            "publish. The market schedules launch it for one day's partition, a UI backfill "
            "for a range; `selloff run` runs the unpartitioned variant (a full refresh).",
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
            partitions_def=partitions,
            description="Land the raw datasets from the configured source (no dbt, no "
            "analytics).",
        ),
    }
