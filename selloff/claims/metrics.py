"""Named, reusable metrics over the marts and analytics frames (polars).

Every metric has the signature `fn(frames: Frames, params: dict, ctx: MetricContext)
-> MetricResult` and is registered by name in `METRICS` with the parameters it needs, so
the claim registry can be validated before anything runs, and a new claim is a YAML entry
rather than code.

Conventions (../shared/seed/CLAIMS.md):
- a week is a calendar week (Monday..Sunday): from the last close before its Monday to its
  last close; a day is close to close (the previous row of the same entity); a month is a
  calendar month;
- returns are given in percent (-7.16 means -7.16 %), amounts in full currency units;
- a metric that lacks data raises `MissingData` naming the dataset (or returns a result
  with `missing_dataset` set when it still has something useful to say, e.g. a proxy);
  `value` is only filled when it measures the claim's own quantity, never a partial sum
  or a proxy (those go into the note).
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

# --------------------------------------------------------------------------------------
# Results, errors, frames access
# --------------------------------------------------------------------------------------


class MissingData(Exception):
    """The data a metric needs is not in the warehouse; `dataset` says which."""

    def __init__(self, dataset: str):
        super().__init__(dataset)
        self.dataset = dataset


@dataclass(frozen=True)
class MetricResult:
    """What a metric found.

    `value` is the headline figure in the claim's unit; `values` holds further named
    figures a multi-part claim picks with `field:`; `missing` names, per field, the data
    that would be needed when that field is None. `span` is the calendar span of the window
    (e.g. Monday..Sunday of a week) so another claim can reuse it (`window_from`).
    """

    value: float | None
    window_start: dt.date | None = None
    window_end: dt.date | None = None
    entities: tuple[str, ...] = ()
    note: str = ""
    missing_dataset: str | None = None
    values: Mapping[str, float | None] = field(default_factory=dict)
    missing: Mapping[str, str] = field(default_factory=dict)
    span: tuple[dt.date, dt.date] | None = None
    external: bool = False

    def get(self, name: str | None) -> float | None:
        if name is None or name == "value":
            return self.value
        return self.values.get(name)


class Frames:
    """Read access to the mart/analytics frames by table name; absent tables raise
    `MissingData` so a claim becomes insufficient_data instead of crashing."""

    def __init__(self, frames: Mapping[str, pl.DataFrame | None] | None):
        self._frames = {k: v for k, v in (frames or {}).items() if v is not None}

    def has(self, name: str) -> bool:
        return name in self._frames

    def optional(self, name: str) -> pl.DataFrame | None:
        return self._frames.get(name)

    def table(self, name: str, columns: Iterable[str] = ()) -> pl.DataFrame:
        df = self._frames.get(name)
        if df is None:
            raise MissingData(f"{name} (table not in the warehouse)")
        lacking = [c for c in columns if c not in df.columns]
        if lacking:
            raise MissingData(f"{name} lacks column(s) {', '.join(lacking)}")
        return df


@dataclass
class MetricContext:
    """Results of claims already evaluated, so `window_from: C08` can reuse C08's window."""

    results: dict[str, MetricResult] = field(default_factory=dict)

    def span_of(self, claim_id: str) -> tuple[dt.date, dt.date]:
        res = self.results.get(claim_id)
        if res is None:
            raise MissingData(f"the window of {claim_id} (it was not evaluated)")
        if res.span is None:
            why = f": {res.missing_dataset}" if res.missing_dataset else ""
            raise MissingData(f"the window of {claim_id} ({claim_id} found no window{why})")
        return res.span


MetricFn = Callable[[Frames, dict[str, Any], MetricContext], MetricResult]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: MetricFn
    required: tuple[str, ...]
    optional: tuple[str, ...]
    fields: tuple[str, ...]
    description: str

    @property
    def params(self) -> tuple[str, ...]:
        return self.required + self.optional


METRICS: dict[str, MetricSpec] = {}

# Parameters the engine (not the metric) understands; allowed on every metric.
COMMON_PARAMS = ("search_period",)


def register(name: str, *, required: Sequence[str] = (), optional: Sequence[str] = (),
             fields: Sequence[str] = ()) -> Callable[[MetricFn], MetricFn]:
    """Add a metric to `METRICS` under `name`, declaring its params and extra fields."""

    def deco(fn: MetricFn) -> MetricFn:
        if name in METRICS:
            raise ValueError(f"metric {name!r} registered twice")
        METRICS[name] = MetricSpec(name, fn, tuple(required), tuple(optional), tuple(fields),
                                   (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return deco


# --------------------------------------------------------------------------------------
# Formatting (shared with verdicts and the report)
# --------------------------------------------------------------------------------------


def fmt_value(value: float | None, unit: str | None) -> str:
    """Human figure in the claim's unit: '-7.08 %', '-812.35 bn USD', '182.37x'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "pct":
        return f"{value:+.2f} %"
    if unit == "pp":
        return f"{value:+.2f} pp"
    if unit == "x":
        return f"{value:.2f}x"
    a = abs(value)
    if a >= 1e9:
        body = f"{value / 1e9:,.2f} bn"
    elif a >= 1e6:
        body = f"{value / 1e6:,.2f} m"
    else:
        body = f"{value:,.0f}"
    return f"{body} {unit}" if unit else body


def _d(x: dt.date | None) -> str:
    return x.isoformat() if x else "?"


# --------------------------------------------------------------------------------------
# Parameter helpers
# --------------------------------------------------------------------------------------


def _as_date(value: Any, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"{what}: {value!r} is not a date (YYYY-MM-DD)") from exc


def search_period(params: Mapping[str, Any]) -> tuple[dt.date, dt.date]:
    sp = params.get("search_period")
    if not isinstance(sp, Mapping) or "start" not in sp or "end" not in sp:
        raise ValueError("search_period must be a mapping with start and end dates")
    start, end = _as_date(sp["start"], "search_period.start"), _as_date(sp["end"], "search_period.end")
    if end < start:
        raise ValueError(f"search_period ends ({end}) before it starts ({start})")
    return start, end


def month_bounds(month: Any) -> tuple[dt.date, dt.date]:
    """'2025-11' -> (2025-11-01, 2025-11-30)."""
    text = str(month)
    try:
        year, mon = (int(p) for p in text.split("-")[:2])
        first = dt.date(year, mon, 1)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"month: {month!r} is not YYYY-MM") from exc
    nxt = dt.date(year + (mon == 12), mon % 12 + 1, 1)
    return first, nxt - dt.timedelta(days=1)


def monday_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


# --------------------------------------------------------------------------------------
# Series helpers: a sorted (date, value) list per entity
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    dates: list[dt.date]
    values: list[float]

    def __len__(self) -> int:
        return len(self.dates)

    def anchors(self, span: tuple[dt.date, dt.date]) -> tuple[int, int] | None:
        """Indexes of (last close before span start, last close inside the span)."""
        i1 = bisect_right(self.dates, span[1]) - 1
        if i1 < 0 or self.dates[i1] < span[0]:
            return None
        i0 = bisect_left(self.dates, span[0]) - 1
        if i0 < 0:
            return None
        return i0, i1


def _series(df: pl.DataFrame, date_col: str, value_col: str) -> Series:
    clean = (df.select(date_col, value_col).drop_nulls()
             .filter(pl.col(value_col).is_not_nan()).unique(date_col, keep="last").sort(date_col))
    return Series(clean[date_col].to_list(), [float(v) for v in clean[value_col].to_list()])


CHAINED = "close chained on adj_close returns where both days have one"


def _priced(rows: pl.DataFrame) -> tuple[pl.DataFrame, str]:
    """One security's rows with the price column its returns use, and that column's name
    (the basis said in the notes): `adj_close` when every row has one, `close` when none
    does, else CHAINED, whose ratio between any two days compounds the daily returns

        r_t = adj_t / adj_{t-1} if both are known, else close_t / close_{t-1}

    so a window whose ends both have adjusted closes (and the days between too) returns
    exactly adj_1 / adj_0 - 1, and a raw-close stretch before that is not thrown away."""
    if "adj_close" not in rows.columns or rows["adj_close"].null_count() == rows.height:
        return rows, "close"
    if rows["adj_close"].null_count() == 0:
        return rows, "adj_close"
    rows = rows.filter(pl.col("close").is_not_null()).sort("trade_date")
    adj, close = pl.col("adj_close"), pl.col("close")
    step = (pl.when(adj.is_not_null() & adj.shift(1).is_not_null())
            .then(adj / adj.shift(1)).otherwise(close / close.shift(1)).fill_null(1.0))
    return rows.with_columns((close.first() * step.cum_prod()).alias(CHAINED)), CHAINED


def _security_rows(frames: Frames, security_id: str, columns: Sequence[str]) -> pl.DataFrame:
    mc = frames.table("fct_market_cap_daily", ["security_id", "trade_date", *columns])
    rows = mc.filter(pl.col("security_id") == security_id)
    if rows.height == 0:
        raise MissingData(f"fct_market_cap_daily has no rows for {security_id}")
    return rows


def _price_series(frames: Frames, security_id: str) -> tuple[Series, str]:
    rows, col = _priced(_security_rows(frames, security_id, ["close"]))
    return _series(rows, "trade_date", col), col


def _pct(a: float, b: float) -> float:
    return (b / a - 1.0) * 100.0


# --------------------------------------------------------------------------------------
# Baskets and securities
# --------------------------------------------------------------------------------------


def basket_members(frames: Frames, params: Mapping[str, Any],
                   on: dt.date | None = None) -> tuple[list[str], str]:
    """Members of params['basket_id'] valid on `on` (valid_from/valid_to, nulls open).

    `members:` in params overrides the basket; `default_members:` is used (and said) when
    the warehouse has no such basket.
    """
    if params.get("members"):
        members = [str(m) for m in params["members"]]
        return members, f"members set in the registry: {', '.join(members)}"
    basket = params.get("basket_id")
    if not basket:
        raise ValueError("basket_id (or members) is required")
    bm = frames.optional("dim_basket_member")
    rows = pl.DataFrame()
    if bm is not None and {"basket_id", "security_id"} <= set(bm.columns):
        rows = bm.filter(pl.col("basket_id") == basket)
        if on is not None and rows.height:
            if "valid_from" in rows.columns:
                rows = rows.filter(pl.col("valid_from").is_null() | (pl.col("valid_from") <= on))
            if "valid_to" in rows.columns:
                rows = rows.filter(pl.col("valid_to").is_null() | (pl.col("valid_to") >= on))
    if rows.height:
        members = sorted(rows["security_id"].unique().to_list())
        return members, f"basket {basket}: {', '.join(members)}"
    if params.get("default_members"):
        members = [str(m) for m in params["default_members"]]
        return members, (f"basket {basket} is not in dim_basket_member; using the registry's "
                         f"default members {', '.join(members)}")
    raise MissingData(f"dim_basket_member has no basket {basket}")


def _securities_of(frames: Frames, params: Mapping[str, Any], on: dt.date | None) -> tuple[list[str], str]:
    """A basket, or the is_ai securities of a market (dim_security)."""
    if params.get("basket_id") or params.get("members"):
        return basket_members(frames, params, on)
    market = params.get("market")
    if not market:
        raise ValueError("basket_id, members or market is required")
    ds = frames.table("dim_security", ["security_id", "market", "is_ai"])
    sel = ds.filter((pl.col("market") == market) & pl.col("is_ai").fill_null(False))
    if sel.height == 0:
        raise MissingData(f"dim_security has no is_ai securities in market {market}")
    members = sorted(sel["security_id"].to_list())
    return members, f"is_ai securities of {market} ({len(members)})"


# --------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------


def _flows(frames: Frames) -> pl.DataFrame:
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


@register("board_flow_worst_day", required=("board_id", "investor_type", "search_period"),
          optional=("fallback_basket", "currency", "flow_scope"),
          fields=("net_buy_local", "net_buy_usd"))
def board_flow_worst_day(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
    """Worst day of a concept board's net flow for an investor type (e.g. main_force), in
    local currency by default; falls back to the sum of the board basket's security flows."""
    start, end = search_period(params)
    board, inv = str(params["board_id"]), str(params["investor_type"])
    scope = str(params.get("flow_scope", "board"))
    currency = str(params.get("currency", "local"))
    ff = _flows(frames)
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
        expected = _expected_sessions(frames, entities[0].split(":", 1)[0], first, last)
        if expected is not None:
            gaps = [d for d in expected if d not in set(dates)]
            if gaps:
                return None, note, (f"fct_fund_flows_daily {label}: {len(gaps)} of {len(expected)} "
                                    f"trading days missing ({', '.join(map(str, gaps[:5]))})")
            note += f" (all {len(expected)} trading days of the month)"
    return total, note, None


@register("flow_month_total", required=("investor_type", "month"),
          optional=("flow_scope", "entity_id", "basket_id", "members", "default_members",
                    "proxy_entity_id", "proxy_flow_scope", "proxy_policy"))
def flow_month_total(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
    """Net flow of an investor type over a calendar month in USD (each flow at its own
    day's rate): a market (entity_id) or the sum over a basket's securities (basket_id).

    With `proxy_entity_id`, when the basket's security flows are absent the market-level
    flow is reported as a proxy; `proxy_policy: insufficient_data` (default) keeps the
    verdict insufficient because the scope differs, `use` judges on the proxy."""
    first, last = month_bounds(params["month"])
    inv = str(params["investor_type"])
    ff = _flows(frames)
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


@register("basket_return_to_peak", required=("start_date", "search_period"),
          optional=("basket_id", "members", "default_members", "market"),
          fields=("mean_pct", "max_pct", "median_pct"))
def basket_return_to_peak(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
    """Each member's return from its first close on/after start_date to its peak close up
    to the end of the search period; value = equal-weighted mean (percent), plus max."""
    start = _as_date(params["start_date"], "start_date")
    _, end = search_period(params)
    members, mnote = _securities_of(frames, params, end)
    mc = frames.table("fct_market_cap_daily", ["security_id", "trade_date", "close"])
    mc = mc.filter(pl.col("security_id").is_in(members) & pl.col("trade_date").is_between(start, end))
    rets: dict[str, tuple[float, dt.date, dt.date]] = {}
    for sid in members:
        rows = mc.filter(pl.col("security_id") == sid)
        if rows.height < 2:
            continue
        priced, col = _priced(rows)
        s = _series(priced, "trade_date", col)
        if len(s) < 2:
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


@register("index_valuation_stat", required=("index_id", "search_period"),
          optional=("column", "stat", "at_date", "context_indexes"))
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
        at = _as_date(params.get("at_date"), "at_date")
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


@register("fundamentals_quarter_value", required=("security_id", "column", "calendar_year", "calendar_quarter"))
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


@register("fundamentals_quarter_yoy", required=("security_id", "column", "calendar_year", "calendar_quarter"))
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
          required=("security_id",),
          optional=("event_date", "calendar_year", "calendar_quarter", "event_offset_days",
                    "list_below_pct"))
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
            event, how = _as_date(params["event_date"], "event_date"), "event_date set in the registry"
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


@register("basket_quarter_sum", required=("basket_id", "column", "calendar_year", "calendar_quarter"),
          optional=("members", "default_members", "absolute"))
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


@register("sector_rotation", required=("market", "window_from"),
          optional=("groups_from", "groups_to", "investor_type"),
          fields=("return_spread_pp", "from_flow_usd", "to_flow_usd"))
def sector_rotation(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
    """'High to low' rotation over another claim's window: cap-weighted returns and net
    flows by dim_security.sector_group. value = return of groups_from minus the weakest
    return among groups_to (pp; < 0 means AI/tech fell more than every target group); the
    net flow of groups_from and the combined net flow of groups_to are separate fields
    (None when flows are missing)."""
    market, src = str(params["market"]), str(params["window_from"])
    span = ctx.span_of(src)
    g_from = list(params.get("groups_from") or ["ai_tech"])
    g_to = list(params.get("groups_to") or ["banks", "coal", "consumer"])
    inv = str(params.get("investor_type", "main_force"))
    ds = frames.table("dim_security", ["security_id", "market", "sector_group"])
    groups = ds.filter(pl.col("market") == market).select("security_id", "sector_group")
    if groups.height == 0:
        raise MissingData(f"dim_security has no securities of market {market}")
    mc = frames.table("fct_market_cap_daily", ["security_id", "trade_date", "close"])
    # A month of history before the window is ample for its opening close (China's
    # longest closure, Golden Week, is about nine days) and keeps the scan small.
    mc = mc.join(groups, on="security_id", how="inner").filter(
        pl.col("trade_date").is_between(span[0] - dt.timedelta(days=31), span[1]))
    weight_col = "market_cap_local" if "market_cap_local" in mc.columns else None
    recs = []
    for sid, rows in mc.group_by("security_id"):
        priced, col = _priced(rows)
        s = _series(priced, "trade_date", col)
        idx = s.anchors(span)
        if idx is None:
            continue
        i0, i1 = idx
        w = None
        if weight_col:
            wrow = rows.filter(pl.col("trade_date") == s.dates[i0])[weight_col]
            w = float(wrow[0]) if wrow.len() and wrow[0] is not None else None
        recs.append((sid[0], rows["sector_group"][0], _pct(s.values[i0], s.values[i1]), w,
                     s.dates[i0], s.dates[i1]))
    if not recs:
        raise MissingData(f"fct_market_cap_daily has no {market} closes around {span[0]}..{span[1]}")
    by_group: dict[str, list] = {}
    for r in recs:
        by_group.setdefault(r[1], []).append(r)

    def group_return(rs: list) -> tuple[float, str]:
        if all(r[3] for r in rs):
            tot = sum(r[3] for r in rs)
            return sum(r[2] * r[3] for r in rs) / tot, "cap-weighted"
        return sum(r[2] for r in rs) / len(rs), "equal-weighted"

    gret = {g: group_return(rs) for g, rs in by_group.items()}
    t0, t1 = min(r[4] for r in recs), max(r[5] for r in recs)
    missing: dict[str, str] = {}
    lacking_groups = [g for g in g_from + g_to if g not in gret]
    ret_txt = ", ".join(f"{g} {fmt_value(gret[g][0], 'pct')} ({len(by_group[g])}, {gret[g][1]})"
                        for g in sorted(gret))
    spread = None
    if lacking_groups:
        missing["return_spread_pp"] = f"dim_security/fct_market_cap_daily: no {market} securities in sector_group {', '.join(lacking_groups)}"
    else:
        src_ret = sum(gret[g][0] for g in g_from) / len(g_from)
        # "Fell more than banks, coal and consumer" must hold against each of them, so the
        # comparison is with the weakest target group.
        weakest = min(g_to, key=lambda g: gret[g][0])
        spread = src_ret - gret[weakest][0]
    note = (f"window of {src}: {span[0]}..{span[1]} (close {t0} -> close {t1}); {market} returns by "
            f"sector_group: {ret_txt}")
    if spread is not None:
        note += (f"; {'+'.join(g_from)} minus the weakest of {', '.join(g_to)} ({weakest}) = "
                 f"{fmt_value(spread, 'pp')}")
    # Flows: security-level flows of the investor type inside the window, by sector group.
    from_flow = to_flow = None
    ff = frames.optional("fct_fund_flows_daily")
    flows = None
    if ff is not None and {"flow_scope", "entity_id", "trade_date", "investor_type"} <= set(ff.columns):
        f = _flows(frames).filter((pl.col("flow_scope") == "security") & (pl.col("investor_type") == inv)
                                  & (pl.col("trade_date") > t0) & (pl.col("trade_date") <= t1))
        f = f.join(groups, left_on="entity_id", right_on="security_id", how="inner")
        if f.height:
            flows = {g: float(v) for g, v in f.group_by("sector_group").agg(pl.col("_usd").sum())
                     .iter_rows()}
    if flows is not None:
        note += "; net " + inv + " flows (USD): " + ", ".join(
            f"{g} {fmt_value(v, 'USD')}" for g, v in sorted(flows.items()))
    if flows is None:
        why = (f"no {market} {inv} flows in this snapshot (fct_fund_flows_daily has no "
               f"flow_scope=security, investor_type={inv} rows for {market} securities in the window)")
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
    return MetricResult(spread, t0, t1, tuple(sorted(set(g_from + g_to))), note, values=values,
                        missing=missing, span=span)


@register("unavailable", required=("needs",), optional=("dataset", "column"))
def unavailable(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
    """A figure the warehouse has no dataset for (guidance, segment data...): always
    insufficient_data, naming what would be needed. If a `dataset` table with `column`
    shows up, the note says so, so the claim can be wired to a real metric."""
    needs = str(params["needs"])
    ds = params.get("dataset")
    note = ""
    if ds and frames.has(str(ds)):
        df = frames.table(str(ds))
        if params.get("column") in df.columns:
            note = f"{ds}.{params['column']} now exists: give this claim a metric that reads it"
    return MetricResult(None, note=note, missing_dataset=needs)


@register("external_study", optional=("source",))
def external_study(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
    """A claim citing an outside study or forecast: market data cannot check it."""
    src = params.get("source") or "an outside study"
    return MetricResult(None, note=f"cites {src}", external=True)
