"""Helpers of the live-adapter tests (fixture files, scripted library stand-ins)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import requests

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_path(*parts: str) -> Path:
    return FIXTURES.joinpath(*parts)


def fixture_text(*parts: str) -> str:
    return fixture_path(*parts).read_text(encoding="utf-8")


def fixture_json(*parts: str) -> Any:
    return json.loads(fixture_text(*parts))


def fixture_frame(*parts: str, dtype: dict | None = None) -> pd.DataFrame:
    """A CSV fixture as the pandas frame the library returns (codes stay text)."""
    return pd.read_csv(fixture_path(*parts), dtype=dtype or {})


def http_error(status: int) -> requests.HTTPError:
    """What requests' raise_for_status() raises for an HTTP status."""
    resp = requests.Response()
    resp.status_code = status
    resp.reason = {429: "Too Many Requests", 503: "Service Unavailable"}.get(status, "Error")
    resp.url = "https://example.invalid/"
    return requests.HTTPError(f"{status} Client Error: {resp.reason} for url: {resp.url}",
                              response=resp)


class Scripted:
    """A stand-in for a library function: first raises the scripted exceptions, then
    answers with `answer(*args, **kwargs)`; records every call."""

    def __init__(self, answer: Callable[..., Any], *, fail_with: list[BaseException] | None = None,
                 always_fail: BaseException | None = None):
        self.answer = answer
        self.fail_with = list(fail_with or [])
        self.always_fail = always_fail
        self.calls: list[tuple[tuple, dict]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((args, kwargs))
        if self.always_fail is not None:
            raise self.always_fail
        if self.fail_with:
            raise self.fail_with.pop(0)
        return self.answer(*args, **kwargs)



TODAY = dt.date(2026, 11, 24)


# -- yfinance stand-ins ------------------------------------------------------------------
YAHOO_TZ = {"NVDA": "America/New_York", "9984.T": "Asia/Tokyo", "^N225": "Asia/Tokyo",
            "005930.KS": "Asia/Seoul", "688256.SS": "Asia/Shanghai"}
YAHOO_FILES = {"NVDA": "NVDA_history_split_2024-06.csv", "9984.T": "9984.T_history.csv",
               "^N225": "N225_history.csv", "005930.KS": "005930.KS_history.csv",
               "688256.SS": "688256.SS_history.csv"}
YAHOO_SHARES = {"NVDA": "NVDA_shares_full.csv", "9984.T": "9984.T_shares_full.csv",
                "688256.SS": "688256.SS_shares_full.csv"}


def yahoo_history(symbol: str, file: str | None = None) -> pd.DataFrame:
    """A history fixture as yfinance returns it: tz-aware 'Date' index in the exchange zone."""
    df = pd.read_csv(fixture_path("yahoo", file or YAHOO_FILES[symbol]), index_col="Date")
    df.index = pd.to_datetime(df.index, utc=True).tz_convert(YAHOO_TZ[symbol])
    df.index.name = "Date"
    return df


def yahoo_shares(symbol: str) -> pd.Series:
    df = pd.read_csv(fixture_path("yahoo", YAHOO_SHARES[symbol]))
    index = pd.to_datetime(df["date"], utc=True).dt.tz_convert(YAHOO_TZ[symbol])
    return pd.Series(df["shares"].to_numpy(), index=pd.DatetimeIndex(index))


class FakeTicker:
    """yfinance.Ticker's history/get_shares_full answering from the fixtures; `script`
    holds failures to raise, frames to use instead, and records the calls."""

    def __init__(self, symbol: str, script: dict):
        self.symbol = symbol
        self.script = script

    def history(self, start=None, end=None, **kwargs):
        from yfinance.exceptions import YFPricesMissingError

        self.script.setdefault("history_calls", []).append((self.symbol, start, end, kwargs))
        fail = self.script.get("history_fail", [])
        if fail:
            raise fail.pop(0)
        if self.script.get("history_always_fail"):
            raise self.script["history_always_fail"]
        if self.script.get("empty"):
            raise YFPricesMissingError(f"${self.symbol}", f" (1d {start} -> {end})")
        df = self.script.get("frames", {}).get(self.symbol)
        df = yahoo_history(self.symbol) if df is None else df
        lo, hi = pd.Timestamp(start).date(), pd.Timestamp(end).date()
        return df[[lo <= ts.date() < hi for ts in df.index]]

    def get_shares_full(self, start=None, end=None):
        self.script.setdefault("shares_calls", []).append((self.symbol, start, end))
        return yahoo_shares(self.symbol)
