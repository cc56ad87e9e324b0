"""Claims about fund flows: a board's worst day, a month's total (each day at its own FX
rate), with market-level proxies named as proxies."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from selloff.claims.metrics import (
    Frames,
    MetricContext,
    MetricResult,
    MissingData,
    Param,
    basket_members,
    fmt_value,
    month_bounds,
    register,
)
from selloff.episode_model import search_period
from selloff.markets import market_of


def flows_usd(frames: Frames) -> pl.DataFrame:
    """fct_fund_flows_daily with `_usd` (each day at its own rate), `_local`, `_period`."""
    ff = frames.table("fct_fund_flows_daily", ["flow_scope", "entity_id", "trade_date", "investor_type"])
    if "net_buy_usd" in ff.columns:
        usd = pl.col("net_buy_usd")
        if {"net_buy_local", "usd_per_unit"} <= set(ff.columns):
            usd = usd.fill_null(pl.col("net_buy_local") * pl.col("usd_per_unit"))
    elif {"net_buy_local", "usd_per_unit"} <= set(ff.columns):
        # Each flow converts at its own day's rate, never at an average of the period.
        usd = pl.col("net_buy_local") * pl.col("usd_per_unit")
    else:
        raise MissingData("fct_fund_flows_daily lacks net_buy_usd (and net_buy_local x usd_per_unit)")
    local = pl.col("net_buy_local") if "net_buy_local" in ff.columns else pl.lit(None, pl.Float64)
    period = pl.col("period") if "period" in ff.columns else pl.lit("day")
    return ff.with_columns(usd.cast(pl.Float64).alias("_usd"), local.cast(pl.Float64).alias("_local"),
                           period.alias("_period"))


@register("board_flow_worst_day", reads=("fct_fund_flows_daily", "dim_basket_member"),
          required={"board_id": Param.VALUE, "investor_type": Param.VALUE,
                    "search_period": Param.PERIOD},
          optional={"fallback_basket": Param.BASKET, "currency": Param.VALUE,
                    "flow_scope": Param.VALUE},
          fields=("net_buy_local", "net_buy_usd"))
def board_flow_worst_day(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
    """Worst day of a concept board's net flow for an investor type (e.g. main_force), in
    local currency by default; falls back to the sum of the board basket's security flows."""
    start, end = search_period(params)
    board, inv = str(params["board_id"]), str(params["investor_type"])
    scope = str(params.get("flow_scope", "board"))
    currency = str(params.get("currency", "local"))
    ff = flows_usd(frames)
    in_period = ff.filter(pl.col("trade_date").is_between(start, end) & (pl.col("investor_type") == inv)
                          & (pl.col("_period") == "day"))
    rows = in_period.filter((pl.col("flow_scope") == scope) & (pl.col("entity_id") == board))
    how = f"fct_fund_flows_daily flow_scope={scope}, entity_id={board}, investor_type={inv}"
    entities: tuple[str, ...] = (board,)
    no_basket = ""
    if rows.height == 0 and params.get("fallback_basket"):
        try:
            members, mnote = basket_members(frames, {"basket_id": params["fallback_basket"]}, end)
        except MissingData as exc:
            members, mnote, no_basket = [], "", f"; {exc.dataset}"
        sec = in_period.filter((pl.col("flow_scope") == "security") & pl.col("entity_id").is_in(members))
        if sec.height:
            rows = sec.group_by("trade_date").agg(pl.col("_local").sum(), pl.col("_usd").sum(),
                                                  pl.len().alias("n"))
            how = (f"no board rows for {board}: fallback = sum of {inv} security flows of "
                   f"{mnote} (members with flows per day: up to {rows['n'].max()} of {len(members)})")
            entities = tuple(members)
    if rows.height == 0:
        extra = (f" and no {inv} security flows for the members of {params['fallback_basket']}"
                 if params.get("fallback_basket") else "")
        raise MissingData(f"no {inv} flows for {board} in this snapshot (fct_fund_flows_daily has "
                          f"no flow_scope={scope} rows for {board}, investor_type {inv}, in "
                          f"{start}..{end}{extra}{no_basket})")
    key = "_usd" if currency == "USD" else "_local"
    if rows[key].null_count() == rows.height:
        raise MissingData(f"fct_fund_flows_daily: no {'USD' if key == '_usd' else 'local'} amounts for {board}")
    worst = rows.drop_nulls(key).sort(key).row(0, named=True)
    note = f"worst day {worst['trade_date']} of {rows.height} days in {start}..{end}; {how}"
    values = {"net_buy_local": worst["_local"], "net_buy_usd": worst["_usd"]}
    return MetricResult(worst[key], worst["trade_date"], worst["trade_date"], entities, note,
                        values=values, span=(worst["trade_date"], worst["trade_date"]))


def _expected_sessions(frames: Frames, market: str, first: dt.date, last: dt.date) -> list[dt.date] | None:
    cal = frames.optional("dim_trading_calendar")
    if cal is None or not {"market", "calendar_date", "is_trading_day"} <= set(cal.columns):
        return None
    sel = cal.filter((pl.col("market") == market) & pl.col("calendar_date").is_between(first, last)
                     & pl.col("is_trading_day"))
    return sorted(sel["calendar_date"].to_list()) or None


def _month_sum(frames: Frames, ff: pl.DataFrame, scope: str, entities: Sequence[str], inv: str,
               first: dt.date, last: dt.date) -> tuple[float | None, str, str | None]:
    """Sum of USD flows in the month: (value, note, missing reason)."""
    rows = ff.filter((pl.col("flow_scope") == scope) & pl.col("entity_id").is_in(list(entities))
                     & (pl.col("investor_type") == inv) & pl.col("trade_date").is_between(first, last))
    label = f"flow_scope={scope}, {', '.join(entities)}, investor_type={inv}"
    if rows.height == 0:
        return None, "", f"fct_fund_flows_daily has no {label} rows in {first:%Y-%m}"
    no_usd = rows.filter(pl.col("_usd").is_null())
    if no_usd.height:
        ds = ", ".join(sorted({str(d) for d in no_usd["trade_date"].to_list()}))
        return None, "", f"USD amounts (FX rate) for {label} on {ds}"
    total = float(rows["_usd"].sum())
    periods = set(rows["_period"].to_list())
    dates = sorted(set(rows["trade_date"].to_list()))
    if periods == {"week"}:
        note = (f"{label}: weekly statistics, {len(dates)} weeks ending "
                f"{', '.join(f'{d:%m-%d}' for d in dates)} counted for {first:%Y-%m} (each converted "
                f"at its week-end date's rate)")
        if dates and dates[0] - dt.timedelta(days=6) < first:
            note += f"; the week ending {dates[0]} starts in the previous month"
        return total, note, None
    note = f"{label}: {len(dates)} days, each converted at its own day's rate"
    if len(entities) == 1:
        expected = _expected_sessions(frames, market_of(entities[0]), first, last)
        if expected is not None:
            gaps = [d for d in expected if d not in set(dates)]
            if gaps:
                return None, note, (f"fct_fund_flows_daily {label}: {len(gaps)} of {len(expected)} "
                                    f"trading days missing ({', '.join(map(str, gaps[:5]))})")
            note += f" (all {len(expected)} trading days of the month)"
    return total, note, None


@register("flow_month_total",
          reads=("fct_fund_flows_daily", "dim_basket_member", "dim_trading_calendar"),
          required={"investor_type": Param.VALUE, "month": Param.MONTH},
          optional={"flow_scope": Param.VALUE, "entity_id": Param.VALUE,
                    "basket_id": Param.BASKET, "members": Param.SECURITIES,
                    "default_members": Param.SECURITIES, "proxy_entity_id": Param.VALUE,
                    "proxy_flow_scope": Param.VALUE, "proxy_policy": Param.VALUE})
def flow_month_total(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
    """Net flow of an investor type over a calendar month in USD (each flow at its own
    day's rate): a market (entity_id) or the sum over a basket's securities (basket_id).

    With `proxy_entity_id`, when the basket's security flows are absent the market-level
    flow is reported as a proxy; `proxy_policy: insufficient_data` (default) keeps the
    verdict insufficient because the scope differs, `use` judges on the proxy."""
    first, last = month_bounds(params["month"])
    inv = str(params["investor_type"])
    ff = flows_usd(frames)
    if params.get("basket_id") or params.get("members"):
        members, mnote = basket_members(frames, params, last)
        scope, entities = str(params.get("flow_scope", "security")), members
    else:
        if not params.get("entity_id"):
            raise ValueError("flow_month_total needs entity_id or basket_id")
        scope, entities, mnote = str(params.get("flow_scope", "market")), [str(params["entity_id"])], ""
    total, note, why = _month_sum(frames, ff, scope, entities, inv, first, last)
    window = (first, last)
    if total is not None and why is None:
        return MetricResult(total, first, last, tuple(entities),
                            "; ".join(x for x in (note, mnote) if x), span=window)
    proxy = params.get("proxy_entity_id")
    if not proxy:
        return MetricResult(None, first, last, tuple(entities),
                            "; ".join(x for x in (note, mnote) if x), missing_dataset=why, span=window)
    pscope = str(params.get("proxy_flow_scope", "market"))
    ptotal, pnote, pwhy = _month_sum(frames, ff, pscope, [str(proxy)], inv, first, last)
    policy = str(params.get("proxy_policy", "insufficient_data"))
    scope_txt = f"the claim's scope ({mnote or ', '.join(entities)})"
    if ptotal is None:
        return MetricResult(None, first, last, tuple(entities),
                            f"{why}; proxy {proxy} unavailable too: {pwhy}", missing_dataset=why, span=window)
    ents = (*entities, str(proxy))
    if policy == "use":
        return MetricResult(ptotal, first, last, ents,
                            f"PROXY: {why}, so {scope_txt} is measured by the market-wide {inv} "
                            f"flow: {pnote}", span=window)
    return MetricResult(
        None, first, last, ents,
        f"proxy, not used for the verdict: market-wide {inv} net flow {fmt_value(ptotal, 'USD')} "
        f"({pnote}); it covers the whole market, not {scope_txt}",
        missing_dataset=(f"{inv} flows per security for {scope_txt}: fct_fund_flows_daily has only "
                         f"market-level {inv} flows ({proxy}), so the claim's scope cannot be matched"),
        values={"proxy_value": ptotal}, span=window)
