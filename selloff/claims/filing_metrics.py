"""Claims about company filings: a quarter's figure, its year-on-year change, a basket's
sum over fiscal calendars aligned to calendar quarters, and the return on a results day."""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections.abc import Mapping
from typing import Any

import polars as pl

from selloff.claims.metrics import (
    Frames,
    MetricContext,
    MetricResult,
    MissingData,
    Param,
    _pct,
    _price_series,
    basket_members,
    fmt_value,
    register,
)
from selloff.episode_model import as_date, search_period

_QUARTER_OF_SECURITY = {"security_id": Param.SECURITY, "column": Param.VALUE,
                        "calendar_year": Param.VALUE, "calendar_quarter": Param.VALUE}


def _quarter_rows(frames: Frames, security_id: str, column: str) -> pl.DataFrame:
    fq = frames.table("fct_fundamentals_quarterly",
                      ["security_id", "calendar_year", "calendar_quarter", column])
    rows = fq.filter(pl.col("security_id") == security_id)
    if rows.height == 0:
        raise MissingData(f"fundamentals (fct_fundamentals_quarterly has no filings for {security_id})")
    return rows


def _pick_quarter(rows: pl.DataFrame, column: str, year: int, quarter: int) -> dict | None:
    sel = rows.filter((pl.col("calendar_year") == year) & (pl.col("calendar_quarter") == quarter)
                      & pl.col(column).is_not_null())
    if sel.height == 0:
        return None
    if "period_end" in sel.columns:
        sel = sel.sort("period_end")
    return sel.row(-1, named=True)


def _fiscal_label(row: Mapping[str, Any]) -> str:
    if row.get("fiscal_year") is not None and row.get("fiscal_period"):
        return f"FY{row['fiscal_year']} {row['fiscal_period']}" + (
            f", ended {row['period_end']}" if row.get("period_end") else "")
    return ""


@register("fundamentals_quarter_value", reads=("fct_fundamentals_quarterly",),
          required=_QUARTER_OF_SECURITY)
def fundamentals_quarter_value(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
    """A discrete-quarter filing figure (revenue, net_income, capex...) of one company for a
    calendar quarter."""
    sid, col = str(params["security_id"]), str(params["column"])
    y, q = int(params["calendar_year"]), int(params["calendar_quarter"])
    r = _pick_quarter(_quarter_rows(frames, sid, col), col, y, q)
    if r is None:
        raise MissingData(f"fundamentals ({col} of {sid} for calendar {y} Q{q} not in fct_fundamentals_quarterly)")
    note = f"{sid} {col} calendar {y} Q{q} ({_fiscal_label(r)}, filed {r.get('filed_date')})"
    return MetricResult(float(r[col]), r.get("period_start"), r.get("period_end"), (sid,), note)


@register("fundamentals_quarter_yoy", reads=("fct_fundamentals_quarterly",),
          required=_QUARTER_OF_SECURITY)
def fundamentals_quarter_yoy(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
    """Year-on-year change (percent) of a discrete-quarter filing figure for a calendar quarter."""
    sid, col = str(params["security_id"]), str(params["column"])
    y, q = int(params["calendar_year"]), int(params["calendar_quarter"])
    rows = _quarter_rows(frames, sid, col)
    cur, prev = _pick_quarter(rows, col, y, q), _pick_quarter(rows, col, y - 1, q)
    if cur is None or prev is None:
        lack = [f"{yy} Q{q}" for yy, r in ((y, cur), (y - 1, prev)) if r is None]
        raise MissingData(f"fundamentals ({col} of {sid} for calendar {', '.join(lack)} not in fct_fundamentals_quarterly)")
    if not prev[col]:
        raise MissingData(f"fundamentals ({col} of {sid} is zero in {y - 1} Q{q}: no YoY base)")
    yoy = _pct(float(prev[col]), float(cur[col]))
    note = (f"{sid} {col} {y} Q{q} {fmt_value(cur[col], cur.get('currency') or '')} vs "
            f"{y - 1} Q{q} {fmt_value(prev[col], prev.get('currency') or '')}")
    return MetricResult(yoy, cur.get("period_start"), cur.get("period_end"), (sid,), note)


@register("security_event_day_return",
          reads=("fct_market_cap_daily", "fct_fundamentals_quarterly"),
          required={"security_id": Param.SECURITY},
          optional={"event_date": Param.DATE, "calendar_year": Param.YEAR,
                    "calendar_quarter": Param.VALUE, "event_offset_days": Param.VALUE,
                    "list_below_pct": Param.VALUE})
def security_event_day_return(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
    """Close-to-close return (percent) on an event day: `event_date`, or the session
    `event_offset_days` after the filed_date of a calendar quarter's filing."""
    sid = str(params["security_id"])
    series, col = _price_series(frames, sid)
    offset = int(params.get("event_offset_days", 0))
    context = ""
    if params.get("list_below_pct") is not None:
        start, end = search_period(params)
        cut = float(params["list_below_pct"])
        big = [(series.dates[i], _pct(series.values[i - 1], series.values[i])) for i in range(1, len(series))
               if start <= series.dates[i] <= end and _pct(series.values[i - 1], series.values[i]) <= cut]
        context = (f"for reference, {sid} days in {start}..{end} with a return <= {cut:g} %: "
                   + (", ".join(f"{d} {fmt_value(r, 'pct')}" for d, r in big) or "none"))
    try:
        if params.get("event_date"):
            event, how = as_date(params["event_date"], "event_date"), "event_date set in the registry"
        else:
            if params.get("calendar_year") is None or params.get("calendar_quarter") is None:
                raise ValueError("security_event_day_return needs event_date or calendar_year+calendar_quarter")
            y, q = int(params["calendar_year"]), int(params["calendar_quarter"])
            rows = frames.table("fct_fundamentals_quarterly",
                                ["security_id", "calendar_year", "calendar_quarter", "filed_date"])
            sel = rows.filter((pl.col("security_id") == sid) & (pl.col("calendar_year") == y)
                              & (pl.col("calendar_quarter") == q)).drop_nulls("filed_date")
            if sel.height == 0:
                raise MissingData(f"fundamentals (no {y} Q{q} filing of {sid} in fct_fundamentals_quarterly, "
                                  f"so the results day is unknown)")
            event, how = sel["filed_date"].min(), f"filed_date of the {y} Q{q} filing"
        i = bisect_left(series.dates, event) + offset
        if i <= 0 or i >= len(series):
            raise MissingData(f"fct_market_cap_daily has no {sid} closes around {event}")
    except MissingData as exc:
        return MetricResult(None, entities=(sid,), note=context, missing_dataset=exc.dataset)
    r = _pct(series.values[i - 1], series.values[i])
    note = (f"event {event} ({how}); session +{offset}: {series.dates[i]} (close {series.dates[i - 1]} "
            f"-> {series.dates[i]}, {col})" + (f"; {context}" if context else ""))
    return MetricResult(r, series.dates[i - 1], series.dates[i], (sid,), note,
                        span=(series.dates[i], series.dates[i]))


@register("basket_quarter_sum", reads=("fct_fundamentals_quarterly", "dim_basket_member"),
          required={"basket_id": Param.BASKET, "column": Param.VALUE,
                    "calendar_year": Param.YEAR, "calendar_quarter": Param.VALUE},
          optional={"members": Param.SECURITIES, "default_members": Param.SECURITIES,
                    "absolute": Param.VALUE})
def basket_quarter_sum(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
    """Sum over a basket of a discrete-quarter filing figure for one calendar quarter (so
    fiscal calendars line up); every member must have the figure."""
    col = str(params["column"])
    y, q = int(params["calendar_year"]), int(params["calendar_quarter"])
    qend = dt.date(y, 3 * q, 1)
    members, mnote = basket_members(frames, params, qend)
    fq = frames.table("fct_fundamentals_quarterly", ["security_id", "calendar_year", "calendar_quarter", col])
    parts, lacking = [], []
    for sid in members:
        r = _pick_quarter(fq.filter(pl.col("security_id") == sid), col, y, q)
        if r is None:
            lacking.append(sid)
            continue
        v = float(r[col])
        # Cash-flow capex is reported as a positive payment by some filers and as a negative
        # flow by others; the claim is about the amount spent.
        if params.get("absolute", True):
            v = abs(v)
        parts.append((sid, v, _fiscal_label(r), r.get("period_end")))
    total = sum(p[1] for p in parts)
    detail = "; ".join(f"{sid} {fmt_value(v, 'USD')} ({lab})" for sid, v, lab, _ in parts)
    ends = [p[3] for p in parts if p[3] is not None]
    note = f"{col} calendar {y} Q{q}, {mnote}: {detail}"
    if lacking:
        return MetricResult(None, min(ends) if ends else None, max(ends) if ends else None, tuple(members),
                            note + f"; partial sum {fmt_value(total, 'USD')}",
                            missing_dataset=f"fundamentals ({col} for calendar {y} Q{q} of {', '.join(lacking)})")
    return MetricResult(total, min(ends) if ends else None, max(ends) if ends else None,
                        tuple(members), note)
