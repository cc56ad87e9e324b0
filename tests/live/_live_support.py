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
