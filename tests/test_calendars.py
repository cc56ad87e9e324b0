"""Trading sessions (selloff.calendars): built by exchange_calendars in a child process,
cached on disk for the day, and equal to what the library gives (asked in another child, tests/xcals_child.py)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from selloff import calendars
from tests.xcals_child import calendar_facts


@pytest.mark.parametrize("market", ["KR", "US"])
def test_child_built_sessions_equal_the_library_in_this_process(market: str) -> None:
    expected = set(calendar_facts(calendars.MARKET_CALENDARS[market],
                                  calendars.CALENDAR_START.isoformat()).sessions)
    built = calendars._sessions_from_child([market])
    assert built[market] == expected


def test_a_cold_run_builds_every_market_once_without_importing_exchange_calendars(
        tmp_path: Path) -> None:
    # A fresh interpreter with an empty temp folder (nothing cached): the sessions come
    # from the child, land on disk for every market, and this process never imports the
    # library (issue 25: its objects kept DuckDB's alive at exit).
    code = ("import sys, datetime as dt; from selloff.calendars import trading_days; "
            "days = trading_days('KR', dt.date(2025, 9, 29), dt.date(2025, 10, 10)); "
            "print(','.join(d.isoformat() for d in days)); "
            "print('exchange_calendars' in sys.modules)")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300, check=True)
    days, imported = done.stdout.split()
    krx = calendar_facts("XKRX", "2025-01-01", "2025-09-29", "2025-10-10")
    expected = [d.isoformat() for d in krx.sessions]
    assert days.split(",") == expected  # Chuseok 2025 and National Foundation Day closed
    assert imported == "False"
    cached = sorted(p.name.split("-")[0] for p in (tmp_path / "selloff-calendars").glob("*.parquet"))
    assert cached == sorted(calendars.MARKET_CALENDARS.values())


def test_an_unknown_market_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known"):
        calendars.trading_days("XX", dt.date(2025, 1, 1), dt.date(2025, 1, 31))
