"""The fact-check page: each claim beside the computed figure and its window."""

import dagster as dg

from assets import WRITER_POOL
from selloff.claims import write_factcheck_report
from selloff.resources import SourceResource, WarehouseResource


@dg.asset(
    key=["report", "fact_check"],
    group_name="report",
    deps=[dg.AssetKey(["analytics", "claim_verdicts"])],
    pool=WRITER_POOL,
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"html"},
    description="reports/fact_check.md and a self-contained reports/fact_check.html.",
)
def fact_check(source: SourceResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    verdicts = warehouse.read("analytics", "claim_verdicts")
    label = source.make_source().name
    md, html = write_factcheck_report(verdicts, warehouse.reports_dir,
                                      synthetic=source.is_synthetic, data_label=label)
    return dg.MaterializeResult(metadata={
        "html": dg.MetadataValue.path(str(html)),
        "markdown": dg.MetadataValue.path(str(md)),
        "claims": verdicts.height,
    })
