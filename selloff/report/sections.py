"""The sections of one episode in the sell-off report, each from analytics tables only.

| section (h3 id `<episode>-<id>`) | analytics table(s) |
|------------------|--------------------|
| `waterfall`        | selloff_rollup (group_kind 'total' of the main window) |
| `losses`           | selloff_rollup (group_kind 'market' and 'basket') |
| `baskets`          | entity_moves (basket `day` rows, chain-linked, rebased to 100) |
| `flows`            | rotation (investor_type flows; sector group and P/E quintile returns) |
| `valuation-spread` | valuation_spread |
| `factors`          | basket_factor_split, factor_attribution |
| `claims`           | claim_verdicts |
| `data-quality`     | data_quality_findings |

A builder gets an `EpisodeData` (the episode's rows of every table) and returns a
`Built`; when the episode or its main window has no rows it raises `NoData`, which the
page shows in place of the section. A missing table or column is an error, not a note.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl
from markupsafe import Markup

from selloff.episode import Episode
from selloff.report import charts
from selloff.report.claims_view import claim_rows, claims_table, counts_markup
from selloff.report.html import (
    NoData,
    fmt_bn,
    fmt_level_bn,
    fmt_num,
    fmt_pct,
    html_table,
    no_data,
    sign_class,
)


@dataclass
class EpisodeData:
    """One episode's rows of the report's tables (without the episode_id column)."""

    episode: Episode
    frames: dict[str, pl.DataFrame]

    @property
    def window_id(self) -> str:
        return self.episode.main.window_id

    @property
    def window(self) -> tuple[dt.date, dt.date] | None:
        """The main window's dates as selloff_windows has them (all markets)."""
        w = self.frames["selloff_windows"].filter(pl.col("window_id") == self.window_id)
        if w.height == 0:
            return None
        return w["start_date"].min(), w["end_date"].max()  # type: ignore[return-value]

    @property
    def ai_baskets(self) -> list[str] | None:
        """The episode's AI baskets (`valuation.ai_baskets`), None when it names none."""
        return list(self.episode.valuation.ai_baskets) or None

    def rows(self, table: str, **equal: object) -> pl.DataFrame:
        f = self.frames[table]
        for col, value in equal.items():
            f = f.filter(pl.col(col) == value)
        return f

    def main_rows(self, table: str, **equal: object) -> pl.DataFrame:
        """The main window's rows of `table`; NoData without any."""
        f = self.rows(table, window_id=self.window_id, **equal)
        if f.height == 0:
            what = ", ".join(f"{k} {v!r}" for k, v in equal.items())
            raise NoData(f"no data: {table} has no rows for the main window {self.window_id}"
                         + (f" ({what})" if what else ""))
        return f


@dataclass
class Built:
    figure: object | None
    parts: list[Markup]


def _waterfall(d: EpisodeData) -> Built:
    r = d.main_rows("selloff_rollup", group_kind="total").row(0, named=True)
    change = r["change_usd"] or 0.0
    channels = [("price", r["price_usd"]), ("shares", r["shares_usd"]), ("FX", r["fx_usd"])]
    basis = [("re-rating", r["rerating_usd"]), ("earnings", r["earnings_usd"]),
             ("no earnings basis", r["no_earnings_basis_usd"]), ("FX", r["fx_usd"])]
    fig = charts.waterfall_chart(
        [("by channel", [(k, v or 0.0) for k, v in channels]),
         ("by valuation basis", [(k, v or 0.0) for k, v in basis])],
        change, f"Market-cap change, {d.window_id}: USD {change / 1e9:+,.1f} bn")
    rows = [("change", change), *channels, *basis[:3]]
    table = pl.DataFrame(
        {"component": [k for k, _ in rows], "usd": [v for _, v in rows],
         "share_of_change": [(v / change if change and v is not None else None)
                             for _, v in rows]},
        schema={"component": pl.Utf8, "usd": pl.Float64, "share_of_change": pl.Float64})
    return Built(fig, [
        Markup("<p>{} securities; market cap USD {} at t0, {} at t1. Price + shares = "
               "re-rating + earnings + no earnings basis (the local change); FX completes the "
               "USD change.</p>").format(r["n_securities"], fmt_level_bn(r["mcap_usd_start"]),
                                         fmt_level_bn(r["mcap_usd_end"])),
        html_table(table, {"usd": fmt_bn, "share_of_change": lambda v: fmt_pct(v, 1)},
                   {"usd": "USD", "share_of_change": "share of change"}),
    ])


def _losses(d: EpisodeData) -> Built:
    r = d.main_rows("selloff_rollup")
    panels, tables = [], []
    for kind, label in (("market", "by market"), ("basket", "by basket")):
        g = r.filter(pl.col("group_kind") == kind).sort("change_usd")
        if g.height == 0:
            tables.append(no_data(f"no data: selloff_rollup has no '{kind}' rows for "
                                  f"{d.window_id}"))
            continue
        panels.append((label, g["group_id"].to_list(), g["change_usd"].to_list()))
        t = g.select(pl.col("group_id").alias(kind), "n_securities", "mcap_usd_start",
                     "change_usd", (pl.col("change_usd") / pl.col("mcap_usd_start"))
                     .alias("change_pct"))
        tables.append(html_table(t, {"mcap_usd_start": fmt_level_bn, "change_usd": fmt_bn,
                                     "change_pct": fmt_pct},
                                 {"mcap_usd_start": "market cap t0 (USD)",
                                  "change_usd": "change (USD)", "change_pct": "change"}))
    if not panels:
        raise NoData(f"no data: selloff_rollup has no market or basket rows for {d.window_id}")
    fig = charts.hbar_panels(panels, f"Market-cap change, {d.window_id} (USD bn)")
    return Built(fig, [Markup('<div class="cols">'), *tables, Markup("</div>")])


def rebased_levels(moves: pl.DataFrame) -> pl.DataFrame:
    """(basket_id, trade_date, level): each basket's day returns chain-linked, 100 at the
    t0 of its first day row. A day without a return keeps the level (and is counted)."""
    days = (moves.filter((pl.col("entity_kind") == "basket") & (pl.col("period") == "day"))
            .sort("entity_id", "t1_date"))
    frames = []
    for (basket,), g in days.group_by("entity_id", maintain_order=True):
        level = 100.0 * (1.0 + g["return"].fill_null(0.0)).cum_prod()
        frames.append(pl.DataFrame({
            "basket_id": basket, "trade_date": [g["t0_date"][0], *g["t1_date"].to_list()],
            "level": [100.0, *level.to_list()],
            "missing": [0, *g["return"].is_null().cast(pl.Int64).to_list()]}))
    return (pl.concat(frames) if frames else
            pl.DataFrame(schema={"basket_id": pl.Utf8, "trade_date": pl.Date,
                                 "level": pl.Float64, "missing": pl.Int64}))


def _baskets(d: EpisodeData) -> Built:
    levels = rebased_levels(d.rows("entity_moves"))
    if levels.height == 0:
        raise NoData("no data: entity_moves has no basket day rows for this episode")
    present = set(levels["basket_id"].to_list())
    ai = [b for b in d.ai_baskets or [] if b in present]
    fig = charts.basket_level_chart(
        levels, d.window, highlight=ai,
        title=f"Baskets, chain-linked day returns, rebased to 100 on {levels['trade_date'].min()}")
    summary = (levels.sort("trade_date").group_by("basket_id", maintain_order=True)
               .agg(pl.col("trade_date").first().alias("first_day"),
                    pl.col("trade_date").last().alias("last_day"),
                    pl.col("level").min().alias("low"), pl.col("level").last().alias("last"),
                    pl.col("missing").sum().alias("days_without_return"))
               .with_columns((pl.col("last") / 100 - 1).alias("change"))
               .sort("basket_id"))
    parts = [Markup('<p class="small">Level: the product of (1 + day return) of the basket '
                    "(entity_moves day rows), 100 at the close before its first day. {}</p>")
             .format(f"AI baskets (drawn thick): {', '.join(ai)}." if ai else ""),
             html_table(summary, {"low": fmt_num, "last": fmt_num, "change": fmt_pct},
                        classes={"change": sign_class})]
    return Built(fig, parts)


def _flows(d: EpisodeData) -> Built:
    rot = d.rows("rotation", window_id=d.window_id)
    flows = rot.filter((pl.col("dimension") == "investor_type")
                       & pl.col("net_flow_usd").is_not_null()).select(
        "market", pl.col("bucket").alias("investor_type"), "net_flow_usd", "note")
    parts: list[Markup] = []
    fig = None
    if flows.height == 0:
        parts.append(no_data(f"no data: rotation has no investor_type flows for {d.window_id}"))
    else:
        fig = charts.grouped_hbar_by_market(flows, "net_flow_usd", "investor_type",
                                            f"Net buying by investor type, {d.window_id} (USD bn)")
        parts += [Markup('<p class="small">Source: rotation (market-level flows, t0 &lt; day '
                         "&lt;= t1). Net buying, + = bought, − = sold.</p>"),
                  html_table(flows.sort("market", "net_flow_usd"), {"net_flow_usd": fmt_bn},
                             {"net_flow_usd": "net flow (USD)"})]
    returns = rot.filter(pl.col("investor_type").is_null()
                         & pl.col("cap_weighted_return").is_not_null())
    for dim, title in (("sector_group", "Cap-weighted return by sector group"),
                       ("pe_quintile", "Cap-weighted return by pre-window P/E quintile "
                                       "(Q1 = cheapest)"),
                       ("spread", "High to low: Q1 minus Q5 return")):
        t = returns.filter(pl.col("dimension") == dim)
        if t.height == 0:
            continue
        wide = t.pivot(on="market", index="bucket", values="cap_weighted_return",
                       aggregate_function="first").sort("bucket")
        markets = [c for c in wide.columns if c != "bucket"]
        parts.append(Markup("<h4>{}</h4>").format(title))
        parts.append(html_table(wide, dict.fromkeys(markets, fmt_pct),
                                classes=dict.fromkeys(markets, sign_class)))
    if fig is None and len(parts) == 1:
        raise NoData(f"no data: rotation has no rows for the main window {d.window_id}")
    return Built(fig, parts)


def _valuation_spread(d: EpisodeData) -> Built:
    vs = d.rows("valuation_spread")
    if vs.height == 0:
        raise NoData("no data: valuation_spread has no rows for this episode")
    fig = charts.valuation_spread_chart(vs, d.window)
    summary = (
        vs.filter(pl.col("ratio").is_not_null()).sort("trade_date")
        .group_by("ai_basket_id", maintain_order=True)
        .agg(pl.col("dividend_ref").drop_nulls().first(),
             pl.col("trade_date").first().alias("first_day"),
             pl.col("trade_date").last().alias("last_day"),
             pl.col("ai_pe").last(), pl.col("dividend_pe").last(), pl.col("ratio").last(),
             pl.col("ratio_percentile").last(),
             pl.col("ratio").min().alias("ratio_min"), pl.col("ratio").max().alias("ratio_max"))
        .sort("ai_basket_id"))
    part = (no_data("no data: no day with both an AI basket P/E and a dividend reference P/E")
            if summary.height == 0 else html_table(
                summary, dict.fromkeys(("ai_pe", "dividend_pe", "ratio", "ratio_min",
                                        "ratio_max", "ratio_percentile"), fmt_num),
                {"ratio_percentile": "percentile (last day)"}))
    return Built(fig, [
        Markup('<p class="small">Ratio = AI basket P/E / dividend reference P/E (cap-weighted '
               "P/E, sum of market cap / sum of net income TTM). Percentile: rank of the day's "
               "ratio among all days of the basket in the table (0 = lowest).</p>"), part])


def _factors(d: EpisodeData) -> Built:
    s = d.main_rows("basket_factor_split")
    ai = d.ai_baskets
    shown = s.filter(pl.col("basket_id").is_in(ai)) if ai else s
    shown = shown if shown.height else s
    parts: list[Markup] = []
    fig = None
    if shown["basket_return"].drop_nulls().len() == 0:
        parts.append(no_data("no data: basket_factor_split has no basket with an estimated split"))
    else:
        fig = charts.factor_split_chart(
            shown, f"What explains the baskets' return, {d.window_id} (cross-sectional regression)")
    cols = ["basket_id", "market", "n_used", "n_members", "cap_coverage", "basket_return",
            "market_part", "valuation_part", "ai_theme_part", "idiosyncratic_part", "note"]
    parts.append(html_table(
        shown.select(cols),
        dict.fromkeys(cols[5:10], fmt_pct) | {"cap_coverage": lambda v: fmt_pct(v, 0)[1:]
                                               if v is not None else "–"},
        {"n_used": "used", "n_members": "members", "cap_coverage": "cap covered",
         "basket_return": "basket (log)", "market_part": "market", "valuation_part": "valuation",
         "ai_theme_part": "AI theme", "idiosyncratic_part": "idiosyncratic"}))
    fa = d.rows("factor_attribution", window_id=d.window_id)
    if fa.height == 0:
        parts.append(no_data(f"no data: factor_attribution has no rows for {d.window_id}"))
        return Built(fig, parts)
    coef = fa.with_columns(
        pl.when(pl.col("coefficient").is_null()).then(pl.lit("–"))
        .otherwise(pl.format("{} (t {})", pl.col("coefficient").round(4), pl.col("t_stat").round(1)))
        .alias("cell")
    ).pivot(on="term", index=["market", "r2", "n", "beta_days_used", "note"], values="cell",
            aggregate_function="first")
    terms = [t for t in ("intercept", "beta", "log_pe_z", "is_ai") if t in coef.columns]
    coef = coef.select("market", *terms, "r2", "n", "beta_days_used", "note")
    parts.append(Markup("<h4>Regressions: local log return on beta, log P/E (z) and is_ai, "
                        "per market</h4>"))
    parts.append(html_table(coef, {"r2": lambda v: fmt_num(v, 3)}, {"beta_days_used": "beta days"}))
    return Built(fig, parts)


def _claims(d: EpisodeData) -> Built:
    cv = d.rows("claim_verdicts")
    if cv.height == 0:
        raise NoData("no data: claim_verdicts has no rows for this episode")
    rows = claim_rows(cv)
    return Built(None, [counts_markup(rows), claims_table(rows)])


def _data_quality(d: EpisodeData) -> Built:
    findings = d.rows("data_quality_findings")
    if findings.height == 0:
        # An empty table is a result: the checks ran and found nothing suspicious.
        return Built(None, [Markup("<p>No findings: nothing valid-but-suspicious in the "
                                   "inputs.</p>")])
    counts = findings.group_by("kind").len().sort("kind")
    summary = ", ".join(f"{k}: {n}" for k, n in counts.iter_rows())
    return Built(None, [
        Markup("<p>{}. Glitches held back are not booked as a shares channel; the others are "
               "recorded only.</p>").format(summary),
        html_table(findings.sort("kind", "entity", "date_from"), max_rows=100)])


SECTIONS: tuple[tuple[str, str, Callable[[EpisodeData], Built]], ...] = (
    ("waterfall", "Where the market cap went (main window)", _waterfall),
    ("losses", "Losses by market and by basket (main window)", _losses),
    ("baskets", "Baskets day by day", _baskets),
    ("flows", "Flows and rotation (main window)", _flows),
    ("valuation-spread", "AI vs dividend valuation", _valuation_spread),
    ("factors", "Factor attribution (main window)", _factors),
    ("claims", "Claims checked against the data", _claims),
    ("data-quality", "Data-quality findings", _data_quality),
)
SECTION_IDS: tuple[str, ...] = tuple(s for s, _, _ in SECTIONS)
