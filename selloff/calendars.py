"""Trading calendars per market, from exchange_calendars (never hand-written)."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

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


def calendar_bounds(market: str) -> tuple[dt.date, dt.date]:
    sessions = _sessions(market)
    return min(sessions), max(sessions)


def build_sessions(calendars: list[str], start: dt.date) -> dict[str, list[str]]:
    """Each exchange calendar's sessions from `start` to exchange_calendars' default end,
    as ISO dates. Runs in the child process `_sessions` starts (see there)."""
    import exchange_calendars as xcals

    return {name: [d.date().isoformat()
                   for d in xcals.get_calendar(name, start=start.isoformat()).sessions]
            for name in calendars}


def _sessions_from_child(markets: list[str]) -> dict[str, frozenset[dt.date]]:
    """The markets' sessions, built by exchange_calendars in a child Python process.

    Why a child (issue #25): exchange_calendars' holiday objects, loaded in the same
    interpreter as duckdb_engine and Great Expectations, were one of the things that kept
    DuckDB's objects reachable past CPython's last collection at exit (nanobind's
    "leaked" lines); the first link of that chain is now released at exit
    (`selloff.quality.gx_suites._duckdb_engine`), and the child also keeps the library's
    import (2-3 CPU s) out of every run. The calendars are pure data (a list of dates per
    exchange), so building them elsewhere loses nothing; the sessions are cached on disk
    for the day, so this costs one child process a day.
    """
    names = [MARKET_CALENDARS[m] for m in markets]
    code = ("import json, sys, datetime as dt; from selloff.calendars import build_sessions; "
            "json.dump(build_sessions(sys.argv[1:], dt.date.fromisoformat("
            f"'{CALENDAR_START.isoformat()}')), sys.stdout)")
    done = subprocess.run([sys.executable, "-c", code, *names], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building the trading calendars {', '.join(names)} failed "
                           f"(exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    by_name = json.loads(done.stdout)
    return {m: frozenset(dt.date.fromisoformat(d) for d in by_name[MARKET_CALENDARS[m]])
            for m in markets}


@cache
def _sessions(market: str) -> frozenset[dt.date]:
    """The market's sessions from CALENDAR_START to exchange_calendars' default end (a
    year after today), kept on disk for the day: building a calendar costs 3 CPU s for
    KRX (lunar holidays computed in Python), in every process that needs one. The file
    is named by everything the sessions depend on (the calendar, the library's version,
    the start, today), so a cached file always holds what the library would build now.
    On a miss every market missing today is built at once, in a child process."""
    if market not in MARKET_CALENDARS:
        raise KeyError(f"no trading calendar for market {market!r}; known: {sorted(MARKET_CALENDARS)}")
    today = dt.date.today()
    cached = _read_sessions(market, today)
    if cached is not None:
        return cached
    missing = [m for m in MARKET_CALENDARS if m == market or _read_sessions(m, today) is None]
    built = _sessions_from_child(missing)
    for m, sessions in built.items():
        _write_sessions(_sessions_file(m, today), sessions)
    return built[market]


def _read_sessions(market: str, today: dt.date) -> frozenset[dt.date] | None:
    try:
        return frozenset(pl.read_parquet(_sessions_file(market, today))["session"].to_list())
    except (OSError, pl.exceptions.PolarsError):
        return None  # not cached yet (or unreadable): build it


def _write_sessions(path: Path, sessions: frozenset[dt.date]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        pl.DataFrame({"session": sorted(sessions)}, schema={"session": pl.Date}).write_parquet(tmp)
        os.replace(tmp, path)  # atomic: another process reads the whole file or none
    except OSError:
        pass  # a read-only temp folder: only the speed-up is lost


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
