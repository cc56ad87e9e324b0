"""Sell-off windows: named ones from an episode (selloff.episode_model), others found in the data.

A window is a pair of dates `[start_date, end_date]` per market. Its decomposition runs
from t0, the last close strictly before `start_date` in that market, to t1, the last close
on or before `end_date` (`window_bounds`). The detected windows follow the conventions of
`../shared/seed/CLAIMS.md`: a day is close to close; a week is an ISO calendar week
(Mon-Sun), from the last close of the previous week to the last close of the week, with
`start_date`/`end_date` its first/last session in the data so that t0 is that previous
close. A drawdown runs from the peak close (t0) to the trough close (t1).

Every detector works on a *level series* `(entity_id, market, trade_date, level)`: an
index's close (`index_level_series`) or a chain-linked basket market cap
(`basket_level_series`), so indexes and baskets are searched by the same code.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from selloff.analytics.moves import (
    basket_levels,
    index_levels,
)
from selloff.analytics.tables import (
    ALL_MARKETS,
    BOUNDS_SCHEMA,
    MARKETS,
    WINDOWS_SCHEMA,
    conform,
    empty,
    require_columns,
)
from selloff.episode_model import NamedWindow
from selloff.markets import market_of_expr

SERIES_SCHEMA: dict[str, pl.DataType] = {
    "entity_id": pl.Utf8(),
    "market": pl.Utf8(),
    "trade_date": pl.Date(),
    "level": pl.Float64(),
}

BASIS_INDEX_DAY = "index return, close to close"
BASIS_INDEX_WEEK = "index return, last close of previous week to last close of week"
BASIS_BASKET_DAY = (
    "basket market cap USD, close to close, over members with a market cap at both ends"
)
BASIS_BASKET_WEEK = (
    "basket market cap USD, last close of previous week to last close of week, chain-linked "
    "over members with a market cap at both ends of each day"
)
BASIS_BASKET_DRAWDOWN = (
    "basket market cap USD, peak close (t0) to trough close, peak since {lookback}, "
    "chain-linked over members with a market cap at both ends of each day"
)
BASIS_INDEX_DRAWDOWN = "index close, peak close (t0) to trough close, peak since {lookback}"
BASIS_NAMED = "config"


# --------------------------------------------------------------------------- config


def named_windows_frame(
    windows: list[NamedWindow] | tuple[NamedWindow, ...],
    markets: tuple[str, ...] = MARKETS,
) -> pl.DataFrame:
    """One row per named window and market: kind 'named', basis 'config', no entity."""
    rows = [
        {
            "window_id": w.window_id,
            "market": m,
            "kind": "named",
            "start_date": w.start,
            "end_date": w.end,
            "basis": BASIS_NAMED,
            "entity_id": None,
        }
        for w in windows
        for m in markets
    ]
    return pl.DataFrame(rows, schema=WINDOWS_SCHEMA) if rows else empty(WINDOWS_SCHEMA)


# --------------------------------------------------------------------------- level series


def index_level_series(index_levels_daily: pl.DataFrame) -> pl.DataFrame:
    """`fct_index_levels_daily` -> level series of each index (its close)."""
    return index_levels(index_levels_daily).select(SERIES_SCHEMA.keys())


def basket_level_series(market_cap: pl.DataFrame, basket_members: pl.DataFrame) -> pl.DataFrame:
    """Chain-linked USD market cap of each basket, as a level series (`moves.basket_levels`,
    the one implementation) with n_members."""
    return basket_levels(market_cap, basket_members).select(*SERIES_SCHEMA, "n_members")


# --------------------------------------------------------------------------- t0 / t1


def data_trading_days(market_cap: pl.DataFrame) -> pl.DataFrame:
    """(market, trade_date): the days on which some security of the market has a close."""
    require_columns(market_cap, "fct_market_cap_daily", ("security_id", "trade_date", "close"))
    return (
        market_cap.lazy()
        .filter(pl.col("close").is_not_null())
        .select(market_of_expr("security_id", market_cap).alias("market"), "trade_date")
        .unique()
        .sort("market", "trade_date")
        .collect()
    )


def calendar_trading_days(
    markets: tuple[str, ...], start: dt.date, end: dt.date
) -> pl.DataFrame:
    """(market, trade_date) from the exchange calendars (`selloff.calendars`)."""
    # Imported here: only this helper needs the sessions (built in a child, cached per day).
    from selloff.calendars import trading_days

    frames = [
        pl.DataFrame({"market": m, "trade_date": trading_days(m, start, end)},
                     schema={"market": pl.Utf8(), "trade_date": pl.Date()})
        for m in markets
    ]
    return pl.concat(frames) if frames else pl.DataFrame(schema={"market": pl.Utf8(),
                                                                  "trade_date": pl.Date()})


def window_bounds(windows: pl.DataFrame, trading_days: pl.DataFrame) -> pl.DataFrame:
    """(window_id, market, t0_date, t1_date) for every window row and market.

    t0 = last trading day strictly before start_date, t1 = last trading day on or before
    end_date, both in that market's `trading_days` (market, trade_date). A window with
    market 'ALL' gets one row per market of `trading_days`. t0/t1 are null when no such
    day exists; t1 == t0 when the market has no session inside the window.
    """
    require_columns(windows, "selloff_windows", ("window_id", "market", "start_date", "end_date"))
    require_columns(trading_days, "trading days", ("market", "trade_date"))
    days = trading_days.lazy().select("market", pl.col("trade_date").cast(pl.Date)).unique()
    w = windows.lazy().select("window_id", "market", "start_date", "end_date")
    every_market = days.select("market").unique()
    expanded = pl.concat(
        [
            w.filter(pl.col("market") != ALL_MARKETS),
            w.filter(pl.col("market") == ALL_MARKETS).drop("market").join(every_market, how="cross")
            .select("window_id", "market", "start_date", "end_date"),
        ]
    ).unique(subset=["window_id", "market"], keep="first", maintain_order=True)
    joined = expanded.join(days, on="market", how="inner")
    t0 = (
        joined.filter(pl.col("trade_date") < pl.col("start_date"))
        .group_by("window_id", "market")
        .agg(pl.col("trade_date").max().alias("t0_date"))
    )
    t1 = (
        joined.filter(pl.col("trade_date") <= pl.col("end_date"))
        .group_by("window_id", "market")
        .agg(pl.col("trade_date").max().alias("t1_date"))
    )
    out = (
        expanded.join(t0, on=["window_id", "market"], how="left")
        .join(t1, on=["window_id", "market"], how="left")
        .sort("window_id", "market")
        .collect()
    )
    return conform(out, BOUNDS_SCHEMA) if out.height else empty(BOUNDS_SCHEMA)


def window_t0(start_date: dt.date, market: str, trading_days: pl.DataFrame) -> dt.date | None:
    """Last trading day of `market` strictly before `start_date`, or None."""
    return (
        trading_days.filter((pl.col("market") == market) & (pl.col("trade_date") < start_date))
        .select(pl.col("trade_date").max())
        .item()
    )


def window_t1(end_date: dt.date, market: str, trading_days: pl.DataFrame) -> dt.date | None:
    """Last trading day of `market` on or before `end_date`, or None."""
    return (
        trading_days.filter((pl.col("market") == market) & (pl.col("trade_date") <= end_date))
        .select(pl.col("trade_date").max())
        .item()
    )
