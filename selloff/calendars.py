"""Trading calendars per market, from exchange_calendars (never hand-written)."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from selloff.markets import REGISTRY

if TYPE_CHECKING:
    import exchange_calendars as xcals

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
    # Imported here: importing exchange_calendars costs 2 CPU s, and a process whose
    # sessions are on disk (_sessions) never needs it.
    import exchange_calendars as xcals

    if market not in MARKET_CALENDARS:
        raise KeyError(f"no trading calendar for market {market!r}; known: {sorted(MARKET_CALENDARS)}")
    return xcals.get_calendar(MARKET_CALENDARS[market], start=CALENDAR_START.isoformat())


def calendar_bounds(market: str) -> tuple[dt.date, dt.date]:
    sessions = _sessions(market)
    return min(sessions), max(sessions)


@cache
def _sessions(market: str) -> frozenset[dt.date]:
    """The market's sessions from CALENDAR_START to exchange_calendars' default end (a
    year after today), kept on disk for the day: building a calendar costs 3 CPU s for
    KRX (lunar holidays computed in Python), in every process that needs one. The file
    is named by everything the sessions depend on (the calendar, the library's version,
    the start, today), so a cached file always holds what the library would build now."""
    if market not in MARKET_CALENDARS:
        _calendar(market)  # raises the KeyError naming the known markets
    path = _sessions_file(market, dt.date.today())
    try:
        return frozenset(pl.read_parquet(path)["session"].to_list())
    except (OSError, pl.exceptions.PolarsError):
        pass  # not cached yet (or unreadable): build it
    sessions = frozenset(d.date() for d in _calendar(market).sessions)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        pl.DataFrame({"session": sorted(sessions)}, schema={"session": pl.Date}).write_parquet(tmp)
        os.replace(tmp, path)  # atomic: another process reads the whole file or none
    except OSError:
        pass  # a read-only temp folder: only the speed-up is lost
    return sessions


def _sessions_file(market: str, today: dt.date) -> Path:
    version = importlib.metadata.version("exchange_calendars")
    name = (f"{MARKET_CALENDARS[market]}-xcals{version}-"
            f"{CALENDAR_START.isoformat()}-{today.isoformat()}.parquet")
    return Path(tempfile.gettempdir()) / "selloff-calendars" / name


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
