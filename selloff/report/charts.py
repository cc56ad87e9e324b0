"""Charts of the sell-off report: matplotlib figures rendered offline to SVG or PNG.

Figures are built on `matplotlib.figure.Figure` with the Agg canvas, never through
pyplot, so rendering keeps no global state, works in threads (Dagster) and needs no
display. SVG output has its text as paths (no fonts to fetch) and its element ids
prefixed per chart, so several charts can sit inline in one HTML page without their
ids colliding.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
from collections.abc import Sequence

import matplotlib
import matplotlib.text
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

NEG = "#c0392b"
POS = "#27ae60"
TOTAL = "#34495e"
WINDOW_SHADE = "#f4d03f"
PALETTE = ("#2e86c1", "#e67e22", "#8e44ad", "#16a085", "#c0392b", "#7f8c8d", "#d4ac0d",
           "#1abc9c")
COMPONENT_COLORS = {
    "market_part": "#2e86c1",
    "valuation_part": "#e67e22",
    "ai_theme_part": "#8e44ad",
    "idiosyncratic_part": "#95a5a6",
}
COMPONENT_LABELS = {
    "market_part": "market (incl. intercept)",
    "valuation_part": "valuation (log P/E)",
    "ai_theme_part": "AI theme",
    "idiosyncratic_part": "idiosyncratic",
}

_RC = {
    "svg.fonttype": "path",
    "svg.hashsalt": "selloff-report",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    # Labels come from episode files and data (window, basket and security ids, titles):
    # shown literally, never parsed as math text ("$" twice would be, and can crash).
    "text.parse_math": False,
}
_svg_counter = itertools.count(1)


def new_figure(width: float = 8.0, height: float = 3.6) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _literal_text(fig: Figure) -> None:
    # Titles, labels and legends made before saving took the rcParams of their moment;
    # tick labels are made while saving, under _RC.
    for text in fig.findobj(matplotlib.text.Text):
        text.set_parse_math(False)


def to_png(fig: Figure, dpi: int = 110, layout: bool = True) -> bytes:
    """The figure as PNG bytes. `layout=False` keeps the axes where an earlier save (the
    page's SVG) laid them out: no constrained-layout pass and no dry-run draw for it,
    about a third of a PNG's cost (positions differ from a fresh layout by a fraction of
    a pixel)."""
    buf = io.BytesIO()
    _literal_text(fig)
    engine = fig.get_layout_engine()
    if not layout:
        fig.set_layout_engine("none")
    try:
        with matplotlib.rc_context(_RC):
            fig.savefig(buf, format="png", dpi=dpi)
    finally:
        if not layout:
            fig.set_layout_engine(engine)
    return buf.getvalue()


def to_svg(fig: Figure, id_prefix: str | None = None) -> str:
    """The figure as an `<svg>` element for inline use: no XML prolog, DOCTYPE (it names
    an external DTD) or metadata, and every id (and reference to it) prefixed."""
    buf = io.BytesIO()
    _literal_text(fig)
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None,
                                                 "Format": None, "Type": None})
    text = buf.getvalue().decode("utf-8")
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    prefix = id_prefix or f"c{next(_svg_counter)}-"
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', text)
    text = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", text)
    # Let CSS scale the chart to the page width while keeping its aspect ratio.
    text = re.sub(r'(<svg[^>]*?)\swidth="[^"]*"\s+height="[^"]*"', r"\1", text, count=1)
    return text


def _bn(values: Sequence[float | None]) -> list[float]:
    return [0.0 if v is None else v / 1e9 for v in values]


def _bar_colors(values: Sequence[float]) -> list[str]:
    return [NEG if v < 0 else POS for v in values]


def waterfall_chart(panels: Sequence[tuple[str, Sequence[tuple[str, float]]]], total: float,
                    title: str) -> Figure:
    """One waterfall per panel: each panel's steps (label, USD) from 0 to `total`."""
    fig = new_figure(9.0, 3.6)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    fig.suptitle(title, fontweight="bold")
    for ax, (panel_title, steps) in zip(axes, panels, strict=True):
        labels = [s[0] for s in steps] + ["total"]
        vals = _bn([s[1] for s in steps])
        bottoms, level = [], 0.0
        for v in vals:
            bottoms.append(level if v >= 0 else level + v)
            level += v
        heights = [abs(v) for v in vals] + [abs(total / 1e9)]
        bottoms.append(min(0.0, total / 1e9))
        colors = _bar_colors(vals) + [TOTAL]
        # Multi-word labels wrap so neighbouring bars' labels do not run into each other.
        labels = [label.replace(" ", "\n") for label in labels]
        bars = ax.bar(labels, heights, bottom=bottoms, color=colors, width=0.6)
        signed = vals + [total / 1e9]
        for bar, v in zip(bars, signed, strict=True):
            # Label at the end the step moves to: above a rise, below a fall.
            y = bar.get_y() + (bar.get_height() if v >= 0 else 0.0)
            ax.annotate(f"{v:+,.1f}", (bar.get_x() + bar.get_width() / 2, y),
                        xytext=(0, 2 if v >= 0 else -3), textcoords="offset points",
                        ha="center", va="bottom" if v >= 0 else "top", fontsize=8)
        # Room below the lowest and above the highest level for the value labels.
        levels = [0.0, total / 1e9, *bottoms, *(b + h for b, h in zip(bottoms, heights, strict=True))]
        lo, hi = min(levels), max(levels)
        pad = 0.12 * ((hi - lo) or 1.0)
        ax.set_ylim(lo - pad, hi + pad)
        ax.axhline(0, color="#555", linewidth=0.8)
        ax.set_title(panel_title)
        ax.set_ylabel("USD bn")
    return fig


def hbar_panels(panels: Sequence[tuple[str, Sequence[str], Sequence[float]]], title: str,
                xlabel: str = "USD bn", scale: float = 1e9) -> Figure:
    """Horizontal bars, one panel per (title, labels, values); values divided by `scale`."""
    rows = max((len(p[1]) for p in panels), default=1)
    fig = new_figure(9.0, max(2.4, 0.32 * rows + 1.2))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    fig.suptitle(title, fontweight="bold")
    for ax, (panel_title, labels, values) in zip(axes, panels, strict=True):
        vals = [0.0 if v is None else v / scale for v in values]
        bars = ax.barh(list(labels), vals, color=_bar_colors(vals))
        ax.invert_yaxis()
        ax.axvline(0, color="#555", linewidth=0.8)
        ax.set_title(panel_title)
        ax.set_xlabel(xlabel)
        for bar, v in zip(bars, vals, strict=True):
            ax.annotate(f"{v:+,.1f}", (v, bar.get_y() + bar.get_height() / 2),
                        xytext=(3 if v >= 0 else -3, 0), textcoords="offset points",
                        ha="left" if v >= 0 else "right", va="center", fontsize=7)
        ax.margins(x=0.25)
    return fig


def basket_colors(baskets: Sequence[str]) -> dict[str, str]:
    """A fixed colour per basket (alphabetical order), the same in every chart."""
    return dict(zip(sorted(set(baskets)), itertools.cycle(PALETTE)))


def _shade(ax, window: tuple[dt.date, dt.date] | None) -> None:
    if window is not None:
        ax.axvspan(window[0], window[1], color=WINDOW_SHADE, alpha=0.25, linewidth=0,
                   label="main window")


def basket_level_chart(levels: pl.DataFrame, window: tuple[dt.date, dt.date] | None,
                       highlight: Sequence[str] = (),
                       title: str = "Baskets, rebased to 100") -> Figure:
    """One line per basket of (basket_id, trade_date, level); the `highlight` baskets
    (e.g. the AI baskets) drawn thick, the others thin and dashed; the main window shaded."""
    baskets = sorted(levels["basket_id"].unique().to_list())
    colors = basket_colors(baskets)
    fig = new_figure(9.0, 3.8)
    ax = fig.subplots()
    _shade(ax, window)
    for basket in baskets:
        s = levels.filter(pl.col("basket_id") == basket).sort("trade_date")
        strong = not highlight or basket in highlight
        ax.plot(s["trade_date"].to_list(), s["level"].to_list(), color=colors[basket],
                linewidth=2.0 if strong else 1.0, linestyle="-" if strong else "--",
                marker="o" if strong else None, markersize=2.5, label=basket)
    ax.axhline(100, color="#7f8c8d", linewidth=0.6)
    ax.set_title(title, fontweight="bold")
    ax.set_ylabel("level (first day = 100)")
    ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def grouped_hbar_by_market(frame: pl.DataFrame, value: str, label: str, title: str,
                           xlabel: str = "USD bn", scale: float = 1e9) -> Figure:
    """One horizontal-bar panel per market of `frame` (market, `label`, `value`)."""
    markets = frame["market"].unique(maintain_order=True).to_list()
    panels = []
    for m in markets:
        f = frame.filter(pl.col("market") == m).sort(value)
        panels.append((m, f[label].to_list(), f[value].to_list()))
    return hbar_panels(panels, title, xlabel=xlabel, scale=scale)


def valuation_spread_chart(vs: pl.DataFrame, window: tuple[dt.date, dt.date] | None) -> Figure:
    """P/E of each AI basket and the dividend reference (left), their ratio (right)."""
    fig = new_figure(9.0, 3.4)
    ax_pe, ax_ratio = fig.subplots(1, 2)
    fig.suptitle("AI baskets vs dividend reference: trailing P/E", fontweight="bold")
    _shade(ax_pe, window)
    _shade(ax_ratio, window)
    baskets = sorted(vs["ai_basket_id"].unique().to_list())
    colors = basket_colors(baskets)
    for basket in baskets:
        s = vs.filter(pl.col("ai_basket_id") == basket).sort("trade_date")
        ax_pe.plot(s["trade_date"].to_list(), s["ai_pe"].to_list(), color=colors[basket],
                   label=basket)
        ax_ratio.plot(s["trade_date"].to_list(), s["ratio"].to_list(), color=colors[basket],
                      label=basket)
    ref = vs.filter(pl.col("dividend_pe").is_not_null()).unique("trade_date").sort("trade_date")
    if ref.height:
        name = ref["dividend_ref"].drop_nulls().first() or "dividend"
        ax_pe.plot(ref["trade_date"].to_list(), ref["dividend_pe"].to_list(), color=TOTAL,
                   linestyle="--", label=str(name))
    ax_pe.set_title("P/E (TTM)")
    ax_ratio.set_title("AI P/E / dividend P/E")
    for ax in (ax_pe, ax_ratio):
        ax.legend(fontsize=7, frameon=False)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    return fig


def factor_split_chart(split: pl.DataFrame, title: str) -> Figure:
    """Stacked horizontal bars of each basket's return parts (log return, %), with the
    basket's return marked: the parts add up to the marker."""
    split = split.filter(pl.col("basket_return").is_not_null())
    labels = split["basket_id"].to_list()
    fig = new_figure(9.0, max(2.4, 0.45 * len(labels) + 1.4))
    ax = fig.subplots()
    fig.suptitle(title, fontweight="bold")
    pos_left = [0.0] * len(labels)
    neg_left = [0.0] * len(labels)
    for comp, color in COMPONENT_COLORS.items():
        vals = [100 * (v or 0.0) for v in split[comp].to_list()]
        lefts = [p if v >= 0 else n for v, p, n in zip(vals, pos_left, neg_left, strict=True)]
        ax.barh(labels, vals, left=lefts, color=color, label=COMPONENT_LABELS[comp], height=0.6)
        for i, v in enumerate(vals):
            if v >= 0:
                pos_left[i] += v
            else:
                neg_left[i] += v
    totals = [100 * v for v in split["basket_return"].to_list()]
    ax.scatter(totals, labels, color="black", marker="D", s=22, zorder=3,
               label="basket return")
    for y, t in enumerate(totals):
        ax.annotate(f"{t:+.1f}%", (t, y), xytext=(0, 7), textcoords="offset points",
                    ha="center", fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="#555", linewidth=0.8)
    ax.set_xlabel("cap-weighted local log return, %")
    fig.legend(fontsize=7, frameon=False, loc="outside lower center", ncol=5)
    return fig
