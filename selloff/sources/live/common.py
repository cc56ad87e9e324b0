"""Helpers every live adapter shares: units, ids, the empty-answer rule and the fetch log."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from selloff.calendars import calendar_bounds, trading_days
from selloff.contracts import DATASETS
from selloff.markets import MARKET_CURRENCY
from selloff.sources.live.errors import EmptyAnswer, MalformedPayload

# Units of the sources, to full units (DESIGN §3).
YI = 1e8          # 亿
WAN = 1e4         # 万
EOK_WON = 1e8     # 억원
SEN_YEN = 1e3     # 千円 (thousand yen)
HYAKUMAN_YEN = 1e6  # 百万円 (million yen)
LOT = 100         # 手: A-share volumes are quoted in lots of 100 shares

_CN_AMOUNT = re.compile(r"^\s*([-+]?[\d,]*\.?\d+)\s*(亿|万|億|萬)?\s*(元|股|手)?\s*$")


def parse_cn_amount(text: object) -> float | None:
    """'1.23亿' -> 123000000.0, '-4,567.8万' -> -45678000.0, '12.5' -> 12.5, '-'/'' -> None.

    Raises ValueError on anything else, so a changed format is noticed, not misread.
    """
    if text is None:
        return None
    if isinstance(text, int | float):
        return None if isinstance(text, float) and math.isnan(text) else float(text)
    s = str(text).strip()
    if s in ("", "-", "--", "—", "nan", "None"):
        return None
    m = _CN_AMOUNT.match(s)
    if not m:
        raise ValueError(f"not an amount: {s!r}")
    value = float(m.group(1).replace(",", ""))
    unit = m.group(2)
    if unit in ("亿", "億"):
        value *= YI
    elif unit in ("万", "萬"):
        value *= WAN
    return value


CURRENCY_OF_MARKET = MARKET_CURRENCY  # one registry of market facts (selloff/markets.py)
MIC_OF_SUFFIX = {"SH": "XSHG", "SZ": "XSHE", "BJ": "BJSE"}


def split_id(entity_id: str) -> tuple[str, str]:
    """'CN:600519.SH' -> ('CN', '600519.SH')."""
    market, _, code = entity_id.partition(":")
    if not market or not code:
        raise ValueError(f"{entity_id!r} is not '<MARKET>:<code>'")
    return market, code


def cn_security_id(code: str) -> str:
    """A bare 6-digit A-share code -> 'CN:<code>.<SH|SZ|BJ>' by the exchanges' code ranges."""
    code = str(code).strip().zfill(6)
    if not re.fullmatch(r"\d{6}", code):
        raise ValueError(f"{code!r} is not a 6-digit A-share code")
    if code.startswith("92") or code[0] in "48":  # Beijing Stock Exchange (92x since 2024)
        return f"CN:{code}.BJ"
    if code[0] in "569":  # 60x main board, 688 STAR, 5xx funds, 900 B shares: Shanghai
        return f"CN:{code}.SH"
    return f"CN:{code}.SZ"  # 00x main board, 30x ChiNext, 200 B shares: Shenzhen


def window_trading_days(market: str, start: dt.date, end: dt.date,
                        today: dt.date | None = None) -> list[dt.date]:
    """Trading days of `market` in [start, min(end, today)], within the calendar's range."""
    today = today or dt.date.today()
    first, last = calendar_bounds(market)
    lo, hi = max(start, first), min(end, today, last)
    return trading_days(market, lo, hi) if lo <= hi else []


def require_rows(df: pl.DataFrame | None, *, source: str, target: str, market: str,
                 start: dt.date, end: dt.date, today: dt.date | None = None) -> pl.DataFrame | None:
    """DESIGN §8: no rows for a window that holds trading days is an error, else a no-op.

    Returns None (nothing to land) when the window has no trading day of `market`.
    """
    if df is not None and df.height > 0:
        return df
    days = window_trading_days(market, start, end, today)
    if days:
        shown = days[0].isoformat() if len(days) == 1 else f"{days[0]}..{days[-1]}"
        raise EmptyAnswer(source, target,
                          f"empty answer for {start}..{end}, which holds {len(days)} trading "
                          f"day(s) of {market} ({shown})")
    return None


def need_columns(columns: list[str] | tuple[str, ...] | Any, required: list[str] | tuple[str, ...],
                 *, source: str, target: str) -> None:
    """Reject a frame whose documented columns are missing, naming the first one."""
    have = set(map(str, columns))
    for name in required:
        if name not in have:
            raise MalformedPayload(source, target, name,
                                   f"missing column (got {sorted(have)[:20]})")


def typed_frame(dataset: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows (dicts) -> a frame with exactly the contract's columns and types."""
    schema = DATASETS[dataset].schema
    if not rows:
        return pl.DataFrame(schema=schema)
    return pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema)


def clip_window(df: pl.DataFrame, column: str, start: dt.date, end: dt.date) -> pl.DataFrame:
    return df.filter(pl.col(column).is_between(start, end))


@dataclass
class FetchRecord:
    """One call to a source, for the capture manifest (what, when, from where)."""

    source: str
    dataset: str
    target: str
    rows: int
    fetched_at: str
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["error"] is None:
            d.pop("error")
        return d


@dataclass
class FetchLog:
    records: list[FetchRecord] = field(default_factory=list)
    listeners: list[Callable[[FetchRecord], None]] = field(default_factory=list)

    def add(self, source: str, dataset: str, target: str, rows: int,
            error: str | None = None) -> None:
        rec = FetchRecord(source, dataset, target, int(rows),
                          dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), error)
        self.records.append(rec)
        for listener in self.listeners:
            listener(rec)

    def as_list(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.records]
