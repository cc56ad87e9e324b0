"""The report's "Sell-offs found in the data" block, from `analytics.episode_candidates`.

Not per episode: the candidates are found in the whole data (selloff.analytics.discovery).
The block holds the ranking and a timeline of the candidates across markets (one row per
market, one bar per candidate over its span, darker for a higher severity, labelled with
its rank).
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from markupsafe import Markup
from matplotlib.figure import Figure

from selloff.report import charts
from selloff.report.html import Block, Section, fmt_pct, html_table, sign_class

BLOCK_ID = "discovered"
TITLE = "Sell-offs found in the data"
SHOWN = 20


def timeline_chart(candidates: pl.DataFrame, top: int = SHOWN) -> Figure:
    """Candidates' spans per market; bar colour by severity rank, label the rank."""
    shown = candidates.sort("rank").head(top)
    markets = sorted({m for ms in shown["markets"].to_list() for m in ms.split(",") if m})
    fig = charts.new_figure(9.0, 0.6 + 0.55 * max(len(markets), 1))
    ax = fig.subplots()
    worst = max(float(shown["severity"].max() or 1.0), 1e-9)
    for r in shown.iter_rows(named=True):
        start, end = r["start_date"], r["end_date"] + dt.timedelta(days=1)
        for m in r["markets"].split(","):
            if not m:
                continue
            y = markets.index(m)
            shade = 0.25 + 0.75 * r["severity"] / worst
            ax.barh(y, (end - start).days, left=start, height=0.6,
                    color=charts.PALETTE[4], alpha=min(shade, 1.0), edgecolor="#7f8c8d",
                    linewidth=0.4)
            ax.text(start, y + 0.38, str(r["rank"]), fontsize=6.5, va="bottom")
    ax.set_yticks(range(len(markets)), markets)
    ax.set_ylim(-0.6, len(markets) - 0.2)
    ax.set_title("Candidates across markets (darker: more severe; label: rank)",
                 fontweight="bold")
    ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    return fig


def ranking_table(candidates: pl.DataFrame, top: int = SHOWN) -> Markup:
    shown = candidates.sort("rank").head(top).select(
        "rank", "candidate_id",
        pl.format("{} → {}", "start_date", "end_date").alias("span"),
        "markets", "fall_return", "fall_entity", "worst_day_return",
        pl.format("{} {}", "worst_day_entity", "worst_day_date").alias("worst day of"),
        "worst_week_return", (pl.col("cap_lost_usd") / 1e9).round(1).alias("cap_lost_bn"),
        pl.col("severity").round(1))
    return html_table(
        shown,
        formats={"fall_return": fmt_pct, "worst_day_return": fmt_pct,
                 "worst_week_return": fmt_pct,
                 "cap_lost_bn": lambda v: "–" if v is None else f"{v:,.1f}"},
        headers={"candidate_id": "candidate", "fall_return": "deepest fall",
                 "fall_entity": "of", "worst_day_return": "worst day",
                 "worst_week_return": "worst week", "cap_lost_bn": "cap lost USD bn"},
        classes={c: sign_class for c in ("fall_return", "worst_day_return",
                                         "worst_week_return")})


def discovered_block(candidates: pl.DataFrame | None) -> tuple[Block, object | None]:
    """(the block, its timeline figure or None when there are no candidates)."""
    intro = [Markup(
        "Found in the whole data by <code>analytics.episode_candidates</code>: drawdowns "
        "and day/week shocks of every index, basket and market aggregate, grouped across "
        "markets and ranked by severity. <code>selloff discover --out DIR</code> drafts an "
        "episode folder for each.")]
    if candidates is None or candidates.height == 0:
        return Block(BLOCK_ID, TITLE, intro=intro, sections=[Section(
            f"{BLOCK_ID}-ranking", "Ranking", missing="no candidate in the data")]), None
    fig = timeline_chart(candidates)
    chart = Markup(charts.to_svg(fig, id_prefix=f"{BLOCK_ID}-"))
    return Block(BLOCK_ID, TITLE, intro=intro, sections=[
        Section(f"{BLOCK_ID}-ranking", f"Ranking (top {min(SHOWN, candidates.height)} of "
                f"{candidates.height})", [ranking_table(candidates)], chart)]), fig
