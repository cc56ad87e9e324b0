"""Trading calendars per market, from exchange_calendars (never hand-written)."""

from __future__ import annotations

import datetime as dt
from functools import cache

import exchange_calendars as xcals
import polars as pl

from selloff.markets import REGISTRY

MARKET_CALENDARS: dict[str, str] = {m.code: m.calendar for m in REGISTRY}
MARKET_TIMEZONES: dict[str, str] = {m.code: m.timezone for m in REGISTRY}
CALENDAR_START = dt.date(2018, 1, 1)

# raw.trading_calendar, as calendar_frame builds it: its comment and its columns' (the one
# source, selloff/catalog.py).
CALENDAR_TABLE_DOC = ("Every calendar day per market from 2018 with whether the exchange "
                      "trades (exchange_calendars).")
CALENDAR_SCHEMA: dict[str, pl.DataType] = {
    "market": pl.Utf8(), "calendar_date": pl.Date(), "is_trading_day": pl.Boolean()}
CALENDAR_COLUMN_DOCS: dict[str, str] = {
    "market": "Market code of the registry (selloff/markets.py).",
    "calendar_date": "Calendar day (every day, weekends and holidays included).",
    "is_trading_day": "True when the market's exchange holds a session that day.",
}


@cache
def _calendar(market: str) -> xcals.ExchangeCalendar:
    if market not in MARKET_CALENDARS:
        raise KeyError(f"no trading calendar for market {market!r}; known: {sorted(MARKET_CALENDARS)}")
    return xcals.get_calendar(MARKET_CALENDARS[market], start=CALENDAR_START.isoformat())


def calendar_bounds(market: str) -> tuple[dt.date, dt.date]:
    cal = _calendar(market)
    return cal.first_session.date(), cal.last_session.date()


@cache
def _sessions(market: str) -> frozenset[dt.date]:
    return frozenset(d.date() for d in _calendar(market).sessions)


def trading_days(market: str, start: dt.date, end: dt.date) -> list[dt.date]:
    """Sessions of `market` in [start, end], sorted."""
    return sorted(d for d in _sessions(market) if start <= d <= end)


def is_trading_day(market: str, day: dt.date) -> bool:
    return day in _sessions(market)


def calendar_frame(markets: tuple[str, ...] = tuple(MARKET_CALENDARS),
                   start: dt.date = CALENDAR_START,
                   end: dt.date | None = None) -> pl.DataFrame:
    """(market, calendar_date, is_trading_day) for every calendar day in range."""
    frames = []
    for market in markets:
        first, last = calendar_bounds(market)
        stop = min(end or last, last)
        days = pl.date_range(max(start, first), stop, interval="1d", eager=True)
        sessions = _sessions(market)
        frames.append(
            pl.DataFrame(
                {
                    "market": market,
                    "calendar_date": days,
                    "is_trading_day": [d in sessions for d in days.to_list()],
                }
            )
        )
    return pl.concat(frames)
