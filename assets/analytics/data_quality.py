"""analytics.data_quality_findings: what is valid row by row but suspicious, and what was
done about it (held back, or recorded only)."""

import dagster as dg

from assets.analytics.inputs import analytics_asset, mart_key
from selloff.markdown import markdown_table
from selloff.quality.findings import data_quality_findings
from selloff.resources import WarehouseResource

_GLITCHES = dg.AssetKey(["staging", "int_shares_outstanding_glitches"])
_FX = dg.AssetKey(["staging", "stg_fx_rates_daily"])


@analytics_asset(
    "data_quality_findings",
    deps=[_GLITCHES, _FX, mart_key("fct_market_cap_daily")],
    description="Valid but suspicious input (dataset, entity, date_from, date_to, kind, "
    "detail, action): share counts that jump and revert or change basis (held back: the "
    "last good count holds), unconfirmed share steps, reverted price spikes, stale closes, "
    "FX outliers (recorded only). A real split is not a finding.",
)
def data_quality_findings_asset(warehouse: WarehouseResource) -> dg.MaterializeResult:
    # The shares flags and FX fixings are staging tables: the marts carry only the as-of
    # figures, in which a held-back glitch no longer shows.
    frames = warehouse.read_many({
        "glitches": ("staging", "int_shares_outstanding_glitches"),
        "fx": ("staging", "stg_fx_rates_daily"),
        "prices": ("marts", "fct_market_cap_daily"),
    })
    prices = frames.get("prices")
    findings = data_quality_findings(
        frames.get("glitches"),
        prices.select("security_id", "trade_date", "close") if prices is not None else None,
        frames.get("fx"))
    rows = warehouse.write("analytics", "data_quality_findings", findings)
    by_kind = findings.group_by("kind").len().sort("kind")
    return dg.MaterializeResult(metadata={
        "rows": rows,
        **{f"findings: {kind}": n for kind, n in by_kind.iter_rows()},
        "by_kind": dg.MetadataValue.md(markdown_table(by_kind, 20)),
        "findings": dg.MetadataValue.md(markdown_table(findings, 100)),
    })
