"""The fact-check page: each claim beside the computed figure and its window."""

import dagster as dg

from assets import WRITER_POOL
from assets.analytics.table_reads import Inputs
from selloff.report.fact_check import write_factcheck_report
from selloff.resources import EpisodesResource, SourceResource, WarehouseResource

INPUTS = Inputs(analytics=("claim_verdicts",))


@dg.asset(
    key=["report", "fact_check"],
    group_name="report",
    deps=INPUTS.deps,
    pool=WRITER_POOL,
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"html"},
    description="reports/fact_check.md and a self-contained reports/fact_check.html, per "
    "episode (the report's HTML stack).",
)
def fact_check(source: SourceResource, episodes: EpisodesResource,
               warehouse: WarehouseResource) -> dg.MaterializeResult:
    frames = INPUTS.read_whole(warehouse, "claim_verdicts")
    if "claim_verdicts" not in frames:
        raise ValueError("analytics.claim_verdicts does not exist")
    verdicts = frames["claim_verdicts"]
    md, html = write_factcheck_report(verdicts, warehouse.reports_dir,
                                      synthetic=source.is_synthetic,
                                      data_label=source.make_source().name,
                                      episodes=episodes.load())
    return dg.MaterializeResult(metadata={
        "html": dg.MetadataValue.path(str(html)),
        "markdown": dg.MetadataValue.path(str(md)),
        "claims": verdicts.height,
    })
