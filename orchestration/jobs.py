"""Jobs: the whole refresh, and the extract layer alone."""

import dagster as dg

refresh_job = dg.define_asset_job(
    name="refresh",
    selection=dg.AssetSelection.all(),
    description="Materialize everything: extract -> dbt -> analytics -> report -> publish.",
)

extract_job = dg.define_asset_job(
    name="extract_only",
    selection=dg.AssetSelection.groups("extract"),
    description="Land the raw datasets from the configured source (no dbt, no analytics).",
)
