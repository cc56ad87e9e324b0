"""What the report leads with: each episode's sell-off, and the episodes side by side.

The headline of an episode is the peak-to-trough fall of its `headline` entity: the
entity_moves `window` row whose window_id is `drawdown:basket:<id>` (a basket) or
`drawdown:<id>` (an index). Beside it: the main window's total change (selloff_rollup,
group_kind 'total') and its dates (selloff_windows). The comparison adds the headline
entity's worst day and week (selloff_windows worst_day/worst_week rows, their figures from
the entity_moves day/week row ending the same day), the cap change by market and the
channel split of the main window.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from markupsafe import Markup

from selloff.report.html import NoData, fmt_bn, fmt_dates, fmt_pct, no_data
from selloff.report.sections import EpisodeData

CHANNELS = (("price_usd", "price"), ("shares_usd", "shares"), ("fx_usd", "FX"),
            ("rerating_usd", "re-rating"), ("earnings_usd", "earnings"),
            ("no_earnings_basis_usd", "no earnings basis"))


def _pct_abs(v: float) -> str:
    return f"{abs(100 * v):.1f} %"


def _bn_text(v: float | None) -> str:
    return "–" if v is None else f"{v / 1e9:+,.0f} bn USD"


def headline_move(d: EpisodeData) -> dict:
    """The entity_moves row of the headline entity's drawdown; NoData without one."""
    hid = d.episode.headline
    if hid is None:
        raise NoData("no headline: the episode names no `headline` basket or index")
    ids = (f"drawdown:basket:{hid}", f"drawdown:{hid}")
    rows = d.rows("entity_moves").filter((pl.col("period") == "window")
                                         & pl.col("window_id").is_in(ids))
    if rows.height == 0:
        raise NoData(f"no data: entity_moves has no drawdown row for the headline {hid} "
                     f"({' or '.join(ids)})")
    return rows.row(0, named=True)


def main_total(d: EpisodeData) -> dict:
    return d.main_rows("selloff_rollup", group_kind="total").row(0, named=True)


def headline_sentence(move: dict) -> str:
    """E.g. 'US_AI_BIG8 fell 8.1 % (-1,950 bn USD) from its peak on 2025-10-29 to its
    trough on 2025-11-20'."""
    r = move["return"]
    if r is None:
        return f"{move['entity_id']}: no return from {move['t0_date']} to {move['t1_date']}"
    verb = "fell" if r < 0 else "rose"
    amount = f" ({_bn_text(move['change_usd'])})" if move.get("change_usd") is not None else ""
    return (f"{move['entity_id']} {verb} {_pct_abs(r)}{amount} from its peak on "
            f"{move['t0_date']} to its trough on {move['t1_date']}")


def lead(d: EpisodeData) -> list[Markup]:
    """The episode's opening lines: the headline fall, then the main window beside it."""
    out: list[Markup] = []
    try:
        out.append(Markup('<p class="lead">{}.</p>').format(headline_sentence(headline_move(d))))
    except NoData as e:
        out.append(no_data(str(e)))
    window = d.window
    dates = f" ({fmt_dates(*window)})" if window else ""
    try:
        t = main_total(d)
        out.append(Markup('<p class="beside">Main window <b>{}</b>{}: market cap {} across {} '
                          "securities (price {}, shares {}, FX {}).</p>").format(
            d.window_id, dates, _bn_text(t["change_usd"]), t["n_securities"],
            _bn_text(t["price_usd"]), _bn_text(t["shares_usd"]), _bn_text(t["fx_usd"])))
    except NoData as e:
        out.append(no_data(str(e)))
    return out


def top_line(d: EpisodeData) -> Markup:
    """The episode's line at the top of the page: its title and its headline fall."""
    try:
        text = headline_sentence(headline_move(d)) + "."
    except NoData as e:
        text = str(e)
    return Markup('<p class="lead"><small>{}</small>{}</p>').format(d.episode.title, text)


def worst(d: EpisodeData, kind: str) -> dict | None:
    """The headline entity's worst day or week (kind 'day' or 'week'): the selloff_windows
    row and the entity_moves row of that period ending on its end date, merged."""
    hid = d.episode.headline
    if hid is None:
        return None
    w = d.rows("selloff_windows", kind=f"worst_{kind}", entity_id=hid)
    if w.height == 0:
        return None
    end = w["end_date"][0]
    m = d.rows("entity_moves", period=kind, entity_id=hid).filter(pl.col("t1_date") == end)
    if m.height == 0:
        return {"start_date": w["start_date"][0], "end_date": end, "return": None,
                "change_usd": None}
    return m.row(0, named=True)


def _cell(move: dict | None) -> str:
    if move is None:
        return "no data"
    text = f"{fmt_dates(move['start_date'], move['end_date'])}: {fmt_pct(move['return'], 1)}"
    return text + (f", {fmt_bn(move['change_usd'])} USD" if move.get("change_usd") is not None
                   else "")


def _try(fn, *args) -> object:
    try:
        return fn(*args)
    except NoData:
        return None


def comparison(episodes: Sequence[EpisodeData]) -> list[Markup]:
    """The episodes side by side: one column an episode, one row a figure."""
    rows: list[tuple[str, list[str]]] = []
    moves = [_try(headline_move, d) for d in episodes]
    totals = [_try(main_total, d) for d in episodes]
    rows.append(("headline entity", [d.episode.headline or "–" for d in episodes]))
    rows.append(("peak to trough", [
        "no data" if m is None else
        f"{m['t0_date']} → {m['t1_date']}: {fmt_pct(m['return'], 1)}"
        + (f", {fmt_bn(m['change_usd'])} USD" if m.get("change_usd") is not None else "")
        for m in moves]))
    rows.append(("worst day", [_cell(worst(d, "day")) for d in episodes]))
    rows.append(("worst week", [_cell(worst(d, "week")) for d in episodes]))
    rows.append(("main window", [
        f"{d.window_id} ({fmt_dates(*d.window)})" if d.window else d.window_id
        for d in episodes]))
    rows.append(("cap change, all markets", [
        "no data" if t is None else f"{fmt_bn(t['change_usd'])} USD" for t in totals]))
    markets: list[str] = []
    by_market = []
    for d in episodes:
        g = d.rows("selloff_rollup", window_id=d.window_id, group_kind="market")
        by_market.append(dict(zip(g["group_id"], g["change_usd"], strict=True)))
        markets += [m for m in g["group_id"].sort().to_list() if m not in markets]
    for m in markets:
        rows.append((f"  cap change, {m}", [
            f"{fmt_bn(bm[m])} USD" if m in bm else "–" for bm in by_market]))
    for col, label in CHANNELS:
        rows.append((f"  {label}", [
            "no data" if t is None else f"{fmt_bn(t[col])} USD" for t in totals]))
    head = Markup("").join(Markup("<th>{}</th>").format(d.episode.title) for d in episodes)
    body = Markup("").join(
        Markup('<tr><th>{}</th>{}</tr>').format(label, Markup("").join(
            Markup('<td class="num">{}</td>').format(v) for v in values))
        for label, values in rows)
    return [Markup('<p class="small">Worst day and week: of the headline entity in the '
                   "episode's detection period. Cap change and channels: the main window "
                   "(selloff_rollup); price + shares + FX = change; re-rating + earnings + no "
                   "earnings basis = price + shares.</p>"),
            Markup("<table><thead><tr><th></th>{}</tr></thead><tbody>{}</tbody></table>")
            .format(head, body)]
