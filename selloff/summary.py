"""What `selloff run` prints after a refresh: where things are, row counts, the headline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from selloff.episode import Episode, load_episodes
from selloff.warehouse import connect

SYNTHETIC_BANNER = "SYNTHETIC DEMO DATA: every figure below is made up by the demo market generator."


@dataclass
class EpisodeSummary:
    episode_id: str
    title: str
    headline: str | None = None  # e.g. "US_AI_BIG8 fell 8.1 % (-1,950 bn USD) from ..."
    main_window: dict | None = None
    by_market: pl.DataFrame | None = None
    by_basket: pl.DataFrame | None = None


@dataclass
class RunSummary:
    warehouse: Path
    synthetic: bool
    table_rows: dict[str, int] = field(default_factory=dict)
    episodes: list[EpisodeSummary] = field(default_factory=list)
    verdicts: pl.DataFrame | None = None


def _tables(con, schema: str) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY 1",
        [schema],
    ).fetchall()
    return [r[0] for r in rows]


def _episode(con, episode: Episode, top: int) -> EpisodeSummary:
    """One episode's headline fall (entity_moves) and its main window's rollup."""
    from selloff.report.lead import headline_sentence

    eid = episode.episode_id
    out = EpisodeSummary(eid, episode.title)
    if episode.headline is not None:
        move = con.sql(
            "SELECT * FROM analytics.entity_moves WHERE episode_id = ? AND period = 'window' "
            "AND window_id IN (?, ?)",
            params=[eid, f"drawdown:basket:{episode.headline}", f"drawdown:{episode.headline}"],
        ).pl()
        if move.height:
            out.headline = headline_sentence(move.row(0, named=True))
    wid = episode.main.window_id
    main = con.sql("SELECT min(start_date) AS s, max(end_date) AS e FROM analytics.selloff_windows "
                   "WHERE episode_id = ? AND window_id = ?", params=[eid, wid]).fetchall()[0]
    out.main_window = {"window_id": wid, "start": str(main[0]), "end": str(main[1])}
    rollup = con.sql("SELECT * FROM analytics.selloff_rollup WHERE episode_id = ? AND window_id = ?",
                     params=[eid, wid]).pl()
    cols = ["group_id", "n_securities", "mcap_usd_start", "change_usd", "price_usd",
            "shares_usd", "fx_usd", "share_of_total"]
    out.by_market = (rollup.filter(pl.col("group_kind") == "market")
                     .sort("change_usd").select(cols).head(top))
    out.by_basket = (rollup.filter(pl.col("group_kind") == "basket")
                     .sort("change_usd").select(cols).head(top))
    return out


def summarize(warehouse: Path, synthetic: bool, top: int = 8,
              episodes: Sequence[Episode] | None = None) -> RunSummary:
    """Read the published warehouse (read-only) and collect the figures to print, per
    episode of `episodes` (default: the bundled ones) that the warehouse has."""
    out = RunSummary(warehouse=warehouse, synthetic=synthetic)
    eps = tuple(episodes) if episodes is not None else load_episodes()
    with connect(warehouse, read_only=True) as con:
        for schema in ("marts", "analytics"):
            for table in _tables(con, schema):
                n = con.execute(f"SELECT count(*) FROM {schema}.{table}").fetchall()[0][0]
                out.table_rows[f"{schema}.{table}"] = int(n)
        needed = ("analytics.selloff_rollup", "analytics.selloff_windows", "analytics.entity_moves")
        if not all(t in out.table_rows for t in needed):
            return out
        present = {r[0] for r in con.sql(
            "SELECT DISTINCT episode_id FROM analytics.selloff_rollup").fetchall()}
        out.episodes = [_episode(con, e, top) for e in eps if e.episode_id in present]
        if "analytics.claim_verdicts" in out.table_rows:
            out.verdicts = con.sql(
                "SELECT episode_id, claim_id, verdict, stated_text AS stated, "
                "computed_text AS computed, "
                "CAST(window_start AS VARCHAR) || ' .. ' || CAST(window_end AS VARCHAR) AS window "
                "FROM analytics.claim_verdicts ORDER BY episode_id, claim_id"
            ).pl()
    return out


def render(summary: RunSummary, console) -> None:
    """Print the summary with rich (console is a rich.console.Console)."""
    from rich.table import Table

    if summary.synthetic:
        console.print(f"[bold yellow]{SYNTHETIC_BANNER}[/]")
    console.print(f"Warehouse (published, open read-only): [bold]{summary.warehouse}[/]")
    t = Table(title="Rows per table")
    t.add_column("table")
    t.add_column("rows", justify="right")
    for name, n in summary.table_rows.items():
        t.add_row(name, f"{n:,}")
    console.print(t)
    tag = " [synthetic]" if summary.synthetic else ""
    for ep in summary.episodes:
        console.print(f"[bold]{ep.title}[/] ({ep.episode_id}): "
                      + (f"[bold red]{ep.headline}[/]" if ep.headline else "no headline fall"))
        w = ep.main_window or {}
        for title, df in (("by market", ep.by_market), ("by basket", ep.by_basket)):
            if df is None or df.height == 0:
                continue
            table = Table(title=f"Market-cap change {title}, window {w['window_id']} "
                                f"({w['start']} .. {w['end']}), USD bn{tag}")
            for c in ("group", "n", "start", "change", "price", "shares", "fx", "share"):
                table.add_column(c, justify="right" if c != "group" else "left")
            for r in df.iter_rows(named=True):
                table.add_row(
                    str(r["group_id"]), str(r["n_securities"]),
                    *(f"{(r[k] or 0) / 1e9:,.1f}" for k in
                      ("mcap_usd_start", "change_usd", "price_usd", "shares_usd", "fx_usd")),
                    "" if r["share_of_total"] is None else f"{r['share_of_total']:.1%}",
                )
            console.print(table)
    if summary.verdicts is not None:
        table = Table(title="Claim verdicts" + (" [synthetic]" if summary.synthetic else "")
                      + " (details: selloff claims, reports/fact_check.html)")
        for c in summary.verdicts.columns:
            table.add_column(c, overflow="fold")
        for r in summary.verdicts.iter_rows():
            table.add_row(*("" if v is None else (f"{v:,.4g}" if isinstance(v, float) else str(v))
                            for v in r))
        console.print(table)
