"""Claims about prices and valuations beyond one move: members' returns to their peaks,
an index valuation statistic, and sector rotation over another claim's window."""

from __future__ import annotations

import datetime as dt

import polars as pl

from selloff.claims.metrics import (
    Frames,
    MetricContext,
    MetricResult,
    MissingData,
    Param,
    _pct,
    _securities_of,
    _series,
    fmt_value,
    register,
    security_levels_of,
)
from selloff.episode_model import as_date, search_period


@register("basket_return_to_peak",
          reads=("fct_market_cap_daily", "dim_basket_member", "dim_security"),
          required={"start_date": Param.DATE, "search_period": Param.PERIOD},
          optional={"basket_id": Param.BASKET, "members": Param.SECURITIES,
                    "default_members": Param.SECURITIES, "market": Param.AI_OF_MARKET},
          fields=("mean_pct", "max_pct", "median_pct"))
def basket_return_to_peak(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
    """Each member's return from its first close on/after start_date to its peak close up
    to the end of the search period; value = equal-weighted mean (percent), plus max."""
    start = as_date(params["start_date"], "start_date")
    _, end = search_period(params)
    members, mnote = _securities_of(frames, params, end)
    levels = security_levels_of(frames, members).filter(pl.col("trade_date").is_between(start, end))
    rets: dict[str, tuple[float, dt.date, dt.date]] = {}
    by_id = levels.partition_by("entity_id", as_dict=True)
    for sid in members:  # in the members' order: ties keep the same winner every run
        rows = by_id.get((sid,))
        s = _series(rows, "trade_date", "level") if rows is not None else None
        if s is None or len(s) < 2:
            continue
        peak_i = max(range(len(s)), key=lambda i: s.values[i])
        rets[sid] = (_pct(s.values[0], s.values[peak_i]), s.dates[0], s.dates[peak_i])
    if not rets:
        raise MissingData(f"fct_market_cap_daily has no closes for {mnote} from {start}")
    vals = sorted(r[0] for r in rets.values())
    mean = sum(vals) / len(vals)
    median = vals[len(vals) // 2] if len(vals) % 2 else (vals[len(vals) // 2 - 1] + vals[len(vals) // 2]) / 2
    best = max(rets.items(), key=lambda kv: kv[1][0])
    firsts = sorted({r[1] for r in rets.values()})
    top = sorted(rets.items(), key=lambda kv: -kv[1][0])[:3]
    start_txt = (f"from {start}" if firsts[0] == start or firsts[0] <= start + dt.timedelta(days=7)
                 else f"from the first available close {firsts[0]} (data start later than {start})")
    note = (f"{len(rets)} of {len(members)} members ({mnote}); {start_txt} to each member's peak "
            f"close up to {end}; mean {fmt_value(mean, 'pct')}, median {fmt_value(median, 'pct')}, "
            f"max {best[0]} {fmt_value(best[1][0], 'pct')} (peak {best[1][2]}); top: "
            + ", ".join(f"{k} {fmt_value(v[0], 'pct')}" for k, v in top))
    late = sorted(k for k, v in rets.items() if v[1] > firsts[0] + dt.timedelta(days=7))
    if late:
        note += f"; measured from a later first close: {', '.join(f'{k} ({rets[k][1]})' for k in late)}"
    lacking = [m for m in members if m not in rets]
    if lacking:
        note += f"; no prices for {', '.join(lacking)}"
    return MetricResult(mean, firsts[0], end, tuple(sorted(rets)), note,
                        values={"mean_pct": mean, "max_pct": best[1][0], "median_pct": median})


@register("index_valuation_stat", reads=("fct_index_valuation_daily",),
          required={"index_id": Param.VALUE, "search_period": Param.PERIOD},
          optional={"column": Param.VALUE, "stat": Param.VALUE, "at_date": Param.DATE,
                    "context_indexes": Param.VALUE})
def index_valuation_stat(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
    """A statistic (max, min, mean, last or at_date) of an index valuation column (pe_ttm by
    default) over the search period; context_indexes are quoted in the note for contrast."""
    start, end = search_period(params)
    iid, col = str(params["index_id"]), str(params.get("column", "pe_ttm"))
    stat = str(params.get("stat", "max"))
    iv = frames.table("fct_index_valuation_daily", ["index_id", "trade_date", col])

    def window(index_id: str) -> pl.DataFrame:
        return (iv.filter((pl.col("index_id") == index_id) & pl.col("trade_date").is_between(start, end))
                .drop_nulls(col).sort("trade_date"))

    rows = window(iid)
    if rows.height == 0:
        raise MissingData(f"fct_index_valuation_daily has no {col} for {iid} in {start}..{end}")
    s = rows[col]
    lo, hi, mean = float(s.min()), float(s.max()), float(s.mean())
    d0, d1 = rows["trade_date"][0], rows["trade_date"][-1]
    if stat == "max":
        r = rows.sort(col, descending=True).row(0, named=True)
        value, how = float(r[col]), f"max on {r['trade_date']}"
    elif stat == "min":
        r = rows.sort(col).row(0, named=True)
        value, how = float(r[col]), f"min on {r['trade_date']}"
    elif stat == "mean":
        value, how = mean, f"mean of {rows.height} observations"
    elif stat == "last":
        value, how = float(s[-1]), f"last, on {d1}"
    elif stat == "at_date":
        at = as_date(params.get("at_date"), "at_date")
        near = rows.with_columns((pl.col("trade_date") - pl.lit(at)).abs().alias("_gap")).sort("_gap").row(0, named=True)
        value, how = float(near[col]), f"closest observation to {at}: {near['trade_date']}"
    else:
        raise ValueError(f"stat must be max, min, mean, last or at_date, not {stat!r}")
    note = (f"{iid} {col} in {start}..{end} ({rows.height} observations {d0}..{d1}): {how}; "
            f"range {lo:.2f}..{hi:.2f}, mean {mean:.2f}")
    for other in params.get("context_indexes") or []:
        o = window(str(other))
        if o.height:
            note += f"; for contrast {other} {col} mean {float(o[col].mean()):.2f} (range {float(o[col].min()):.2f}..{float(o[col].max()):.2f})"
        else:
            note += f"; no {col} for {other}"
    return MetricResult(value, d0, d1, (iid,), note)



@register("sector_rotation", reads=("selloff_windows", "rotation"),
          required={"market": Param.VALUE, "window_from": Param.VALUE,
                    "groups_from": Param.VALUE, "groups_to": Param.VALUE},
          optional={"investor_type": Param.VALUE},
          fields=("return_spread_pp", "from_flow_usd", "to_flow_usd"))
def sector_rotation(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
    """'High to low' rotation over another claim's window, looked up in `analytics.rotation`
    (cap-weighted returns and net flows by sector group) for the episode window that claim
    found. value = return of groups_from minus the weakest return among groups_to (pp;
    < 0 means AI/tech fell more than every target group); the net flow of groups_from and
    the combined net flow of groups_to are separate fields (None when flows are missing)."""
    market, src = str(params["market"]), str(params["window_from"])
    span = ctx.span_of(src)
    # The groups are the episode's (its claim's params): the engine names no sector.
    g_from, g_to = list(params["groups_from"]), list(params["groups_to"])
    inv = str(params.get("investor_type", "main_force"))
    windows = frames.table("selloff_windows", ["window_id", "market", "kind", "start_date",
                                               "end_date"])
    # The episode window the source claim found: same market, inside its calendar span.
    found = windows.filter((pl.col("market") == market) & (pl.col("start_date") >= span[0])
                           & (pl.col("end_date") <= span[1])).sort(
        pl.col("kind") == "named", "start_date")
    if found.height == 0:
        raise MissingData(f"selloff_windows has no {market} window inside {span[0]}..{span[1]} "
                          f"(the window of {src})")
    window_id = found["window_id"][0]
    rot = frames.table("rotation", ["window_id", "market", "dimension", "bucket",
                                    "investor_type", "cap_weighted_return", "net_flow_usd"])
    rows = rot.filter((pl.col("window_id") == window_id) & (pl.col("market") == market)
                      & (pl.col("dimension") == "sector_group"))
    returns = {b: r * 100 for b, r in rows.filter(pl.col("investor_type").is_null())
               .select("bucket", "cap_weighted_return").iter_rows() if r is not None}
    if not returns:
        raise MissingData(f"rotation has no {market} sector-group returns for window {window_id}")
    counts = dict(rows.filter(pl.col("investor_type").is_null())
                  .select("bucket", "n_securities").iter_rows()) if "n_securities" in rows.columns else {}
    missing: dict[str, str] = {}
    lacking_groups = [g for g in g_from + g_to if g not in returns]
    ret_txt = ", ".join(f"{g} {fmt_value(v, 'pct')}" + (f" ({counts[g]})" if g in counts else "")
                        for g, v in sorted(returns.items()))
    spread = None
    if lacking_groups:
        missing["return_spread_pp"] = (f"rotation: no {market} securities in sector_group "
                                       f"{', '.join(lacking_groups)} for window {window_id}")
    else:
        src_ret = sum(returns[g] for g in g_from) / len(g_from)
        # "Fell more than banks, coal and consumer" must hold against each of them, so the
        # comparison is with the weakest target group.
        weakest = min(g_to, key=lambda g: returns[g])
        spread = src_ret - returns[weakest]
    window = found.row(0, named=True)
    note = (f"window of {src}: {span[0]}..{span[1]} = {window_id} "
            f"({window['start_date']}..{window['end_date']}); {market} cap-weighted returns by "
            f"sector_group (analytics.rotation): {ret_txt}")
    if spread is not None:
        note += (f"; {'+'.join(g_from)} minus the weakest of {', '.join(g_to)} ({weakest}) = "
                 f"{fmt_value(spread, 'pp')}")
    flows = {b: f for b, f in rows.filter(pl.col("investor_type") == inv)
             .select("bucket", "net_flow_usd").iter_rows() if f is not None} or None
    from_flow = to_flow = None
    if flows is not None:
        note += "; net " + inv + " flows (USD): " + ", ".join(
            f"{g} {fmt_value(v, 'USD')}" for g, v in sorted(flows.items()))
    if flows is None:
        why = (f"no {market} {inv} flows in the rotation table for window {window_id} "
               f"(fct_fund_flows_daily has no flow_scope=security, investor_type={inv} rows "
               f"for {market} securities in it)")
        missing["from_flow_usd"] = missing["to_flow_usd"] = why
    else:
        if all(g in flows for g in g_from):
            from_flow = sum(flows[g] for g in g_from)
        else:
            missing["from_flow_usd"] = f"{inv} flows for sector_group {', '.join(g for g in g_from if g not in flows)}"
        # The article names destinations together ("into banks, coal, consumer"): their
        # combined net flow is judged; each group's own figure is in the note.
        if all(g in flows for g in g_to):
            to_flow = sum(flows[g] for g in g_to)
            outs = [g for g in g_to if flows[g] < 0]
            if outs:
                note += f"; of these, net outflow from {', '.join(outs)}"
        else:
            missing["to_flow_usd"] = f"{inv} flows for sector_group {', '.join(g for g in g_to if g not in flows)}"

    values = {"return_spread_pp": spread, "from_flow_usd": from_flow, "to_flow_usd": to_flow}
    # Close to close, as the source claim's own window reads (t0 the close before it).
    source = ctx.results[src]
    return MetricResult(spread, source.window_start, source.window_end,
                        tuple(sorted(set(g_from + g_to))), note, values=values,
                        missing=missing, span=span)
