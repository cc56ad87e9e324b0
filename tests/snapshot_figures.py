"""Figures recomputed straight from the real snapshot files with plain polars.

Independent of the pipeline code (nothing from `selloff` is imported), so a test can compare
what the warehouse says with what the raw files give. Conventions:

* Returns are in percent: ``(close_t1 / close_t0 - 1) * 100``.
* An index's window return runs from its last close strictly before the window start to its
  last close on or before the window end (so t0 is the previous session of that index).
* A security's daily return uses ``adj_close`` when both days have one, else ``close``;
  longer returns chain those daily returns.
* Market cap = raw ``close`` x shares outstanding, the latest share count with
  ``as_of_date`` on or before the day (``shares_outstanding.csv`` is a sparse change log:
  one row per security and date the count moved). No count on or before the day = no cap.
* USD caps use ``fx_rates_daily.csv`` (``usd_per_unit``, latest rate on or before the day);
  USD securities are taken as they are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import polars as pl

SNAPSHOT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_2025"


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


@cache
def index_levels(snapshot: Path = SNAPSHOT_DIR) -> pl.DataFrame:
    """index_levels_daily.csv: index_id, trade_date (date), close, sorted."""
    df = pl.read_csv(snapshot / "index_levels_daily.csv", try_parse_dates=True)
    return (
        df.select("index_id", pl.col("trade_date").cast(pl.Date), "close")
        .drop_nulls("close")
        .sort("index_id", "trade_date")
    )


@cache
def prices(snapshot: Path = SNAPSHOT_DIR) -> pl.DataFrame:
    """prices_daily.parquet: security_id, trade_date, close, adj_close, currency, sorted."""
    df = pl.read_parquet(snapshot / "prices_daily.parquet")
    return (
        df.select("security_id", "trade_date", "close", "adj_close", "currency")
        .drop_nulls("close")
        .sort("security_id", "trade_date")
    )


@cache
def shares(snapshot: Path = SNAPSHOT_DIR) -> pl.DataFrame:
    """shares_outstanding.csv: security_id, as_of_date (date), shares, sorted."""
    df = pl.read_csv(snapshot / "shares_outstanding.csv", try_parse_dates=True)
    return (
        df.select("security_id", pl.col("as_of_date").cast(pl.Date), "shares")
        .drop_nulls("shares")
        .sort("security_id", "as_of_date")
    )


@cache
def fx_rates(snapshot: Path = SNAPSHOT_DIR) -> pl.DataFrame:
    """fx_rates_daily.csv: trade_date (date), currency, usd_per_unit, sorted."""
    df = pl.read_csv(snapshot / "fx_rates_daily.csv", try_parse_dates=True)
    return (
        df.select(pl.col("trade_date").cast(pl.Date), "currency", "usd_per_unit")
        .drop_nulls("usd_per_unit")
        .sort("currency", "trade_date")
    )


# --------------------------------------------------------------------------------------
# Indexes
# --------------------------------------------------------------------------------------


def index_closes(index_id: str, snapshot: Path = SNAPSHOT_DIR) -> pl.DataFrame:
    """One index's closes: trade_date, close (sorted; empty if the index is absent)."""
    lv = index_levels(snapshot)
    return lv.filter(pl.col("index_id") == index_id).select("trade_date", "close")


def index_return(index_id: str, t0: dt.date, t1: dt.date, snapshot: Path = SNAPSHOT_DIR) -> float:
    """Return (%) of an index from its close on t0 to its close on t1 (both must exist)."""
    c = index_closes(index_id, snapshot)
    c0 = c.filter(pl.col("trade_date") == t0)["close"]
    c1 = c.filter(pl.col("trade_date") == t1)["close"]
    if c0.len() != 1 or c1.len() != 1:
        raise KeyError(f"{index_id} has no close on {t0 if c0.len() != 1 else t1}")
    return (float(c1.item()) / float(c0.item()) - 1.0) * 100.0


@dataclass(frozen=True)
class Move:
    """A return over (t0, t1]: t0 and t1 are the closes it runs between."""

    t0: dt.date
    t1: dt.date
    return_pct: float


def index_window_return(
    index_id: str, start: dt.date, end: dt.date, snapshot: Path = SNAPSHOT_DIR
) -> Move:
    """Window return: last close strictly before `start` -> last close on or before `end`."""
    c = index_closes(index_id, snapshot)
    before = c.filter(pl.col("trade_date") < start)
    inside = c.filter((pl.col("trade_date") >= start) & (pl.col("trade_date") <= end))
    if before.height == 0 or inside.height == 0:
        raise KeyError(f"{index_id} has no close before {start} or none in {start}..{end}")
    t0, t1 = before["trade_date"][-1], inside["trade_date"][-1]
    return Move(t0, t1, index_return(index_id, t0, t1, snapshot))


def index_day_returns(index_id: str, snapshot: Path = SNAPSHOT_DIR) -> pl.DataFrame:
    """Daily returns of an index: prev_date, trade_date, return_pct (first day dropped)."""
    c = index_closes(index_id, snapshot)
    return (
        c.with_columns(
            prev_date=pl.col("trade_date").shift(1),
            return_pct=(pl.col("close") / pl.col("close").shift(1) - 1) * 100,
        )
        .drop_nulls("return_pct")
        .select("prev_date", "trade_date", "return_pct")
    )


def worst_day(
    day_returns: pl.DataFrame, start: dt.date, end: dt.date, column: str = "return_pct"
) -> dict:
    """The row of `day_returns` with the lowest `column` among days in [start, end]."""
    rows = day_returns.filter(pl.col("trade_date").is_between(start, end)).drop_nulls(column)
    if rows.height == 0:
        raise KeyError(f"no {column} in {start}..{end}")
    return rows.sort(column).row(0, named=True)


def worst_week(closes: pl.DataFrame, start: dt.date, end: dt.date, value: str = "close") -> Move:
    """Worst calendar week (Mon-Sun) holding a close in [start, end]: from the last close
    before its Monday to its last close. `closes` has trade_date and `value` columns."""
    c = closes.drop_nulls(value).sort("trade_date")
    days = c["trade_date"].to_list()
    mondays = sorted({d - dt.timedelta(days=d.weekday()) for d in days if start <= d <= end})
    weeks: list[Move] = []
    for monday in mondays:
        sunday = monday + dt.timedelta(days=6)
        before = c.filter(pl.col("trade_date") < monday)
        inside = c.filter(pl.col("trade_date").is_between(monday, sunday))
        if before.height == 0 or inside.height == 0:
            continue
        v0, v1 = float(before[value][-1]), float(inside[value][-1])
        weeks.append(
            Move(before["trade_date"][-1], inside["trade_date"][-1], (v1 / v0 - 1.0) * 100.0)
        )
    if not weeks:
        raise KeyError(f"no complete week in {start}..{end}")
    return min(weeks, key=lambda w: w.return_pct)


# --------------------------------------------------------------------------------------
# Securities
# --------------------------------------------------------------------------------------


def security_day_returns(security_id: str, snapshot: Path = SNAPSHOT_DIR) -> pl.DataFrame:
    """Daily returns of a security: prev_date, trade_date, close, basis, return_pct and a
    chained return index `level` (its ratio between two days compounds the daily returns).

    basis = "adj_close" when both days have an adjusted close, else "close"."""
    p = prices(snapshot).filter(pl.col("security_id") == security_id)
    adj, close = pl.col("adj_close"), pl.col("close")
    both = adj.is_not_null() & adj.shift(1).is_not_null()
    out = p.with_columns(
        prev_date=pl.col("trade_date").shift(1),
        basis=pl.when(both).then(pl.lit("adj_close")).otherwise(pl.lit("close")),
        ratio=pl.when(both).then(adj / adj.shift(1)).otherwise(close / close.shift(1)),
    ).with_columns(level=pl.col("ratio").fill_null(1.0).cum_prod())
    return out.with_columns(return_pct=(pl.col("ratio") - 1) * 100).select(
        "prev_date", "trade_date", "close", "basis", "return_pct", "level"
    )


def security_return(
    security_id: str, t0: dt.date, t1: dt.date, snapshot: Path = SNAPSHOT_DIR
) -> float:
    """Chained return (%) of a security from its close on t0 to its close on t1."""
    r = security_day_returns(security_id, snapshot)
    l0 = r.filter(pl.col("trade_date") == t0)["level"]
    l1 = r.filter(pl.col("trade_date") == t1)["level"]
    if l0.len() != 1 or l1.len() != 1:
        raise KeyError(f"{security_id} has no close on {t0 if l0.len() != 1 else t1}")
    return (float(l1.item()) / float(l0.item()) - 1.0) * 100.0


def security_window_return(
    security_id: str, start: dt.date, end: dt.date, snapshot: Path = SNAPSHOT_DIR
) -> Move:
    """Window return of a security (last close before `start` -> last close by `end`)."""
    r = security_day_returns(security_id, snapshot)
    before = r.filter(pl.col("trade_date") < start)
    inside = r.filter(pl.col("trade_date").is_between(start, end))
    if before.height == 0 or inside.height == 0:
        raise KeyError(f"{security_id} has no close before {start} or none in {start}..{end}")
    t0, t1 = before["trade_date"][-1], inside["trade_date"][-1]
    return Move(t0, t1, security_return(security_id, t0, t1, snapshot))


def shares_on(security_id: str, day: dt.date, snapshot: Path = SNAPSHOT_DIR) -> float | None:
    """Latest share count with as_of_date on or before `day` (None if there is none)."""
    s = shares(snapshot).filter(
        (pl.col("security_id") == security_id) & (pl.col("as_of_date") <= day)
    )
    return float(s["shares"][-1]) if s.height else None


def usd_per_unit(currency: str, day: dt.date, snapshot: Path = SNAPSHOT_DIR) -> float | None:
    """USD per unit of `currency` on `day` (latest rate on or before it; 1 for USD)."""
    if currency == "USD":
        return 1.0
    fx = fx_rates(snapshot).filter((pl.col("currency") == currency) & (pl.col("trade_date") <= day))
    return float(fx["usd_per_unit"][-1]) if fx.height else None


@dataclass(frozen=True)
class MarketCap:
    """A security's market cap on one day, in its own currency and in USD."""

    security_id: str
    trade_date: dt.date
    local: float
    usd: float | None


def market_cap(security_id: str, day: dt.date, snapshot: Path = SNAPSHOT_DIR) -> MarketCap:
    """Raw close on `day` x the share count in force that day; KeyError when either lacks."""
    p = prices(snapshot).filter(
        (pl.col("security_id") == security_id) & (pl.col("trade_date") == day)
    )
    if p.height == 0:
        raise KeyError(f"{security_id} has no close on {day}")
    n = shares_on(security_id, day, snapshot)
    if n is None:
        raise KeyError(f"{security_id} has no share count on or before {day}")
    local = float(p["close"].item()) * n
    rate = usd_per_unit(str(p["currency"].item()), day, snapshot)
    return MarketCap(security_id, day, local, None if rate is None else local * rate)


def market_cap_change(
    security_id: str, t0: dt.date, t1: dt.date, snapshot: Path = SNAPSHOT_DIR
) -> tuple[float, float | None]:
    """(local change, USD change) of a security's market cap from t0 to t1."""
    a, b = market_cap(security_id, t0, snapshot), market_cap(security_id, t1, snapshot)
    usd = None if a.usd is None or b.usd is None else b.usd - a.usd
    return b.local - a.local, usd


# --------------------------------------------------------------------------------------
# Baskets
# --------------------------------------------------------------------------------------


def basket_cap_usd(members: Sequence[str], day: dt.date, snapshot: Path = SNAPSHOT_DIR) -> float:
    """Sum of the members' USD market caps on `day` (KeyError if any member lacks one)."""
    total = 0.0
    for sid in members:
        cap = market_cap(sid, day, snapshot)
        if cap.usd is None:
            raise KeyError(f"{sid}: no USD rate on {day}")
        total += cap.usd
    return total


def basket_cap_change(
    members: Sequence[str], t0: dt.date, t1: dt.date, snapshot: Path = SNAPSHOT_DIR
) -> tuple[float, float]:
    """(USD change, change in %) of a basket's summed USD market cap from t0 to t1."""
    c0 = basket_cap_usd(members, t0, snapshot)
    c1 = basket_cap_usd(members, t1, snapshot)
    return c1 - c0, (c1 / c0 - 1.0) * 100.0


def basket_cap_series(
    members: Sequence[str], start: dt.date, end: dt.date, snapshot: Path = SNAPSHOT_DIR
) -> pl.DataFrame:
    """trade_date, cap_usd of a basket on the days in [start, end] where every member has a
    close (sessions common to all members)."""
    p = prices(snapshot).filter(
        pl.col("security_id").is_in(list(members)) & pl.col("trade_date").is_between(start, end)
    )
    counts = p.group_by("trade_date").agg(pl.col("security_id").n_unique().alias("n"))
    days = sorted(counts.filter(pl.col("n") == len(set(members)))["trade_date"].to_list())
    return pl.DataFrame(
        {"trade_date": days, "cap_usd": [basket_cap_usd(members, d, snapshot) for d in days]},
        schema={"trade_date": pl.Date, "cap_usd": pl.Float64},
    )
