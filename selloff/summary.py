"""What `selloff run` prints after a refresh: where things are, row counts, the headline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from selloff.episode import Episode
from selloff.warehouse import connect

SYNTHETIC_BANNER = "SYNTHETIC DEMO DATA: every figure below is made up by the demo market generator."


@dataclass
class EpisodeSummary:
    episode_id: str
    title: str
    main_window: dict
    headline: dict | None = None
    by_market: pl.DataFrame | None = None
    by_basket: pl.DataFrame | None = None
    verdicts: pl.DataFrame | None = None


@dataclass
class RunSummary:
    warehouse: Path
    synthetic: bool
    table_rows: dict[str, int] = field(default_factory=dict)
    episodes: list[EpisodeSummary] = field(default_factory=list)


def _tables(con, schema: str) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY 1",
        [schema],
    ).fetchall()
    return [r[0] for r in rows]


def _headline(con, episode: Episode) -> dict | None:
    """The episode's headline fall: its `headline` entity's drawdown move, if detected."""
    if not episode.headline:
        return None
    rows = con.execute(
        "SELECT entity_kind, t0_date, t1_date, \"return\", change_usd FROM analytics.entity_moves "
        "WHERE episode_id = ? AND period = 'window' AND entity_id = ? AND window_id IN (?, ?)",
        [episode.episode_id, episode.headline, f"drawdown:{episode.headline}",
         f"drawdown:basket:{episode.headline}"]).fetchall()
    if not rows:
        return None
    kind, t0, t1, ret, change = rows[0]
    return {"entity": episode.headline, "kind": kind, "peak": str(t0), "trough": str(t1),
            "return": ret, "change_usd": change}


def summarize(warehouse: Path, synthetic: bool, episodes: Sequence[Episode] = (),
              top: int = 8) -> RunSummary:
    """Read the published warehouse (read-only) and collect the figures to print, per
    episode: its headline fall, its main window by market and basket, its verdicts."""
    out = RunSummary(warehouse=warehouse, synthetic=synthetic)
    with connect(warehouse, read_only=True) as con:
        for schema in ("marts", "analytics"):
            for table in _tables(con, schema):
                n = con.execute(f"SELECT count(*) FROM {schema}.{table}").fetchall()[0][0]
                out.table_rows[f"{schema}.{table}"] = int(n)
        if "analytics.selloff_rollup" not in out.table_rows:
            return out
        cols = ["group_id", "n_securities", "mcap_usd_start", "change_usd", "price_usd",
                "shares_usd", "fx_usd", "share_of_total"]
        for e in episodes:
            main = e.main
            rollup = con.sql("SELECT * FROM analytics.selloff_rollup WHERE episode_id = ? "
                             "AND window_id = ?", params=[e.episode_id, main.window_id]).pl()
            item = EpisodeSummary(
                e.episode_id, e.title,
                {"window_id": main.window_id, "start": str(main.start), "end": str(main.end)},
                headline=_headline(con, e) if "analytics.entity_moves" in out.table_rows else None,
                by_market=rollup.filter(pl.col("group_kind") == "market").sort("change_usd")
                .select(cols).head(top),
                by_basket=rollup.filter(pl.col("group_kind") == "basket").sort("change_usd")
                .select(cols).head(top))
            if "analytics.claim_verdicts" in out.table_rows:
                item.verdicts = con.sql(
                    "SELECT claim_id, verdict, stated_text AS stated, computed_text AS computed, "
                    "CAST(window_start AS VARCHAR) || ' .. ' || CAST(window_end AS VARCHAR) "
                    "AS window FROM analytics.claim_verdicts WHERE episode_id = ?",
                    params=[e.episode_id]).pl()
            out.episodes.append(item)
    return out


def render(summary: RunSummary, console) -> None:
    """Print the summary with rich (console is a rich.console.Console). Text from files
    and data (titles, ids, names) is escaped: it is shown literally, never read as markup."""
    from rich.markup import escape as esc
    from rich.table import Table
    from rich.text import Text

    if summary.synthetic:
        console.print(f"[bold yellow]{esc(SYNTHETIC_BANNER)}[/]")
    console.print(f"Warehouse (published, open read-only): [bold]{esc(str(summary.warehouse))}[/]",
                  highlight=False)
    t = Table(title="Rows per table")
    t.add_column("table")
    t.add_column("rows", justify="right")
    for name, n in summary.table_rows.items():
        t.add_row(Text(name), f"{n:,}")
    console.print(t)
    tag = " [synthetic]" if summary.synthetic else ""
    for e in summary.episodes:
        w = e.main_window
        console.rule(f"[bold]{esc(e.title)}[/] ({esc(e.episode_id)}){esc(tag)}")
        if e.headline:
            h = e.headline
            cap = ("" if h["change_usd"] is None
                   else f", {h['change_usd'] / 1e9:+,.1f} bn USD")
            total = (e.by_market["change_usd"].sum() if e.by_market is not None
                     and e.by_market.height else None)
            beside = "" if total is None else f": {total / 1e9:+,.1f} bn USD over its markets"
            verb = "fell" if h["return"] < 0 else "rose"
            console.print(Text(f"Headline: {h['entity']} {verb} {abs(h['return']):.2%}{cap} from "
                               f"its peak close {h['peak']} to its trough {h['trough']}. Main "
                               f"window {w['window_id']} {w['start']} .. {w['end']}{beside}"))
        for title, df in (("by market", e.by_market), ("by basket", e.by_basket)):
            if df is None or df.height == 0:
                continue
            table = Table(title=Text(f"Market-cap change {title}, window {w['window_id']} "
                                     f"({w['start']} .. {w['end']}), USD bn{tag}"))
            for c in ("group", "n", "start", "change", "price", "shares", "fx", "share"):
                table.add_column(c, justify="right" if c != "group" else "left")
            for r in df.iter_rows(named=True):
                table.add_row(
                    Text(str(r["group_id"])), str(r["n_securities"]),
                    *(f"{(r[k] or 0) / 1e9:,.1f}" for k in
                      ("mcap_usd_start", "change_usd", "price_usd", "shares_usd", "fx_usd")),
                    "" if r["share_of_total"] is None else f"{r['share_of_total']:.1%}",
                )
            console.print(table)
        if e.verdicts is not None:
            table = Table(title=Text(f"Claim verdicts, {e.episode_id}{tag} (details: selloff "
                                     "claims, reports/fact_check.html)"))
            for c in e.verdicts.columns:
                table.add_column(Text(c), overflow="fold")
            for r in e.verdicts.iter_rows():
                table.add_row(*(Text("" if v is None else (f"{v:,.4g}" if isinstance(v, float)
                                                           else str(v))) for v in r))
            console.print(table)
