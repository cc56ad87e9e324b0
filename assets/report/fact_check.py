"""The fact-check page: each claim beside the computed figure and its window."""

import dagster as dg

from assets import WRITER_POOL
from assets.analytics.table_reads import Inputs
from assets.report.selloff_report import render_context
from selloff import refresh_state
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
    # As the report: written again only when the verdicts, the episodes, the report code
    # or the data label changed.
    eps = episodes.load()
    label = source.make_source().name
    html_path = warehouse.reports_dir / "fact_check.html"
    md_path = warehouse.reports_dir / "fact_check.md"
    with warehouse.connect() as con:
        fingerprint = refresh_state.inputs_fingerprint(
            con, [("analytics", "claim_verdicts")],
            render_context(eps, source.is_synthetic) + label)
        unchanged = html_path.is_file() and md_path.is_file() and \
            refresh_state.rendered_from(con, "fact_check") == fingerprint
    if unchanged:
        return dg.MaterializeResult(metadata={
            "html": dg.MetadataValue.path(str(html_path)),
            "markdown": dg.MetadataValue.path(str(md_path)), "re_rendered": False,
            "why": "claim_verdicts, the episodes and the report code are unchanged"})
    frames = INPUTS.read_whole(warehouse, "claim_verdicts")
    if "claim_verdicts" not in frames:
        raise ValueError("analytics.claim_verdicts does not exist")
    verdicts = frames["claim_verdicts"]
    md, html = write_factcheck_report(verdicts, warehouse.reports_dir,
                                      synthetic=source.is_synthetic,
                                      data_label=label, episodes=eps)
    with warehouse.connect() as con:
        refresh_state.record_render(con, "fact_check", fingerprint)
    return dg.MaterializeResult(metadata={
        "re_rendered": True,
        "html": dg.MetadataValue.path(str(html)),
        "markdown": dg.MetadataValue.path(str(md)),
        "claims": verdicts.height,
    })
