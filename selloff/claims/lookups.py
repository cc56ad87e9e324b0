"""Claims about a move of a security, basket or index: lookups over `analytics.entity_moves`.

{security, basket, index} x {worst day, worst calendar week, named window}: each metric
reads the episode's rows of `entity_moves` (selloff.analytics.moves), so the worst week a
claim finds is the week `selloff_windows` detects, computed by the same engine. The
tables hold returns as fractions; this module is the one place they become the percent
that claims state (`_pct`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import polars as pl

from selloff.analytics.baskets import members_on
from selloff.analytics.moves import worst_moves
from selloff.claims.metrics import (
    Frames,
    MetricContext,
    MetricResult,
    MissingData,
    Param,
    fmt_value,
    register,
)
from selloff.episode_model import search_period

MOVES = "entity_moves"
RANKS = {"return_pct": "return", "mcap_change_usd": "change_usd",
         "mcap_change_local": "change_local", "change": "change_usd", "change_pct": "return"}


def _pct(fraction: float | None) -> float | None:
    return None if fraction is None else fraction * 100.0


def _moves(frames: Frames, kind: str, entity_id: str) -> pl.DataFrame:
    moves = frames.table(MOVES, ["entity_kind", "entity_id", "period", "return"])
    rows = moves.filter((pl.col("entity_kind") == kind) & (pl.col("entity_id") == entity_id))
    if rows.height == 0:
        source = {"security": "fct_market_cap_daily", "index": "fct_index_levels_daily",
                  "basket": "dim_basket_member / the episode's baskets"}[kind]
        raise MissingData(f"{MOVES} has no moves of {kind} {entity_id} ({source} has no data "
                          "for it in the episode's periods)")
    return rows


def _span(row: Mapping[str, Any]) -> tuple[dt.date, dt.date]:
    """The calendar span another claim reuses with `window_from`: the day, the week
    (Monday..Sunday) or the named window."""
    if row["period"] == "week":
        monday = row["start_date"] - dt.timedelta(days=row["start_date"].weekday())
        return monday, monday + dt.timedelta(days=6)
    return row["start_date"], row["end_date"]


def _worst(frames: Frames, params: Mapping[str, Any], kind: str, entity_id: str, period: str,
           rank_by: str) -> tuple[Mapping[str, Any], pl.DataFrame]:
    start, end = search_period(params)
    rows = _moves(frames, kind, entity_id)
    found = worst_moves(rows, period, RANKS[rank_by], start, end)
    if found.height == 0:
        raise MissingData(f"{MOVES}: no {period} of {kind} {entity_id} with {RANKS[rank_by]} in "
                          f"{start}..{end}")
    inside = rows.filter((pl.col("period") == period) & (pl.col("start_date") >= start)
                         & (pl.col("end_date") <= end))
    return found.row(0, named=True), inside


def _result(row: Mapping[str, Any], entities: tuple[str, ...], what: str,
            unit_local: str = "local") -> MetricResult:
    values = {"return_pct": _pct(row["return"]), "mcap_change_usd": row["change_usd"],
              "mcap_change_local": row["change_local"], "change": row["change_usd"],
              "change_pct": _pct(row["return"])}
    missing = {k: f"{MOVES} has no {k} for {', '.join(entities)} ({what})"
               for k, v in values.items() if v is None}
    basis = f"; closes: {row['basis']}" if row.get("basis") else ""
    members = f"; {row['n_members']} members with a cap at t1" if row.get("n_members", 1) != 1 else ""
    note = (f"{what}: close {row['t0_date']} -> close {row['t1_date']}, return "
            f"{fmt_value(values['return_pct'], 'pct')}, market cap "
            f"{fmt_value(row['change_usd'], 'USD')}"
            + (f" / {fmt_value(row['change_local'], unit_local)}" if row["change_local"] is not None
               else "") + basis + members)
    return MetricResult(values["return_pct"], row["t0_date"], row["t1_date"], entities, note,
                        values=values, missing=missing, span=_span(row))


def _others(inside: pl.DataFrame, column: str, unit: str) -> str:
    vals = inside.sort("t1_date")
    conv = (lambda v: _pct(v)) if column == "return" else (lambda v: v)
    return "; ".join(f"{r['t0_date']:%m-%d}->{r['t1_date']:%m-%d} {fmt_value(conv(r[column]), unit)}"
                     for r in vals.iter_rows(named=True))


def _worst_metric(kind: str, id_param: str, period: str, default_rank: str, headline: str):
    def metric(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
        entity = str(params[id_param])
        rank_by = str(params.get("rank_by", default_rank))
        if rank_by not in RANKS:
            raise ValueError(f"rank_by must be one of {', '.join(RANKS)}, not {rank_by!r}")
        row, inside = _worst(frames, params, kind, entity, period, rank_by)
        start, end = search_period(params)
        label = "calendar week" if period == "week" else "day"
        res = _result(row, (entity,), f"worst {label} by {rank_by} in {start}..{end}")
        thin = _thin_basket(frames, entity, row) if kind == "basket" else None
        if thin:
            return MetricResult(None, res.window_start, res.window_end, res.entities,
                                res.note, missing_dataset=thin, span=res.span)
        unit = "pct" if RANKS[rank_by] == "return" else "USD"
        note = f"{res.note}; {label}s: {_others(inside, RANKS[rank_by], unit)}"
        value = res.get(headline if headline != "rank" else rank_by)
        return MetricResult(value, res.window_start, res.window_end, res.entities, note,
                            values=res.values, missing=res.missing, span=res.span)
    metric.__doc__ = (f"Worst {'calendar week' if period == 'week' else 'day'} of a {kind} in "
                      f"the search period (by {default_rank} unless rank_by), from {MOVES}.")
    return metric


def _thin_basket(frames: Frames, basket_id: str, row: Mapping[str, Any]) -> str | None:
    """Why a basket move does not measure the whole basket: members valid on t1 without a
    market cap there (a sum over fewer members understates the move); None when complete."""
    members = frames.optional("dim_basket_member")
    if members is None or row.get("n_members") is None:
        return None
    on = row["t1_date"]
    n = len(members_on(members, basket_id, on))
    if row["n_members"] >= n:
        return None
    return (f"fct_market_cap_daily: on {on} only {row['n_members']} of its {n} members of "
            f"{basket_id} have a market cap, so the basket's move is not measured")


def _window_row(frames: Frames, params: Mapping[str, Any], ctx: MetricContext, kind: str,
                entity: str) -> tuple[Mapping[str, Any], str]:
    if params.get("window"):
        wid = str(params["window"])
        rows = _moves(frames, kind, entity)
        hit = rows.filter((pl.col("period") == "window") & (pl.col("window_id") == wid))
        if hit.height == 0:
            raise MissingData(f"{MOVES} has no move of {kind} {entity} over window {wid}")
        return hit.row(0, named=True), f"window {wid}"
    src = str(params.get("window_from") or "")
    if not src:
        raise ValueError("window (a window id of the episode) or window_from (a claim id) is required")
    first, last = ctx.span_of(src)
    rows = _moves(frames, kind, entity)
    if first == last:
        hit = rows.filter((pl.col("period") == "day") & (pl.col("t1_date") == first))
    else:
        hit = rows.filter((pl.col("period") == "week") & (pl.col("start_date") >= first)
                          & (pl.col("end_date") <= last))
    if hit.height == 0:
        raise MissingData(f"{MOVES} has no move of {kind} {entity} over {first}..{last} "
                          f"(the window of {src})")
    return hit.row(0, named=True), f"same window as {src}: {first}..{last}"


def _window_metric(kind: str, id_param: str, headline: str):
    def metric(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
        entity = str(params[id_param])
        row, what = _window_row(frames, params, ctx, kind, entity)
        res = _result(row, (entity,), what)
        thin = _thin_basket(frames, entity, row) if kind == "basket" else None
        if thin:
            return MetricResult(None, res.window_start, res.window_end, res.entities,
                                res.note, missing_dataset=thin, span=res.span)
        return MetricResult(res.get(headline), res.window_start, res.window_end, res.entities,
                            res.note, values=res.values, missing=res.missing, span=res.span)
    metric.__doc__ = (f"Move of a {kind} over a named window of the episode (window) or "
                      f"another claim's window (window_from), from {MOVES}.")
    return metric


_SECURITY_FIELDS = ("return_pct", "mcap_change_usd", "mcap_change_local")
_BASKET_FIELDS = ("change", "change_pct")

_WORST = {"search_period": Param.PERIOD}
_OVER = {"window": Param.VALUE, "window_from": Param.VALUE}
_BASKET_READS = (MOVES, "dim_basket_member")
# These read entity_moves whole, no daily fact: naming a security or basket reads no rows.
_SECURITY, _INDEX, _BASKET = ({"security_id": Param.SECURITY}, {"index_id": Param.VALUE},
                              {"basket_id": Param.BASKET})

register("security_worst_day", reads=(MOVES,), required={**_SECURITY, **_WORST},
         optional={"rank_by": Param.VALUE},
         fields=_SECURITY_FIELDS)(_worst_metric("security", "security_id", "day", "return_pct", "rank"))
register("security_worst_week_return", reads=(MOVES,), required={**_SECURITY, **_WORST},
         fields=("return_pct",))(_worst_metric("security", "security_id", "week", "return_pct",
                                                "return_pct"))
register("security_window_return", reads=(MOVES,), required=_SECURITY, optional=_OVER,
         fields=_SECURITY_FIELDS)(_window_metric("security", "security_id", "return_pct"))
register("index_worst_day_return", reads=(MOVES,), required={**_INDEX, **_WORST},
         fields=("return_pct",))(_worst_metric("index", "index_id", "day", "return_pct", "return_pct"))
register("index_worst_week_return", reads=(MOVES,), required={**_INDEX, **_WORST},
         fields=("return_pct",))(_worst_metric("index", "index_id", "week", "return_pct", "return_pct"))
register("index_window_return", reads=(MOVES,), required=_INDEX, optional=_OVER,
         fields=("return_pct",))(_window_metric("index", "index_id", "return_pct"))
register("basket_worst_day_mcap_change", reads=_BASKET_READS, required={**_BASKET, **_WORST},
         fields=_BASKET_FIELDS)(_worst_metric("basket", "basket_id", "day", "change_pct", "change"))
register("basket_worst_week_mcap_change", reads=_BASKET_READS, required={**_BASKET, **_WORST},
         fields=_BASKET_FIELDS)(_worst_metric("basket", "basket_id", "week", "change_pct", "change"))
register("basket_window_mcap_change", reads=_BASKET_READS, required=_BASKET, optional=_OVER,
         fields=_BASKET_FIELDS)(_window_metric("basket", "basket_id", "change"))
