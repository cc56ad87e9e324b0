"""The self-contained HTML report with its charts, linked from the asset's metadata."""

import base64

import dagster as dg

from assets import WRITER_POOL
from assets.analytics.table_reads import Inputs
from selloff.report import REPORT_TABLES, build_report, chart_images, page_html
from selloff.report.html import write_atomic
from selloff.resources import EpisodesResource, SourceResource, WarehouseResource

INPUTS = Inputs(analytics=(*REPORT_TABLES, "episode_candidates"))


@dg.asset(
    key=["report", "selloff_report"],
    group_name="report",
    deps=INPUTS.deps,
    pool=WRITER_POOL,
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"html"},
    description="reports/selloff_report.html: every episode's peak-to-trough headline, the "
    "episodes side by side, then per episode the waterfall, losses by market and basket, "
    "basket levels, flows, valuation spread, factor attribution, claim verdicts and "
    "data-quality findings. Reads analytics tables only.",
)
def selloff_report(source: SourceResource, episodes: EpisodesResource,
                   warehouse: WarehouseResource) -> dg.MaterializeResult:
    eps = episodes.load()
    report = build_report(INPUTS.read_whole(warehouse, *REPORT_TABLES, "episode_candidates"), eps)
    path = write_atomic(warehouse.reports_dir / "selloff_report.html",
                        page_html(report, eps, synthetic=source.is_synthetic))
    charts = {
        f"chart: {name}": dg.MetadataValue.md(
            f"![{name}](data:image/png;base64,{base64.b64encode(png).decode()})")
        for name, png in chart_images(report, dpi=70).items()
    }
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path)),
                                          "bytes": path.stat().st_size, **charts})
