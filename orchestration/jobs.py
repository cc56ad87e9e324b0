"""Jobs: the refresh (everything; a full refresh or a refresh window), a market's refresh
(the market schedules'), filings, extract, freshness."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from assets.extract import freshness_check_keys

# Filings arrive on their own schedule (filings_daily), not with a market's session.
FILINGS = (dg.AssetKey(["raw", "fundamentals"]), dg.AssetKey(["raw", "shares_outstanding"]))


def build_jobs() -> dict[str, UnresolvedAssetJobDefinition]:
    return {
        "refresh": dg.define_asset_job(
            name="refresh",
            selection=dg.AssetSelection.all(),
            description="Materialize everything in one run: extract -> dbt -> analytics -> "
            "report -> publish. Without a refresh window (resource `refresh`) a full "
            "refresh; with one, only its days (the market schedules run the same with one "
            "market's session, as market_refresh).",
        ),
        "market_refresh": dg.define_asset_job(
            name="market_refresh",
            # The filings (5 x 668 k rows re-landed and validated a day at 5,000 x 5) are
            # the filings schedule's: a session brings prices, index levels, flows, FX and
            # reference data, whose landings the refresh window and ledger keep small.
            selection=dg.AssetSelection.all() - dg.AssetSelection.assets(*FILINGS),
            description="What each market schedule runs with its refresh window (one "
            "market's session): the refresh without the filings (fundamentals, share "
            "counts), which the filings_daily schedule lands. extract -> dbt -> analytics "
            "-> report -> publish.",
        ),
        "filings_refresh": dg.define_asset_job(
            name="filings_refresh",
            selection=dg.AssetSelection.assets(*FILINGS),
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
