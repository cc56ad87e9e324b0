"""The sell-off report: one self-contained HTML file covering every episode.

The page leads with the comparison of the episodes (each episode's peak-to-trough fall of
its headline entity, worst day and week, cap change by market, channel split), then one
block per episode: its headline (`selloff.report.lead`) and its sections
(`selloff.report.sections`). It reads the analytics tables in `REPORT_TABLES` and
nothing else: no mart, no recomputation. A missing table raises `ReportInputError`; a
section whose episode or window has no rows says so on the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from markupsafe import Markup

from selloff.episode import Episode, definition_hash, load_episodes
from selloff.report import charts
from selloff.report.discovered import discovered_block
from selloff.report.html import (
    Block,
    NoData,
    Section,
    generated_now,
    render_page,
    write_atomic,
)
from selloff.report.lead import comparison, lead, top_line
from selloff.report.section_cache import RecordingFrames, SectionCache
from selloff.report.sections import SECTIONS, EpisodeData

REPORT_TABLES: tuple[str, ...] = (
    "entity_moves", "selloff_windows", "selloff_rollup", "rotation", "valuation_spread",
    "basket_factor_split", "factor_attribution", "claim_verdicts", "data_quality_findings",
)
EPISODE_COLUMN = "episode_id"
# Optional: the "Sell-offs found in the data" block (selloff.report.discovered).
DISCOVERED_TABLE = "episode_candidates"
COMPARISON_ID = "comparison"


class ReportInputError(ValueError):
    """The report was handed without a table it reads (or one without episode_id)."""


def _normalize(frames: Mapping[str, pl.DataFrame | None]) -> dict[str, pl.DataFrame]:
    # Accept "analytics.selloff_rollup" as well as "selloff_rollup".
    return {k.rsplit(".", 1)[-1]: v for k, v in frames.items() if v is not None}


def episode_data(frames: Mapping[str, pl.DataFrame | None],
                 episodes: Sequence[Episode]) -> list[EpisodeData]:
    """Each episode's rows of every report table; ReportInputError names what is missing."""
    f = _normalize(frames)
    missing = [t for t in REPORT_TABLES if t not in f]
    if missing:
        raise ReportInputError(f"the report reads {', '.join(missing)}: not given")
    untagged = [t for t in REPORT_TABLES if EPISODE_COLUMN not in f[t].columns]
    if untagged:
        raise ReportInputError(f"no {EPISODE_COLUMN} column in {', '.join(untagged)}")
    return [EpisodeData(e, {t: f[t].filter(pl.col(EPISODE_COLUMN) == e.episode_id)
                            .drop(EPISODE_COLUMN) for t in REPORT_TABLES})
            for e in episodes]


@dataclass
class Report:
    title: str
    blocks: list[Block]
    figures: dict[str, object]  # "<episode_id>: <section id>" -> matplotlib Figure
    leads: list[Markup]  # one line an episode: its headline fall
    # "<episode_id>: <section id>" -> PNG of a chart drawn or kept by a SectionCache
    previews: dict[str, bytes] = field(default_factory=dict)


def report_title(episodes: Sequence[Episode]) -> str:
    if len(episodes) == 1:
        return episodes[0].title
    return "Sell-offs: " + "; ".join(e.title for e in episodes)


def build_report(frames: Mapping[str, pl.DataFrame | None],
                 episodes: Sequence[Episode], cache: SectionCache | None = None) -> Report:
    """The page's blocks and its charts (figures), from the report tables.

    With `cache` (selloff.report.section_cache) a section whose episode, code and read
    rows are unchanged since it was stored is taken from it, and every chart's preview
    is a PNG in `Report.previews` (stored, or drawn once at the cache's dpi) instead of a
    figure in `Report.figures`; the page is the same either way."""
    data = episode_data(frames, episodes)
    blocks: list[Block] = []
    figures: dict[str, object] = {}
    previews: dict[str, bytes] = {}
    if data:
        title = "The episodes side by side" if len(data) > 1 else "At a glance"
        blocks.append(Block(COMPARISON_ID, title, sections=[Section(
            f"{COMPARISON_ID}-table", "Headline, worst day and week, main window",
            comparison(data))]))
    for d in data:
        eid = d.episode.episode_id
        context = definition_hash(d.episode) if cache is not None else ""
        sections = []
        for sid, title, builder in SECTIONS:
            name = f"{eid}: {sid}"
            entry = cache.lookup(name, context, d.frames) if cache is not None else None
            if entry is not None:
                sections.append(entry.section)
                if entry.preview is not None:
                    previews[name] = entry.preview
                continue
            read = RecordingFrames(d.frames)
            preview = None
            try:
                built = builder(EpisodeData(d.episode, read))  # type: ignore[arg-type]
            except NoData as e:
                section = Section(f"{eid}-{sid}", title, missing=str(e))
            else:
                chart = None
                if built.figure is not None:
                    chart = Markup(charts.to_svg(built.figure, id_prefix=f"{eid}-{sid}-"))
                    if cache is None:
                        figures[name] = built.figure
                    else:
                        preview = previews[name] = charts.to_png(
                            built.figure, dpi=cache.dpi, layout=False)  # type: ignore[arg-type]
                section = Section(f"{eid}-{sid}", title, built.parts, chart)
            sections.append(section)
            if cache is not None:
                cache.store(name, context, d.frames, read.read, section, preview)
        blocks.append(Block(eid, d.episode.title, intro=lead(d), sections=sections))
    # Found in the whole data, not per episode: shown when the table is given.
    found = _normalize(frames).get(DISCOVERED_TABLE)
    if found is not None:
        name = f"{DISCOVERED_TABLE}: timeline"
        only = {DISCOVERED_TABLE: found}
        entry = cache.lookup(name, "", only) if cache is not None else None
        if entry is not None:
            blocks.append(entry.section)  # type: ignore[arg-type]
            if entry.preview is not None:
                previews[name] = entry.preview
        else:
            block, fig = discovered_block(found)
            blocks.append(block)
            preview = None
            if fig is not None and cache is None:
                figures[name] = fig
            elif fig is not None:
                preview = previews[name] = charts.to_png(
                    fig, dpi=cache.dpi, layout=False)  # type: ignore[union-attr,arg-type]
            if cache is not None:
                cache.store(name, "", only, {DISCOVERED_TABLE}, block,  # type: ignore[arg-type]
                            preview)
    return Report(report_title(episodes), blocks, figures, [top_line(d) for d in data],
                  previews)


def page_html(report: Report, episodes: Sequence[Episode], synthetic: bool) -> str:
    meta = [f"{len(episodes)} episode(s): " + ", ".join(e.episode_id for e in episodes)
            + f" · generated {generated_now()}"]
    return render_page(report.title, report.blocks, synthetic=synthetic, meta=meta,
                       leads=report.leads)


def render_selloff_report(frames: Mapping[str, pl.DataFrame | None], synthetic: bool,
                          episodes: Sequence[Episode] | None = None) -> str:
    """The report as an HTML string (see `write_selloff_report`)."""
    eps = tuple(episodes) if episodes is not None else load_episodes()
    return page_html(build_report(frames, eps), eps, synthetic)


def write_selloff_report(frames: Mapping[str, pl.DataFrame | None], out_path: Path,
                         synthetic: bool, episodes: Sequence[Episode] | None = None) -> Path:
    """Write the self-contained HTML report to `out_path` (parents created); returns it.

    `frames`: the `REPORT_TABLES` (name -> frame, every episode's rows, with episode_id).
    `synthetic` puts a SYNTHETIC DEMO DATA banner on top. `episodes`: the episodes
    reported on, in order (default: the bundled ones).
    """
    return write_atomic(Path(out_path), render_selloff_report(frames, synthetic, episodes))


def chart_images(report: Report, dpi: int = 100) -> dict[str, bytes]:
    """PNG bytes of the report's charts, keyed "<episode_id>: <section id>", in the layout
    their SVG on the page got (`build_report` saved each one): previews, not laid out
    again."""
    drawn = {k: charts.to_png(f, dpi=dpi, layout=False)  # type: ignore[arg-type]
             for k, f in report.figures.items()}
    # A report built with a SectionCache holds its previews as PNGs already (at the
    # cache's dpi), not as figures.
    return {**report.previews, **drawn}
