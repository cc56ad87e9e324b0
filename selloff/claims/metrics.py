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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import polars as pl

from selloff.analytics.baskets import members_on
from selloff.analytics.moves import MIXED, RAW, security_levels

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


class UndeclaredRead(LookupError):
    """A metric read a table it did not declare (`register(reads=...)`): a bug in the
    metric, since the claims asset reads only the declared tables."""


class Frames:
    """Read access to the mart/analytics frames by table name; absent tables raise
    `MissingData` so a claim becomes insufficient_data instead of crashing. `scoped`
    narrows it to one metric's declared reads."""

    def __init__(self, frames: Mapping[str, pl.DataFrame | None] | None,
                 allowed: Iterable[str] | None = None):
        self._frames = {k: v for k, v in (frames or {}).items() if v is not None}
        self._allowed = None if allowed is None else frozenset(allowed)

    def scoped(self, spec: MetricSpec) -> Frames:
        return Frames(self._frames, spec.tables)

    def _check(self, name: str) -> None:
        if self._allowed is not None and name not in self._allowed:
            raise UndeclaredRead(f"reads {name}, which it does not declare (reads: "
                                 f"{', '.join(sorted(self._allowed)) or 'none'})")

    def columns_of(self, name: str) -> list[str]:
        """A table's column names (no rows), for metrics that only say a table exists."""
        df = self._frames.get(name)
        return [] if df is None else list(df.columns)

    def optional(self, name: str) -> pl.DataFrame | None:
        self._check(name)
        return self._frames.get(name)

    def table(self, name: str, columns: Iterable[str] = ()) -> pl.DataFrame:
        self._check(name)
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


class Param(StrEnum):
    """What a metric parameter names; the claims asset reads the data a claim needs from
    these declarations (`selloff.claims.reads`), so every parameter must have one. The
    securities named are read from the daily facts (DAILY) of the metrics that read one."""

    SECURITY = "security"          # one security id
    SECURITIES = "securities"      # a list of security ids
    BASKET = "basket"              # a basket id: its members
    AI_OF_MARKET = "ai_of_market"  # a market code: its is_ai securities (dim_security)
    DATE = "date"                  # a date: daily rows are read from it on
    YEAR = "year"                  # a calendar year: from its 1 January
    MONTH = "month"                # YYYY-MM: from its first day
    PERIOD = "period"              # {start, end}: from its start
    VALUE = "value"                # anything else: an index, board, window or claim id,
    # a column, a threshold, a label; what it names is in a table read whole


# The tables a metric may read, by schema: the claims asset's deps and reads.
MARTS = ("dim_security", "dim_basket_member", "dim_trading_calendar",
         "fct_fundamentals_quarterly", "fct_index_valuation_daily", "fct_market_cap_daily",
         "fct_fund_flows_daily")
ANALYTICS = ("entity_moves", "selloff_windows", "rotation")
# Of those, the daily facts: read only for the securities and days the claims name.
DAILY = ("fct_market_cap_daily", "fct_fund_flows_daily")


@dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: MetricFn
    required: tuple[str, ...]
    optional: tuple[str, ...]
    fields: tuple[str, ...]
    description: str
    tables: tuple[str, ...] = ()
    kinds: Mapping[str, Param] = field(default_factory=dict)

    @property
    def params(self) -> tuple[str, ...]:
        return self.required + self.optional

    def kind(self, param: str) -> Param:
        """What `param` names; an undeclared parameter is an error, never ignored."""
        try:
            return self.kinds[param]
        except KeyError:
            raise KeyError(f"metric {self.name}: parameter {param!r} is not declared "
                           f"(declared: {', '.join(sorted(self.kinds))})") from None


METRICS: dict[str, MetricSpec] = {}

# Parameters the engine (not the metric) understands; allowed on every metric.
COMMON_PARAMS: dict[str, Param] = {"search_period": Param.PERIOD}


def register(name: str, *, reads: Sequence[str], required: Mapping[str, Param] | None = None,
             optional: Mapping[str, Param] | None = None,
             fields: Sequence[str] = ()) -> Callable[[MetricFn], MetricFn]:
    """Add a metric to `METRICS` under `name`, declaring the tables it reads, what each of
    its params names (required and optional) and its extra fields."""
    required, optional = dict(required or {}), dict(optional or {})
    unknown = [t for t in reads if t not in MARTS + ANALYTICS]
    if unknown:
        raise ValueError(f"metric {name!r} reads {unknown}, not a table claims may read "
                         f"({', '.join(MARTS + ANALYTICS)})")
    for param, kind in {**required, **optional}.items():
        if not isinstance(kind, Param):
            raise ValueError(f"metric {name!r}: parameter {param!r} must say what it names "
                             f"(a Param, one of {', '.join(p.name for p in Param)}), not {kind!r}")

    def deco(fn: MetricFn) -> MetricFn:
        if name in METRICS:
            raise ValueError(f"metric {name!r} registered twice")
        METRICS[name] = MetricSpec(name, fn, tuple(required), tuple(optional), tuple(fields),
                                   (fn.__doc__ or "").strip().split("\n")[0], tuple(reads),
                                   {**COMMON_PARAMS, **required, **optional})
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


# --------------------------------------------------------------------------------------
# Parameter helpers
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Series helpers: a sorted (date, value) list per entity
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    dates: list[dt.date]
    values: list[float]

    def __len__(self) -> int:
        return len(self.dates)


def _series(df: pl.DataFrame, date_col: str, value_col: str) -> Series:
    clean = (df.select(date_col, value_col).drop_nulls()
             .filter(pl.col(value_col).is_not_nan()).unique(date_col, keep="last").sort(date_col))
    return Series(clean[date_col].to_list(), [float(v) for v in clean[value_col].to_list()])


def security_levels_of(frames: Frames, security_ids: Sequence[str]) -> pl.DataFrame:
    """The engine's level series (`selloff.analytics.moves.security_levels`: the close
    chained on adjusted returns where both days have one) of these securities, so a claim's
    return is the return entity_moves would give."""
    mc = frames.table("fct_market_cap_daily", ["security_id", "trade_date", "close"])
    return security_levels(mc.filter(pl.col("security_id").is_in(list(security_ids))))


def price_basis(levels: pl.DataFrame) -> str:
    """The closes a level series' steps used: 'adj_close', 'close', or both (MIXED)."""
    used = set(levels["step_basis"].drop_nulls().to_list())
    return used.pop() if len(used) == 1 else (MIXED if used else RAW)


def _price_series(frames: Frames, security_id: str) -> tuple[Series, str]:
    levels = security_levels_of(frames, [security_id])
    if levels.height == 0:
        raise MissingData(f"fct_market_cap_daily has no rows for {security_id}")
    return _series(levels, "trade_date", "level"), price_basis(levels)


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
    members = []
    if bm is not None and {"basket_id", "security_id"} <= set(bm.columns):
        members = members_on(bm, str(basket), on)
    if members:
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
# Metrics without data
# --------------------------------------------------------------------------------------


@register("unavailable", reads=(), required={"needs": Param.VALUE},
          optional={"dataset": Param.VALUE, "column": Param.VALUE})
def unavailable(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
    """A figure the warehouse has no dataset for (guidance, segment data...): always
    insufficient_data, naming what would be needed. If a `dataset` table with `column`
    shows up, the note says so, so the claim can be wired to a real metric."""
    needs = str(params["needs"])
    ds = params.get("dataset")
    note = ""
    if ds and params.get("column") in frames.columns_of(str(ds)):
        note = f"{ds}.{params['column']} now exists: give this claim a metric that reads it"
    return MetricResult(None, note=note, missing_dataset=needs)


@register("external_study", reads=(), optional={"source": Param.VALUE})
def external_study(frames: Frames, params: dict, ctx: MetricContext) -> MetricResult:
    """A claim citing an outside study or forecast: market data cannot check it."""
    src = params.get("source") or "an outside study"
    return MetricResult(None, note=f"cites {src}", external=True)
