"""The self-contained HTML report with its charts, linked from the asset's metadata."""

import base64
from pathlib import Path

import dagster as dg

from assets import WRITER_POOL
from assets.analytics.table_reads import Inputs
from selloff import refresh_state
from selloff.episode import definition_hash
from selloff.report import REPORT_TABLES, build_report, chart_images, page_html
from selloff.report.html import write_atomic
from selloff.report.section_cache import SectionCache
from selloff.resources import EpisodesResource, SourceResource, WarehouseResource

INPUTS = Inputs(analytics=(*REPORT_TABLES, "episode_candidates"))
# The charts' PNG previews in the materialization metadata.
PREVIEW_DPI = 70


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
    # Re-rendered only when what it is made of changed: the contents of the tables it
    # reads, the episodes' definitions, the report code, the synthetic flag. A refresh
    # that left every analytics row as it was keeps the page it would render again.
    target = warehouse.reports_dir / "selloff_report.html"
    with warehouse.connect() as con:
        fingerprint = refresh_state.inputs_fingerprint(
            con, [("analytics", t) for t in (*REPORT_TABLES, "episode_candidates")],
            render_context(eps, source.is_synthetic))
        unchanged = target.is_file() and refresh_state.rendered_from(
            con, "selloff_report") == fingerprint
    if unchanged:
        return dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(target)), "bytes": target.stat().st_size,
            "re_rendered": False,
            "why": "its inputs (analytics tables, episodes, report code) are unchanged"})
    # A section whose rows did not change is taken as rendered last time (its charts are
    # most of the page's cost): selloff.report.section_cache. The cache sits beside the
    # build file, outside the reports folder.
    cache = SectionCache(warehouse.settings().build_warehouse.parent / "report_sections",
                         render_context((), source.is_synthetic), dpi=PREVIEW_DPI)
    report = build_report(INPUTS.read_whole(warehouse, *REPORT_TABLES, "episode_candidates"),
                          eps, cache=cache)
    path = write_atomic(warehouse.reports_dir / "selloff_report.html",
                        page_html(report, eps, synthetic=source.is_synthetic))
    charts = {
        f"chart: {name}": dg.MetadataValue.md(
            f"![{name}](data:image/png;base64,{base64.b64encode(png).decode()})")
        for name, png in chart_images(report, dpi=PREVIEW_DPI).items()
    }
    with warehouse.connect() as con:
        refresh_state.record_render(con, "selloff_report", fingerprint)
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path)),
                                          "bytes": path.stat().st_size, "re_rendered": True,
                                          "sections_kept": len(cache.hits),
                                          "sections_drawn": len(cache.misses), **charts})


def render_context(episodes, synthetic: bool) -> str:
    """What a rendered page depends on besides its tables: the episodes' definitions,
    the report code (selloff/report/*.py) and whether the data is synthetic."""
    import hashlib

    import selloff.report as report_pkg

    digest = hashlib.sha256(f"synthetic={synthetic}".encode())
    for e in episodes:
        digest.update(f"\0{e.episode_id}={definition_hash(e)}".encode())
    for f in sorted(Path(report_pkg.__file__).parent.rglob("*.py")):
        digest.update(f.name.encode() + f.read_bytes())
    return digest.hexdigest()
