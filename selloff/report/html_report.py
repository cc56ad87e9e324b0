"""The sell-off report: one self-contained HTML file (inline CSS, inline SVG charts).

`write_selloff_report` takes the warehouse tables as polars frames, keyed by table name
(`selloff_rollup` or `analytics.selloff_rollup` alike):

| section (h2 id)    | tables used |
|--------------------|-------------|
| `waterfall`        | selloff_rollup (group_kind 'total'); selloff_windows for the dates |
| `losses`           | selloff_rollup (group_kind 'market' and 'basket') |
| `basket-mcap`      | fct_market_cap_daily, dim_basket_member; selloff_windows for the range |
| `flows`            | rotation (dimension 'investor_type', else fct_fund_flows_daily market flows over the window's dates); rotation sector and P/E rows |
| `valuation-spread` | valuation_spread |
| `factors`          | basket_factor_split, factor_attribution |
| `claims`           | claim_verdicts |
| `data-quality`     | data_quality_findings |

A section whose tables are missing or empty says "insufficient data: <table>" instead of
failing, so a partial warehouse (a market without flows, no filings) still gets a
report. The page loads nothing: no scripts, fonts, stylesheets or images from anywhere.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from jinja2 import Environment
from markupsafe import Markup

from selloff.markdown import format_value
from selloff.markets import market_of_expr
from selloff.report import charts

SECTION_IDS: tuple[str, ...] = (
    "waterfall", "losses", "basket-mcap", "flows", "valuation-spread", "factors", "claims",
    "data-quality",
)
DEFAULT_MAIN_WINDOW = "selloff_period"
# A basket counts as an AI basket when "AI" is one of the words of its id (US_AI_BIG8,
# CN_AI, JP_AI), unless the caller names the baskets.
_AI_BASKET_RE = re.compile(r"(^|_)AI(_|$)", re.IGNORECASE)
CLAIM_COLUMNS: tuple[str, ...] = (
    "claim_id", "claim_text", "stated_value", "computed_value", "unit", "verdict",
    "window_start", "window_end", "entities", "note",
)


# --------------------------------------------------------------------------- formatting


def fmt_bn(v: float | None) -> str:
    return "–" if v is None else f"{v / 1e9:+,.1f} bn"


def fmt_level_bn(v: float | None) -> str:
    return "–" if v is None else f"{v / 1e9:,.1f} bn"


def fmt_pct(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{100 * v:+.{digits}f}%"


def fmt_num(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def html_table(df: pl.DataFrame, formats: Mapping[str, Callable[[object], str]] | None = None,
               headers: Mapping[str, str] | None = None, max_rows: int = 200,
               classes: Mapping[str, Callable[[object], str | None]] | None = None) -> Markup:
    """An escaped HTML table; `formats` per column, `classes` gives a cell CSS class."""
    formats, headers, classes = formats or {}, headers or {}, classes or {}
    numeric = {c for c, t in df.schema.items() if t.is_numeric()}
    out = ["<table><thead><tr>"]
    num_attr = ' class="num"'
    out += [f"<th{num_attr if c in numeric else ''}>{html.escape(headers.get(c, c))}</th>"
            for c in df.columns]
    out.append("</tr></thead><tbody>")
    for row in df.head(max_rows).iter_rows(named=True):
        out.append("<tr>")
        for c in df.columns:
            v = row[c]
            text = formats[c](v) if c in formats else format_value(v)
            cls = [classes[c](v)] if c in classes and classes[c](v) else []
            if c in numeric:
                cls.append("num")
            attr = f' class="{" ".join(cls)}"' if cls else ""
            out.append(f"<td{attr}>{html.escape(text)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    if df.height > max_rows:
        out.append(f'<p class="small">{df.height - max_rows} more rows not shown.</p>')
    return Markup("".join(out))


# --------------------------------------------------------------------------- context


class Insufficient(Exception):
    """A section cannot be drawn: the message names the missing table (and why)."""


@dataclass
class _Ctx:
    frames: dict[str, pl.DataFrame]
    window_id: str | None
    window: tuple[dt.date, dt.date] | None
    ai_baskets: Sequence[str] | None
    notes: list[str] = field(default_factory=list)

    def get_all(self, *names: str) -> list[pl.DataFrame]:
        """All the tables, or Insufficient naming every one that is missing or empty."""
        missing = [n for n in names if not self.has(n)]
        if missing:
            raise Insufficient(f"insufficient data: {', '.join(missing)}")
        return [self.frames[n] for n in names]

    def get(self, name: str) -> pl.DataFrame:
        f = self.frames.get(name)
        if f is None:
            raise Insufficient(f"insufficient data: {name}")
        if f.height == 0:
            raise Insufficient(f"insufficient data: {name} (empty)")
        return f

    def has(self, name: str) -> bool:
        f = self.frames.get(name)
        return f is not None and f.height > 0

    def require_window(self, table: str) -> str:
        if self.window_id is None:
            raise Insufficient(f"insufficient data: {table} (no window to report on)")
        return self.window_id

    def is_ai_basket(self, basket_id: str) -> bool:
        if self.ai_baskets is not None:
            return basket_id in self.ai_baskets
        return bool(_AI_BASKET_RE.search(basket_id))


def _normalize(frames: Mapping[str, pl.DataFrame | None]) -> dict[str, pl.DataFrame]:
    # Accept "analytics.selloff_rollup" as well as "selloff_rollup".
    return {k.rsplit(".", 1)[-1]: v for k, v in frames.items() if v is not None}


def _window_ids(frames: dict[str, pl.DataFrame]) -> list[str]:
    ids: list[str] = []
    for name in ("selloff_rollup", "selloff_windows", "basket_factor_split", "rotation"):
        f = frames.get(name)
        if f is not None and "window_id" in f.columns:
            ids += [i for i in f["window_id"].unique().sort().to_list() if i not in ids]
    return ids


def resolve_main_window(frames: Mapping[str, pl.DataFrame | None],
                        main_window_id: str | None = None) -> str | None:
    """The window the report is about: the one given; else the `main: true` window of
    the packaged windows.yaml when the tables have it; else 'selloff_period'; else the
    first named window; else the first window of any table; None without windows."""
    if main_window_id is not None:
        return main_window_id
    f = _normalize(frames)
    ids = _window_ids(f)
    candidates: list[str] = []
    try:
        from selloff.analytics.windows import load_window_config

        candidates.append(load_window_config().main.window_id)
    except Exception:  # a broken or absent config must not stop the report
        pass
    candidates.append(DEFAULT_MAIN_WINDOW)
    for c in candidates:
        if c in ids:
            return c
    w = f.get("selloff_windows")
    if w is not None and {"kind", "window_id"} <= set(w.columns):
        named = w.filter(pl.col("kind") == "named")["window_id"].unique().sort().to_list()
        if named:
            return named[0]
    return ids[0] if ids else None


def _window_dates(frames: dict[str, pl.DataFrame], window_id: str | None
                  ) -> tuple[dt.date, dt.date] | None:
    if window_id is None:
        return None
    w = frames.get("selloff_windows")
    if w is not None and {"window_id", "start_date", "end_date"} <= set(w.columns):
        r = w.filter(pl.col("window_id") == window_id)
        if r.height:
            return r["start_date"].min(), r["end_date"].max()  # type: ignore[return-value]
    d = frames.get("selloff_decomposition")
    if d is not None and {"window_id", "t0_date", "t1_date"} <= set(d.columns):
        r = d.filter(pl.col("window_id") == window_id)
        if r.height:
            return r["t0_date"].min() + dt.timedelta(days=1), r["t1_date"].max()  # type: ignore[operator,return-value]
    return None


def _ctx(frames: Mapping[str, pl.DataFrame | None], main_window_id: str | None,
         ai_baskets: Sequence[str] | None) -> _Ctx:
    f = _normalize(frames)
    wid = resolve_main_window(f, main_window_id)
    return _Ctx(f, wid, _window_dates(f, wid), ai_baskets)


# --------------------------------------------------------------------------- sections
# Each builder returns (figure or None, body parts); it raises Insufficient when its
# inputs are missing. chart_images() reuses the figures.


@dataclass
class _Built:
    figure: object | None
    parts: list[Markup]


def _waterfall(ctx: _Ctx) -> _Built:
    roll = ctx.get("selloff_rollup")
    wid = ctx.require_window("selloff_rollup")
    total = roll.filter((pl.col("window_id") == wid) & (pl.col("group_kind") == "total"))
    if total.height == 0:
        raise Insufficient(f"insufficient data: selloff_rollup (no 'total' row for {wid})")
    r = total.row(0, named=True)
    change = r["change_usd"] or 0.0
    channels = [("price", r["price_usd"]), ("shares", r["shares_usd"]), ("FX", r["fx_usd"])]
    basis = [("re-rating", r["rerating_usd"]), ("earnings", r["earnings_usd"]),
             ("no earnings basis", r["no_earnings_basis_usd"]), ("FX", r["fx_usd"])]
    fig = charts.waterfall_chart(
        [("by channel", [(k, v or 0.0) for k, v in channels]),
         ("by valuation basis", [(k, v or 0.0) for k, v in basis])],
        change, f"Market-cap change, {wid}: USD {change / 1e9:+,.1f} bn")
    rows = [("change", change), *channels, *basis[:3]]
    table = pl.DataFrame(
        {"component": [k for k, _ in rows], "usd": [v for _, v in rows],
         "share_of_change": [(v / change if change and v is not None else None)
                             for _, v in rows]},
        schema={"component": pl.Utf8, "usd": pl.Float64, "share_of_change": pl.Float64},
    )
    return _Built(fig, [
        Markup("<p>{} securities; market cap USD {} at t0, {} at t1. Price + shares = "
               "re-rating + earnings + no earnings basis (the local change); FX completes the "
               "USD change.</p>").format(r["n_securities"], fmt_level_bn(r["mcap_usd_start"]),
                                         fmt_level_bn(r["mcap_usd_end"])),
        html_table(table, {"usd": fmt_bn, "share_of_change": lambda v: fmt_pct(v, 1)},
                   {"usd": "USD", "share_of_change": "share of change"}),
    ])


def _losses(ctx: _Ctx) -> _Built:
    roll = ctx.get("selloff_rollup")
    wid = ctx.require_window("selloff_rollup")
    r = roll.filter(pl.col("window_id") == wid)
    panels, tables = [], []
    for kind, label in (("market", "by market"), ("basket", "by basket")):
        g = r.filter(pl.col("group_kind") == kind).sort("change_usd")
        if g.height == 0:
            tables.append(Markup(f'<p class="insufficient">insufficient data: selloff_rollup '
                                 f"(no '{kind}' rows for {wid})</p>"))
            continue
        panels.append((label, g["group_id"].to_list(), g["change_usd"].to_list()))
        t = g.select(
            pl.col("group_id").alias(kind), "n_securities", "mcap_usd_start", "change_usd",
            (pl.col("change_usd") / pl.col("mcap_usd_start")).alias("change_pct"),
        )
        tables.append(html_table(t, {"mcap_usd_start": fmt_level_bn, "change_usd": fmt_bn,
                                     "change_pct": fmt_pct},
                                 {"mcap_usd_start": "market cap t0 (USD)",
                                  "change_usd": "change (USD)", "change_pct": "change"}))
    if not panels:
        raise Insufficient(f"insufficient data: selloff_rollup (no market or basket rows for {wid})")
    fig = charts.hbar_panels(panels, f"Market-cap change, {wid} (USD bn)")
    return _Built(fig, [Markup('<div class="cols">'), *tables, Markup("</div>")])


def basket_mcap_series(market_cap: pl.DataFrame, basket_members: pl.DataFrame,
                       baskets: Sequence[str], window: tuple[dt.date, dt.date] | None,
                       lead_days: int = 14) -> tuple[pl.DataFrame, list[str]]:
    """Daily USD market cap of each basket (members valid on the day), from `lead_days`
    before the window to its end. Days on which some member has no value are dropped
    (a partial sum would look like a crash); the notes say how many."""
    from selloff.analytics.baskets import normalize_basket_members, valid_on

    members = normalize_basket_members(basket_members).filter(pl.col("basket_id").is_in(baskets))
    mc = market_cap.lazy().select("security_id", "trade_date", "market_cap_usd")
    if window is not None:
        mc = mc.filter(pl.col("trade_date").is_between(window[0] - dt.timedelta(days=lead_days),
                                                       window[1]))
    daily = (
        members.join(mc, on="security_id", how="inner")
        .filter(valid_on("trade_date"))
        .group_by("basket_id", "trade_date")
        .agg(pl.col("market_cap_usd").sum(), pl.col("market_cap_usd").count().alias("n"),
             pl.len().alias("n_rows"))
        .with_columns(pl.col("n").max().over("basket_id").alias("n_max"))
        .sort("basket_id", "trade_date")
        .collect()
    )
    notes = []
    for basket, dropped in (daily.filter(pl.col("n") < pl.col("n_max"))
                            .group_by("basket_id").len().sort("basket_id").iter_rows()):
        notes.append(f"{basket}: {dropped} days with a member missing left out")
    return daily.filter(pl.col("n") == pl.col("n_max")).select(
        "basket_id", "trade_date", "market_cap_usd", "n"), notes


def _basket_mcap(ctx: _Ctx) -> _Built:
    mc, bm = ctx.get_all("fct_market_cap_daily", "dim_basket_member")
    baskets = [b for b in bm["basket_id"].unique().sort().to_list() if ctx.is_ai_basket(b)]
    if not baskets:
        raise Insufficient("insufficient data: dim_basket_member (no AI basket)")
    series, notes = basket_mcap_series(mc, bm, baskets, ctx.window)
    if series.height == 0:
        raise Insufficient("insufficient data: fct_market_cap_daily (no market cap for the "
                           "AI baskets' members in the window)")
    fig = charts.basket_mcap_chart(series, ctx.window)
    summary = (
        series.sort("trade_date")
        .group_by("basket_id", maintain_order=True)
        .agg(
            pl.col("n").last().alias("members"),
            pl.col("trade_date").first().alias("first_day"),
            pl.col("market_cap_usd").first().alias("first"),
            pl.col("market_cap_usd").max().alias("peak"),
            pl.col("market_cap_usd").min().alias("low"),
            pl.col("trade_date").last().alias("last_day"),
            pl.col("market_cap_usd").last().alias("last"),
        )
        .with_columns((pl.col("last") - pl.col("first")).alias("change"))
        .sort("basket_id")
    )
    parts = [html_table(summary, dict.fromkeys(("first", "peak", "low", "last"), fmt_level_bn)
                        | {"change": fmt_bn},
                        {"first": "USD first day", "last": "USD last day"})]
    if notes:
        parts.append(Markup(f'<p class="small">{html.escape("; ".join(notes))}</p>'))
    return _Built(fig, parts)


def _flows(ctx: _Ctx) -> _Built:
    wid = ctx.window_id
    flows = None
    source = ""
    if ctx.has("rotation") and wid is not None:
        rot = ctx.frames["rotation"]
        flows = rot.filter((pl.col("window_id") == wid) & (pl.col("dimension") == "investor_type")
                           & pl.col("net_flow_usd").is_not_null()).select(
            "market", pl.col("bucket").alias("investor_type"), "net_flow_usd", "note")
        source = "rotation (market-level flows, t0 < day <= t1)"
    if (flows is None or flows.height == 0) and ctx.has("fct_fund_flows_daily") and ctx.window:
        f = ctx.frames["fct_fund_flows_daily"]
        start, end = ctx.window
        flows = (
            f.filter((pl.col("flow_scope") == "market")
                     & pl.col("trade_date").is_between(start, end)
                     & pl.col("net_buy_usd").is_not_null())
            .group_by(market_of_expr("entity_id").alias("market"),
                      "investor_type")
            .agg(pl.col("net_buy_usd").sum().alias("net_flow_usd"),
                 pl.col("entity_id").unique().sort().str.join(", ").alias("note"))
            .sort("market", "investor_type")
        )
        source = f"fct_fund_flows_daily (market-level, {start} to {end})"
    if flows is None or flows.height == 0:
        missing = "rotation" if not ctx.has("rotation") else "rotation (no investor_type rows)"
        if not ctx.has("fct_fund_flows_daily"):
            missing += ", fct_fund_flows_daily"
        raise Insufficient(f"insufficient data: {missing}")
    fig = charts.grouped_hbar_by_market(flows, "net_flow_usd", "investor_type",
                                        f"Net buying by investor type, {wid} (USD bn)")
    parts = [Markup(f'<p class="small">Source: {html.escape(source)}. Net buying, + = '
                    "bought, − = sold.</p>"),
             html_table(flows.sort("market", "net_flow_usd"), {"net_flow_usd": fmt_bn},
                        {"net_flow_usd": "net flow (USD)"})]
    parts += _rotation_tables(ctx)
    return _Built(fig, parts)


def _rotation_tables(ctx: _Ctx) -> list[Markup]:
    if not ctx.has("rotation") or ctx.window_id is None:
        return [Markup('<p class="insufficient">insufficient data: rotation '
                       "(returns by sector group and P/E quintile)</p>")]
    rot = ctx.frames["rotation"].filter(
        (pl.col("window_id") == ctx.window_id) & pl.col("investor_type").is_null()
        & pl.col("cap_weighted_return").is_not_null())
    out: list[Markup] = []
    for dim, title in (("sector_group", "Cap-weighted return by sector group"),
                       ("pe_quintile", "Cap-weighted return by pre-window P/E quintile (Q1 = cheapest)"),
                       ("spread", "High to low: Q1 minus Q5 return")):
        t = rot.filter(pl.col("dimension") == dim)
        if t.height == 0:
            continue
        wide = (t.pivot(on="market", index="bucket", values="cap_weighted_return",
                        aggregate_function="first").sort("bucket"))
        markets = [c for c in wide.columns if c != "bucket"]
        out.append(Markup(f"<h3>{html.escape(title)}</h3>"))
        out.append(html_table(wide, dict.fromkeys(markets, fmt_pct),
                              classes=dict.fromkeys(markets, _sign_class)))
    return out


def _sign_class(v: object) -> str | None:
    if isinstance(v, int | float):
        return "neg" if v < 0 else "pos" if v > 0 else None
    return None


def _valuation_spread(ctx: _Ctx) -> _Built:
    vs = ctx.get("valuation_spread")
    fig = charts.valuation_spread_chart(vs, ctx.window)
    # The latest day with a ratio: the AI P/E may run on after the reference stops.
    summary = (
        vs.filter(pl.col("ratio").is_not_null())
        .sort("trade_date")
        .group_by("ai_basket_id", maintain_order=True)
        .agg(
            pl.col("dividend_ref").drop_nulls().first(),
            pl.col("trade_date").first().alias("first_day"),
            pl.col("trade_date").last().alias("last_day"),
            pl.col("ai_pe").last(),
            pl.col("dividend_pe").last(),
            pl.col("ratio").last(),
            pl.col("ratio_percentile").last(),
            pl.col("ratio").min().alias("ratio_min"),
            pl.col("ratio").max().alias("ratio_max"),
        )
        .sort("ai_basket_id")
    )
    if summary.height == 0:
        summary_part = Markup('<p class="insufficient">insufficient data: no day with both an '
                              "AI basket P/E and a dividend reference P/E</p>")
    else:
        summary_part = html_table(
            summary, dict.fromkeys(("ai_pe", "dividend_pe", "ratio", "ratio_min", "ratio_max"),
                                   fmt_num) | {"ratio_percentile": lambda v: fmt_num(v, 2)},
            {"ratio_percentile": "percentile (last day)"})
    return _Built(fig, [
        Markup('<p class="small">Ratio = AI basket P/E / dividend reference P/E (cap-weighted '
               "P/E, sum of market cap / sum of net income TTM). Percentile: rank of the day's "
               "ratio among all days of the basket in the table (full sample, 0 = lowest).</p>"),
        summary_part,
    ])


def _factors(ctx: _Ctx) -> _Built:
    split = ctx.get("basket_factor_split")
    wid = ctx.require_window("basket_factor_split")
    s = split.filter(pl.col("window_id") == wid)
    if s.height == 0:
        raise Insufficient(f"insufficient data: basket_factor_split (no rows for {wid})")
    ai = s.filter(pl.col("basket_id").map_elements(ctx.is_ai_basket, return_dtype=pl.Boolean))
    shown = ai if ai.height else s
    parts: list[Markup] = []
    if shown["basket_return"].drop_nulls().len() == 0:
        fig = None
        parts.append(Markup('<p class="insufficient">insufficient data: basket_factor_split '
                            "(no basket with an estimated split)</p>"))
    else:
        fig = charts.factor_split_chart(
            shown, f"What explains the baskets' return, {wid} (cross-sectional regression)")
    cols = ["basket_id", "market", "n_used", "n_members", "cap_coverage", "basket_return",
            "market_part", "valuation_part", "ai_theme_part", "idiosyncratic_part", "note"]
    parts.append(html_table(
        shown.select(cols),
        {c: fmt_pct for c in cols[5:10]} | {"cap_coverage": lambda v: fmt_pct(v, 0)[1:]
                                             if v is not None else "–"},
        {"n_used": "used", "n_members": "members", "cap_coverage": "cap covered",
         "basket_return": "basket (log)", "market_part": "market", "valuation_part": "valuation",
         "ai_theme_part": "AI theme", "idiosyncratic_part": "idiosyncratic"},
    ))
    if ctx.has("factor_attribution"):
        fa = ctx.frames["factor_attribution"].filter(pl.col("window_id") == wid)
        if fa.height:
            coef = fa.with_columns(
                pl.when(pl.col("coefficient").is_null()).then(pl.lit("–"))
                .otherwise(pl.format("{} (t {})", pl.col("coefficient").round(4),
                                     pl.col("t_stat").round(1)))
                .alias("cell")
            ).pivot(on="term", index=["market", "r2", "n", "beta_days_used", "note"],
                    values="cell", aggregate_function="first")
            terms = [t for t in ("intercept", "beta", "log_pe_z", "is_ai") if t in coef.columns]
            coef = coef.select("market", *terms, "r2", "n", "beta_days_used", "note")
            parts.append(Markup("<h3>Regressions: local log return on beta, log P/E (z) and "
                                "is_ai, per market</h3>"))
            parts.append(html_table(coef, {"r2": lambda v: fmt_num(v, 3)},
                                    {"beta_days_used": "beta days"}))
    else:
        parts.append(Markup('<p class="insufficient">insufficient data: factor_attribution</p>'))
    return _Built(fig, parts)


_VERDICT_CLASS = {"supported": "v-ok", "contradicted": "v-bad", "insufficient_data": "v-na",
                  "external": "v-ext"}


def _claims(ctx: _Ctx) -> _Built:
    cv = ctx.get("claim_verdicts")
    cols = [c for c in CLAIM_COLUMNS if c in cv.columns]
    if "claim_id" not in cols or "verdict" not in cols:
        raise Insufficient("insufficient data: claim_verdicts (needs claim_id and verdict)")
    counts = cv.group_by("verdict").len().sort("verdict")
    summary = ", ".join(f"{v}: {n}" for v, n in counts.iter_rows())
    rows = []
    for row in cv.select(cols).sort("claim_id").iter_rows(named=True):
        unit = row.get("unit")
        for c in ("stated_value", "computed_value"):
            if c in row:
                row[c] = _fmt_claim_value(row[c], unit)
        rows.append({k: (v if isinstance(v, str) or v is None else format_value(v))
                     for k, v in row.items()})
    table = pl.DataFrame(rows, schema=dict.fromkeys(cols, pl.Utf8))
    right = dict.fromkeys(("stated_value", "computed_value"), lambda v: "num")
    return _Built(None, [
        Markup(f"<p>{html.escape(summary)}</p>"),
        html_table(table, classes={"verdict": lambda v: _VERDICT_CLASS.get(str(v), "v-na")}
                   | right),
    ])


def _data_quality(ctx: _Ctx) -> _Built:
    findings = ctx.frames.get("data_quality_findings")
    if findings is None:
        raise Insufficient("insufficient data: data_quality_findings")
    if findings.height == 0:
        # An empty table is a result: the checks ran and found nothing suspicious.
        return _Built(None, [Markup("<p>No findings: nothing valid-but-suspicious in the inputs.</p>")])
    counts = findings.group_by("kind").len().sort("kind")
    summary = ", ".join(f"{k}: {n}" for k, n in counts.iter_rows())
    return _Built(None, [
        Markup(f"<p>{html.escape(summary)}. Glitches held back are not booked as a shares "
               "channel; the others are recorded only.</p>"),
        html_table(findings.sort("kind", "entity", "date_from"), max_rows=100),
    ])


def _fmt_claim_value(v: object, unit: object) -> str:
    # Amounts read best in billions of their currency, returns in per cent; any other
    # unit (or a value that is text, e.g. "qualitative") is shown as it is.
    if isinstance(v, int | float) and not isinstance(v, bool):
        u = str(unit or "")
        if re.fullmatch(r"[A-Z]{3}", u) and abs(v) >= 1e6:
            return f"{v / 1e9:,.3f} bn {u}"
        if u.lower() in ("return", "fraction", "ratio_pct"):
            return fmt_pct(float(v))
    return format_value(v)


_SECTIONS: tuple[tuple[str, str, Callable[[_Ctx], _Built]], ...] = (
    ("waterfall", "Where the market cap went", _waterfall),
    ("losses", "Losses by market and by basket", _losses),
    ("basket-mcap", "AI baskets: daily market cap", _basket_mcap),
    ("flows", "Flows and rotation", _flows),
    ("valuation-spread", "AI vs dividend valuation", _valuation_spread),
    ("factors", "Factor attribution", _factors),
    ("claims", "Claims checked against the data", _claims),
    ("data-quality", "Data-quality findings", _data_quality),
)
_CHART_KEYS = {"waterfall": "waterfall", "losses": "losses", "basket-mcap": "basket_mcap",
               "flows": "flows", "valuation-spread": "valuation_spread", "factors": "factors"}


# --------------------------------------------------------------------------- output

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0;
       color: #1f2d3d; background: #f7f9fb; }
main { max-width: 1000px; margin: 0 auto; padding: 0 24px 48px; }
header { padding: 20px 24px 8px; max-width: 1000px; margin: 0 auto; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 20px; border-bottom: 2px solid #d5dde5; padding-bottom: 4px; margin-top: 36px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
section { background: #fff; border: 1px solid #e3e8ee; border-radius: 6px; padding: 4px 18px 14px;
          margin-top: 18px; }
.banner { background: #b03a2e; color: #fff; text-align: center; font-size: 28px; font-weight: 800;
          letter-spacing: 4px; padding: 16px; }
.banner small { display: block; font-size: 13px; letter-spacing: 0; font-weight: 400; }
.meta { color: #5d6d7e; font-size: 13px; }
nav a { margin-right: 12px; font-size: 13px; color: #2e86c1; text-decoration: none; }
.chart svg { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0; width: 100%; }
th, td { border-bottom: 1px solid #e3e8ee; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #eef2f6; } th.num { text-align: right; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.neg { color: #c0392b; } td.pos { color: #1e8449; }
.insufficient { background: #fdf2e9; border-left: 4px solid #e67e22; padding: 8px 12px;
                color: #784212; }
.small { font-size: 12px; color: #5d6d7e; }
.cols { display: flex; gap: 16px; align-items: flex-start; } .cols > table { flex: 1; }
td.v-ok { background: #d5f5e3; font-weight: 600; } td.v-bad { background: #fadbd8; font-weight: 600; }
td.v-na { background: #eaeded; } td.v-ext { background: #d6eaf8; }
</style>
</head>
<body>
{% if synthetic %}<div class="banner">SYNTHETIC DEMO DATA
<small>Generated by the built-in demo market: the figures below are not real market data.</small></div>{% endif %}
<header>
<h1>{{ title }}</h1>
<p class="meta">Main window: <b>{{ window_id or "none" }}</b>{% if window %} ({{ window[0] }} to {{ window[1] }}){% endif %}
 · generated {{ generated }}</p>
<nav>{% for s in sections %}<a href="#{{ s.id }}">{{ s.title }}</a>{% endfor %}</nav>
</header>
<main>
{% for s in sections %}
<section>
<h2 id="{{ s.id }}">{{ s.title }}</h2>
{% if s.missing %}<p class="insufficient">{{ s.missing }}</p>{% endif %}
{% if s.chart %}<div class="chart">{{ s.chart }}</div>{% endif %}
{% for p in s.parts %}{{ p }}{% endfor %}
</section>
{% endfor %}
</main>
</body>
</html>
"""


@dataclass
class _Rendered:
    id: str
    title: str
    chart: Markup | None
    parts: list[Markup]
    missing: str | None


def _build(ctx: _Ctx, builder: Callable[[_Ctx], _Built]) -> tuple[_Built | None, str | None]:
    try:
        return builder(ctx), None
    except Insufficient as e:
        return None, str(e)


def render_selloff_report(frames: Mapping[str, pl.DataFrame | None], synthetic: bool,
                          main_window_id: str | None = None,
                          ai_baskets: Sequence[str] | None = None,
                          title: str = "AI equity sell-off, Oct-Nov 2025") -> str:
    """The report as an HTML string (see `write_selloff_report`)."""
    ctx = _ctx(frames, main_window_id, ai_baskets)
    rendered = []
    for sid, stitle, builder in _SECTIONS:
        built, missing = _build(ctx, builder)
        chart = None
        if built is not None and built.figure is not None:
            chart = Markup(charts.to_svg(built.figure, id_prefix=f"{sid}-"))
        rendered.append(_Rendered(sid, stitle, chart, built.parts if built else [], missing))
    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(_TEMPLATE).render(
        title=title, synthetic=synthetic, window_id=ctx.window_id, window=ctx.window,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), sections=rendered,
    )


def write_selloff_report(frames: dict[str, pl.DataFrame], out_path: Path, synthetic: bool,
                         main_window_id: str | None = None,
                         ai_baskets: Sequence[str] | None = None) -> Path:
    """Write the self-contained HTML report to `out_path` (parents created); returns it.

    `frames`: table name -> frame (module docstring lists which section uses which);
    missing tables give "insufficient data" notes. `synthetic` puts a SYNTHETIC DEMO DATA
    banner on top. `main_window_id`: the window reported on (default: see
    `resolve_main_window`). `ai_baskets`: the baskets shown as AI baskets (default: ids
    with the word AI).
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    text = render_selloff_report(frames, synthetic, main_window_id, ai_baskets)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out_path)  # readers never see a half-written report
    return out_path


def chart_images(frames: Mapping[str, pl.DataFrame | None], main_window_id: str | None = None,
                 ai_baskets: Sequence[str] | None = None, dpi: int = 100) -> dict[str, bytes]:
    """PNG bytes of the report's charts whose inputs exist: keys among waterfall,
    losses, basket_mcap, flows, valuation_spread, factors (for Dagster metadata)."""
    ctx = _ctx(frames, main_window_id, ai_baskets)
    out: dict[str, bytes] = {}
    for sid, _, builder in _SECTIONS:
        if sid not in _CHART_KEYS:
            continue
        built, _missing = _build(ctx, builder)
        if built is not None and built.figure is not None:
            out[_CHART_KEYS[sid]] = charts.to_png(built.figure, dpi=dpi)  # type: ignore[arg-type]
    return out
