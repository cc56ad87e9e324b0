"""The episode model: what one sell-off is, as typed values (no parsing, no engine).

`selloff.episode` reads and validates `episode.yaml` into these classes; the engine
(`selloff.analytics`, `selloff.claims`) takes them as input. This module imports nothing
of either, so episode knowledge flows one way: from the episode files, through this model,
into the engine, never from an engine default (tests/test_import_graph.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the registry is built by selloff.episode; only its type is named here
    from selloff.claims.registry import Registry


@dataclass(frozen=True)
class NamedWindow:
    window_id: str
    start: dt.date
    end: dt.date
    main: bool = False
    description: str = ""


@dataclass(frozen=True)
class Detection:
    """Where worst days and weeks are searched, and how far back a drawdown's peak may lie."""

    search_start: dt.date
    search_end: dt.date
    drawdown_lookback_start: dt.date


@dataclass(frozen=True)
class WindowConfig:
    """An episode's named windows plus where windows are detected."""

    windows: tuple[NamedWindow, ...]
    search_start: dt.date
    search_end: dt.date
    drawdown_lookback_start: dt.date

    @property
    def main(self) -> NamedWindow:
        return next(w for w in self.windows if w.main)


@dataclass(frozen=True)
class Valuation:
    """Whose P/E the valuation spread compares: `ai_baskets` against the dividend basket,
    or the dividend index when that basket has no P/E. No AI basket: no spread rows."""

    ai_baskets: tuple[str, ...] = ()
    dividend_basket: str | None = None
    dividend_index: str | None = None


def as_date(value: Any, what: str) -> dt.date:
    """A date parameter: YAML gives a date for a bare ISO date and a str when quoted."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"{what}: {value!r} is not a date (YYYY-MM-DD)") from exc


def search_period(params: Mapping[str, Any]) -> tuple[dt.date, dt.date]:
    """A claim part's `search_period: {start, end}` as two dates."""
    sp = params.get("search_period")
    if not isinstance(sp, Mapping) or "start" not in sp or "end" not in sp:
        raise ValueError("search_period must be a mapping with start and end dates")
    start, end = as_date(sp["start"], "search_period.start"), as_date(sp["end"], "search_period.end")
    if end < start:
        raise ValueError(f"search_period ends ({end}) before it starts ({start})")
    return start, end


@dataclass(frozen=True)
class Episode:
    episode_id: str
    title: str
    markets: tuple[str, ...]
    detection: Detection
    windows: tuple[NamedWindow, ...]
    baskets: Mapping[str, tuple[str, ...]]
    registry: Registry
    headline: str | None = None
    path: Path | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    valuation: Valuation = field(default_factory=Valuation)

    @property
    def main(self) -> NamedWindow:
        return next(w for w in self.windows if w.main)

    @property
    def window_config(self) -> WindowConfig:
        d = self.detection
        return WindowConfig(self.windows, d.search_start, d.search_end, d.drawdown_lookback_start)

    @property
    def claims(self) -> tuple:
        return self.registry.claims

    @property
    def first_day(self) -> dt.date:
        """The earliest day the episode's analytics read: its drawdown lookback, its
        windows and its claims' search periods, whichever is first."""
        days = [self.detection.drawdown_lookback_start, self.detection.search_start,
                *(w.start for w in self.windows)]
        days.extend(s for s, _ in self.search_periods())
        return min(days)

    @property
    def last_day(self) -> dt.date:
        days = [self.detection.search_end, *(w.end for w in self.windows)]
        days.extend(e for _, e in self.search_periods())
        return max(days)

    def search_periods(self) -> list[tuple[dt.date, dt.date]]:
        """The detection period and every claim part's own search period."""
        out = [(self.detection.search_start, self.detection.search_end)]
        for claim in self.claims:
            for part in claim.parts:
                if "search_period" in part.params:
                    out.append(search_period(part.params))
        return out
