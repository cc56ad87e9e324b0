"""exchange_calendars, asked in a child interpreter.

Tests take their expected trading days and closing times from the library itself,
independently of `selloff.calendars`, but never import it into the pytest process: with
duckdb_engine and Great Expectations loaded beside it, its objects keep DuckDB's alive past
the interpreter's last collection, and nanobind then ends the test run with "leaked" lines
(issue 25). One child per (calendar, range), cached for the session.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import subprocess
import sys
from dataclasses import dataclass

_CHILD = """
import json, sys
import exchange_calendars as xcals
name, start, lo, hi = sys.argv[1:5]
cal = xcals.get_calendar(name, start=start)
sessions = cal.sessions_in_range(lo, hi) if lo else cal.sessions
print(json.dumps({
    "timezone": str(cal.tz),
    "close": cal.close_times[-1][1].isoformat(),
    "sessions": [d.date().isoformat() for d in sessions],
}))
"""


@dataclass(frozen=True)
class CalendarFacts:
    timezone: str
    close: dt.time  # today's regular close (the last entry of close_times)
    sessions: tuple[dt.date, ...]


@functools.cache
def calendar_facts(name: str, start: str, lo: str | None = None,
                   hi: str | None = None) -> CalendarFacts:
    """The calendar `name` built from `start`; its sessions from `lo` to `hi`, or all of
    them when no range is given."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, name, start, lo or "", hi or ""],
        capture_output=True, text=True, timeout=300, check=True)
    raw = json.loads(done.stdout)
    return CalendarFacts(
        timezone=raw["timezone"], close=dt.time.fromisoformat(raw["close"]),
        sessions=tuple(dt.date.fromisoformat(d) for d in raw["sessions"]))
