"""The built-in synthetic demo market: all ten canonical datasets, seeded and offline.

US, China, Korea, Japan and Taiwan trade on their real calendars (exchange_calendars);
each market's parameters, names, indexes and currency path are data in demo_universe. Returns
follow a one-factor market model plus an AI factor, a sector factor and idiosyncratic
noise, so betas and factor regressions mean something. The path is scripted around the
2025 AI episode: a rally from January to a peak on 2025-10-29, then a sell-off to late
November with the worst week 17-21 Nov (worst day 20 Nov in the US, the next session in
Asia) and a rotation into banks, coal and consumer names.

Prices, index levels and FX rates are anchored at the peak (so caps and multiples look
like late-2025 ones for any `years`); everything else is derived from the simulated
path. Built-in cases for the warehouse to get right:
- JP:9984 splits 1:4 on 2025-04-01 (as-traded prices fall 4x, the count rises 4x);
- CN:601939.SH issues 4.8 % new shares in a placement on 2025-06-24;
- US:AAPL buys back 0.7 % of its shares each fiscal quarter (steps in each 10-Q);
- US:SMCI restates one fiscal quarter in a 10-Q/A filed ~3 months later;
- US:INTC and US:MDAI lose money (no P/E);
- CN:300476.SZ joins the CN_AI board on 2025-07-01 (point-in-time membership).

Memory stays bounded at any size: the universe (specs, share events) is cached per
parameter set, but the daily datasets are generated one market at a time, in slices of
ids, into a spool on disk (raw values) the first time an extract asset asks for one, and
read back in slices (`DemoSource.fetch_parts`), so no process holds a market's frames whole.

Over 400 lines on purpose: the scripted path, the share events and the ten datasets are
generated from one random stream per market, in one order; split across modules, a change
to one dataset would silently shift the draws of the others (the seeded figures the tests
and closing notes quote). The scripted shock is the generator's own scenario, not an
episode's definition: the episodes measure it like any data.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from selloff.calendars import trading_days
from selloff.contracts import DATASETS
from selloff.markets import market_of
from selloff.sources.base import Source
from selloff.sources.demo_universe import (
    AI_SECTORS,
    CN_AI,
    CORE,
    CURRENCY,
    DEMO_FX,
    DEMO_INDEXES,
    DEMO_MARKETS,
    SECTORS,
    US_AI_BIG8,
    US_TOP5_CAPEX,
    SecuritySpec,
    universe,
)
from selloff.sources.snapshot import write_snapshot
from selloff.warehouse import release_memory

SOURCE = "demo (synthetic)"
MARKET_ORDER = tuple(DEMO_MARKETS)
_MARKET_NO = {m: d.stream for m, d in DEMO_MARKETS.items()}

ANCHOR = dt.date(2025, 10, 29)  # the AI peak: prices, caps and multiples are set here
EPISODE = (dt.date(2025, 10, 27), dt.date(2025, 11, 28))

SPLITS = {"JP:9984": (dt.date(2025, 4, 1), 4.0)}
PLACEMENTS = {"CN:601939.SH": (dt.date(2025, 6, 24), 1.048)}
BUYBACKS = {"US:AAPL": 0.993}  # share count multiplier at each fiscal quarter end
RESTATED = "US:SMCI"
RESTATEMENT_FACTOR = 1.087  # the original 10-Q overstated income lines by this much
BOARD_AI = "CN:BOARD_AI"
BOARD_JOINER = ("CN:300476.SZ", dt.date(2025, 7, 1))
# Company events on top of the factor model: (security, US-calendar date, log return).
JUMPS = {("US:META", dt.date(2025, 10, 30)): -0.115}

# AI-factor drift per US session of the episode. Asia trades the previous US session,
# so its worst day is 21 Nov and its worst week is still 17-21 Nov.
_EPISODE_AI = {
    "2025-10-27": 0.006, "2025-10-28": 0.008, "2025-10-29": 0.004, "2025-10-30": -0.020,
    "2025-10-31": 0.004, "2025-11-03": -0.004, "2025-11-04": -0.025, "2025-11-05": 0.008,
    "2025-11-06": -0.018, "2025-11-07": -0.004, "2025-11-10": 0.012, "2025-11-11": -0.004,
    "2025-11-12": -0.006, "2025-11-13": -0.022, "2025-11-14": 0.002, "2025-11-17": -0.015,
    "2025-11-18": -0.022, "2025-11-19": 0.008, "2025-11-20": -0.050, "2025-11-21": -0.018,
    "2025-11-24": 0.006, "2025-11-25": 0.003, "2025-11-26": 0.004, "2025-11-28": 0.003,
}
# Calendar-year drifts (market, AI factor) per session, outside the episode.
_YEAR_DRIFT = {
    2018: (-0.0003, 0.0), 2019: (0.0008, 0.0012), 2020: (0.0006, 0.0015),
    2021: (0.0006, 0.0008), 2022: (-0.0008, -0.0015), 2023: (0.0008, 0.0020),
    2024: (0.0007, 0.0015), 2025: (0.0005, 0.0018), 2026: (0.0003, 0.0004),
}
_POST_EPISODE_2025 = (0.0004, 0.0010)
# How hard each market takes the episode (A-shares fell less than US AI names), and how
# much of the AI move the broad market factor shares during it.
_EPISODE_SENS = {m: d.episode_sens for m, d in DEMO_MARKETS.items()}
_EPISODE_MKT_SHARE = {m: d.episode_market_share for m, d in DEMO_MARKETS.items()}
_ROTATION = {"Banks": 0.0015, "Coal": 0.0020, "Consumer": 0.0008, "Utilities": 0.0010}

_MKT_VOL = {m: d.market_vol for m, d in DEMO_MARKETS.items()}
_AI_VOL = 0.010
_SECTOR_VOL = 0.004
_EPISODE_DAMP = 0.3  # factor noise inside the episode, so its scripted shape shows through

_BETA = {"AI Chips": 1.3, "Hyperscalers": 1.1, "AI Hardware": 1.2, "Banks": 0.8, "Coal": 0.8,
         "Consumer": 0.7, "Utilities": 0.5}
_GAMMA = {"AI Chips": 1.3, "Hyperscalers": 0.8, "AI Hardware": 1.2, "Banks": -0.05,
          "Coal": -0.1, "Consumer": 0.0, "Utilities": 0.05}
_IDIO_VOL = {"AI Chips": 0.020, "Hyperscalers": 0.013, "AI Hardware": 0.020, "Banks": 0.008,
             "Coal": 0.013, "Consumer": 0.010, "Utilities": 0.008}
_TURNOVER = {m: d.turnover for m, d in DEMO_MARKETS.items()}  # (AI, other)
_TICK = {m: d.tick for m, d in DEMO_MARKETS.items()}
_LOT = {m: d.lot for m, d in DEMO_MARKETS.items()}

# Fundamentals: net margin, earnings growth per year, capex / revenue, capex growth.
_MARGIN = {"AI Chips": 0.30, "Hyperscalers": 0.25, "AI Hardware": 0.10, "Banks": 0.30,
           "Coal": 0.12, "Consumer": 0.10, "Utilities": 0.15}
_MARGIN_OVERRIDE = {
    "US:NVDA": 0.55, "US:AVGO": 0.40, "US:AMD": 0.12, "US:MU": 0.22, "US:INTC": 0.10,
    "US:MSFT": 0.36, "US:GOOGL": 0.31, "US:AMZN": 0.11, "US:META": 0.38, "US:ORCL": 0.20,
    "US:AAPL": 0.25, "US:TSLA": 0.07, "US:SMCI": 0.05, "US:DELL": 0.05, "US:ANET": 0.40,
    "US:MDAI": 0.50, "US:WMT": 0.03, "US:KO": 0.25, "US:MCD": 0.32,
}
_NI_GROWTH = {"AI Chips": 0.35, "Hyperscalers": 0.20, "AI Hardware": 0.25, "Banks": 0.03,
              "Coal": -0.05, "Consumer": 0.04, "Utilities": 0.05}
_CAPEX_RATIO = {"AI Chips": 0.08, "Hyperscalers": 0.30, "AI Hardware": 0.05, "Banks": 0.02,
                "Coal": 0.15, "Consumer": 0.04, "Utilities": 0.40}
_CAPEX_GROWTH = {"Hyperscalers": 0.45}

_INDEXES = DEMO_INDEXES
_FX = {c: (level, vol) for c, (level, vol, _drift) in DEMO_FX.items()}
_FX_EPISODE_DRIFT = {c: drift for c, (_level, _vol, drift) in DEMO_FX.items()}
_US_NASDAQ = {"NVDA", "AVGO", "AMD", "MU", "INTC", "MSFT", "GOOGL", "AMZN", "META", "AAPL",
              "TSLA", "SMCI", "MDAI"}
_FLOW_TYPES_CN = ("main_force", "super_large", "large", "medium", "small")


def _epoch(day: dt.date) -> np.datetime64:
    return np.datetime64(day, "D")


def _to_days(dates: list[dt.date]) -> np.ndarray:
    return np.array(dates, dtype="datetime64[D]")


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 Feb
        return day.replace(year=day.year - years, day=28)


def _weekday_shift(days: np.ndarray) -> np.ndarray:
    """Move weekend dates to the next Monday (filings land on business days)."""
    return np.busday_offset(days, 0, roll="forward")


def _prev_weekday(days: np.ndarray) -> np.ndarray:
    return np.busday_offset(days, -1, roll="forward")


def _year_of(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[Y]").astype(np.int64) + 1970


def _rng(seed: int, *keys: int) -> np.random.Generator:
    # Independent streams per component keep each part stable when another changes.
    return np.random.default_rng([seed, *keys])


def _drifts(us_days: np.ndarray, market: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Market and AI factor drift and the factor-noise scale, by (US-lagged) session date."""
    years = _year_of(us_days)
    mu_mkt = np.zeros(len(us_days))
    mu_ai = np.zeros(len(us_days))
    for year in np.unique(years):
        m, a = _YEAR_DRIFT.get(int(year), (0.0004, 0.0008))
        mu_mkt[years == year] = m
        mu_ai[years == year] = a
    lo, hi = _epoch(EPISODE[0]), _epoch(EPISODE[1])
    after = (us_days > hi) & (years == 2025)
    mu_mkt[after], mu_ai[after] = _POST_EPISODE_2025
    inside = (us_days >= lo) & (us_days <= hi)
    sched = np.array([_EPISODE_AI.get(str(d), 0.0) for d in us_days[inside]])
    sens = _EPISODE_SENS[market]
    mu_ai[inside] = sched * sens
    mu_mkt[inside] = sched * sens * _EPISODE_MKT_SHARE[market]
    damp = np.where(inside, _EPISODE_DAMP, 1.0)
    return mu_mkt, mu_ai, damp


def _anchor_index(days: np.ndarray) -> int:
    """Last session on or before the anchor (first session if the range starts later)."""
    return max(int(np.searchsorted(days, _epoch(ANCHOR), side="right")) - 1, 0)


def _round_tick(x: np.ndarray, tick: float) -> np.ndarray:
    """Round to the tick's decimals, at least one tick, in place (x is returned)."""
    decimals = 2 if tick < 1 else 0
    np.round(x, decimals, out=x)
    return np.maximum(x, tick, out=x)


def _fiscal_quarter_ends(fye: int, lo: np.datetime64, hi: np.datetime64) -> np.ndarray:
    months = np.arange(lo.astype("datetime64[M]"), hi.astype("datetime64[M]") + 1)
    month_no = months.astype(np.int64) % 12
    ends = months[(month_no - (fye - 1)) % 3 == 0]
    return (ends + 1).astype("datetime64[D]") - 1


class _Share:
    """Share count events of one security: econ (post-split) shares and as-traded factor."""

    def __init__(self, spec: SecuritySpec, base: float, anchor: np.datetime64,
                 lo: np.datetime64, hi: np.datetime64):
        sid = spec.security_id
        self.base = base
        self.anchor = anchor
        self.steps: list[tuple[np.ndarray, float]] = []
        if sid in PLACEMENTS:
            day, mult = PLACEMENTS[sid]
            self.steps.append((np.array([_epoch(day)]), mult))
        if sid in BUYBACKS:
            self.steps.append((_fiscal_quarter_ends(spec.fye, lo, hi), BUYBACKS[sid]))
        self.split = SPLITS.get(sid)

    @property
    def changes(self) -> bool:
        return bool(self.steps) or self.split is not None

    def econ(self, days: np.ndarray) -> np.ndarray:
        out = np.full(len(days), self.base)
        for event_days, mult in self.steps:
            n = np.searchsorted(event_days, days, side="right")
            n0 = np.searchsorted(event_days, self.anchor, side="right")
            out *= mult ** (n - n0).astype(float)
        return out

    def traded_factor(self, days: np.ndarray) -> np.ndarray:
        """Pre-split sessions trade at `ratio` times the post-split (adjusted) price."""
        if self.split is None:
            return np.ones(len(days))
        day, ratio = self.split
        return np.where(days < _epoch(day), ratio, 1.0)


def _simulate(market: str, days: np.ndarray, specs: list[SecuritySpec],
              shares: list[_Share], seed: int) -> dict[str, np.ndarray]:
    """Daily prices (econ and as traded), volumes and econ share counts, T x N.

    The T x N work is done in place, through one scratch matrix: the same draws in the
    same order and the same floating-point operations on each element as the plain
    expressions in the comments (only products' operands swap, which IEEE multiplication
    leaves exact), so the figures do not change, without a temporary per operation.
    """
    T, N = len(days), len(specs)
    rng = _rng(seed, _MARKET_NO[market], 1)
    us_days = days if market == "US" else _prev_weekday(days)
    mu_mkt, mu_ai, damp = _drifts(us_days, market)
    f_mkt = mu_mkt + _MKT_VOL[market] * damp * rng.standard_normal(T)
    f_ai = mu_ai + _AI_VOL * damp * rng.standard_normal(T)
    inside = damp < 1.0
    f_sec = np.empty((len(SECTORS), T))
    for s, sector in enumerate(SECTORS):
        f_sec[s] = _ROTATION.get(sector, 0.0) * inside + _SECTOR_VOL * damp * rng.standard_normal(T)

    sector_idx = np.array([SECTORS.index(s.sector) for s in specs])
    beta = np.array([_BETA[s.sector] for s in specs]) * np.exp(rng.normal(0, 0.15, N))
    gamma = np.array([s.gamma if s.gamma is not None else _GAMMA[s.sector] for s in specs])
    idio = np.array([_IDIO_VOL[s.sector] for s in specs]) * np.exp(rng.normal(0, 0.2, N))

    tmp = np.empty((T, N))
    # ret = z * idio + outer(f_mkt, beta) + outer(f_ai, gamma) + f_sec[sector_idx].T
    ret = rng.standard_normal((T, N))
    ret *= idio
    ret += np.multiply(f_mkt[:, None], beta, out=tmp)
    ret += np.multiply(f_ai[:, None], gamma, out=tmp)
    ret += np.take(f_sec.T, sector_idx, axis=1, out=tmp, mode="clip")
    for (sid, day), jump in JUMPS.items():
        hit = np.flatnonzero(us_days == _epoch(day))
        col = [i for i, s in enumerate(specs) if s.security_id == sid]
        if hit.size and col:
            ret[hit[0], col[0]] += jump
    ret[0] = 0.0
    # close = price0 * exp(cum - cum[a]), cum the running sum of ret down each column
    close = np.cumsum(ret, axis=0)
    a = _anchor_index(days)
    close -= close[a].copy()
    np.exp(close, out=close)
    close *= np.array([s.price for s in specs])

    vol_day = np.sqrt(idio**2 + (beta * _MKT_VOL[market]) ** 2)
    # open = prev_close * exp(0.3 * ret + z * (0.25 * vol_day)), prev_close = close the day before
    open_ = rng.standard_normal((T, N))
    open_ *= 0.25 * vol_day
    open_ += np.multiply(ret, 0.3, out=tmp)
    np.exp(open_, out=open_)
    open_[1:] *= close[:-1]
    open_[0] *= close[0]
    # high = max(open, close) * exp(|z| * (0.4 * vol_day)); low = min(...) * exp(-|z| * ...)
    high = rng.standard_normal((T, N))
    np.abs(high, out=high)
    high *= 0.4 * vol_day
    np.exp(high, out=high)
    high *= np.maximum(open_, close, out=tmp)
    low = rng.standard_normal((T, N))
    np.abs(low, out=low)
    np.negative(low, out=low)
    low *= 0.4 * vol_day
    np.exp(low, out=low)
    low *= np.minimum(open_, close, out=tmp)

    # Econ share counts: each security's base count, stepped where it has share events;
    # as-traded prices are econ prices times the split factor (1 but for a split's column).
    econ_shares = np.empty((T, N))
    econ_shares[:] = np.array([sh.base for sh in shares])
    splits: list[tuple[int, np.ndarray]] = []
    for i, sh in enumerate(shares):
        if sh.steps:
            econ_shares[:, i] = sh.econ(days)
        if sh.split is not None:
            splits.append((i, sh.traded_factor(days)))
    tick = _TICK[market]
    out: dict[str, np.ndarray] = {}
    for name, mat in (("open", open_), ("high", high), ("low", low), ("close", close.copy())):
        for i, factor in splits:
            mat[:, i] *= factor
        out[name] = _round_tick(mat, tick)
    del open_, high, low
    # adj_close = close / factor: the rounded close itself where no split (x / 1 is x).
    out["adj_close"] = out["close"]
    if splits:
        out["adj_close"] = out["close"].copy()
        for i, factor in splits:
            out["adj_close"][:, i] /= factor
    turn_ai, turn_other = _TURNOVER[market]
    turnover = np.where([s.sector in AI_SECTORS for s in specs], turn_ai, turn_other)
    lot = _LOT[market]
    # volume = (econ_shares / factor) * turnover * exp(0.35 * z) * (1 + 15 |ret|),
    # rounded to whole lots (at least one)
    volume = rng.standard_normal((T, N))
    volume *= 0.35
    np.exp(volume, out=volume)
    np.multiply(econ_shares, turnover, out=tmp)
    for i, factor in splits:
        tmp[:, i] = (econ_shares[:, i] / factor) * turnover[i]
    volume *= tmp
    np.abs(ret, out=tmp)
    tmp *= 15.0
    tmp += 1.0
    volume *= tmp
    del tmp
    volume /= lot
    np.round(volume, out=volume)
    volume *= lot
    out["volume"] = np.maximum(volume, lot, out=volume)
    out["ret"] = ret
    out["close_econ"] = close
    out["shares_econ"] = econ_shares
    out["vol_day"] = np.broadcast_to(vol_day, (T, N))
    return out


@dataclass(frozen=True, eq=False)
class _Block:
    """One market's rows of a daily dataset, ids x sessions, held as T x N matrices (one
    per value column) in memory, or written to `path` (`spool`). The long frame, ordered
    by id then date, with its constant columns (currency, investor type, ...), is cut from
    them only when asked, a range of rows at a time (`rows`): no frame of the whole block
    is ever made, and its ids, dates and labels are never written out as text."""

    dataset: str
    ids: list[str]
    days: np.ndarray
    columns: tuple[str, ...]
    mats: tuple[np.ndarray, ...] = ()  # T x N each, in `columns` order (empty once spooled)
    id_name: str = "security_id"
    consts: tuple[tuple[str, str], ...] = ()
    path: Path | None = None

    @property
    def height(self) -> int:
        return len(self.ids) * len(self.days)

    def rows(self, lo: int, hi: int) -> pl.DataFrame:
        """Rows lo..hi of the long frame (row r is id r // T on session r % T), in
        contract form."""
        T = len(self.days)
        # The ids i0..i1 cover the rows; `cut` is the rows within their T * (i1 - i0).
        i0, i1 = lo // T, -(-hi // T)
        cut = slice(lo - i0 * T, hi - i0 * T)
        if self.path is not None:
            # Spooled id-major, one column after another: a column's rows lie together.
            n = self.height
            values = {c: np.fromfile(self.path, dtype=np.float64, count=hi - lo,
                                     offset=(k * n + lo) * 8)
                      for k, c in enumerate(self.columns)}
        else:
            values = {c: np.ascontiguousarray(m[:, i0:i1].T).ravel()[cut]
                      for c, m in zip(self.columns, self.mats, strict=True)}
        # Row positions as polars' own index type (UInt32): no conversion in the gathers.
        id_pos = np.repeat(np.arange(i1 - i0, dtype=np.uint32), T)[cut]
        day_pos = np.tile(np.arange(T, dtype=np.uint32), i1 - i0)[cut]
        df = pl.DataFrame({
            self.id_name: pl.Series(self.id_name, self.ids[i0:i1], dtype=pl.Utf8).gather(id_pos),
            "trade_date": pl.Series("trade_date", self.days).gather(day_pos),
            **values,
        })
        return _finish_one(self.dataset, df.with_columns(
            **{c: pl.lit(v) for c, v in self.consts}))

    def _id_step(self) -> int:
        return max(1, (PART_ROWS // 4) // max(len(self.days), 1))

    def pieces(self) -> Iterator[pl.DataFrame]:
        """The rows in slices of whole ids, at most PART_ROWS // 4 rows each (one id at
        least): concatenated they are the block's frame, but no slice holds all of it."""
        T, step = len(self.days), self._id_step()
        for a in range(0, len(self.ids), step):
            yield self.rows(a * T, min(a + step, len(self.ids)) * T)

    def spool(self, path: Path) -> _Block:
        """This block with its values written to `path` as raw float64, id-major (the long
        frame's row order), one column after another; the matrices are then let go."""
        step = self._id_step()
        with open(path, "wb") as f:
            for m in self.mats:
                for a in range(0, len(self.ids), step):
                    f.write(np.ascontiguousarray(m[:, a:a + step].T).data)
        return _Block(self.dataset, self.ids, self.days, self.columns, (), self.id_name,
                      self.consts, path)


def _block(dataset: str, ids: list[str], days: np.ndarray, cols: dict[str, np.ndarray],
           id_name: str = "security_id", **consts: str) -> _Block:
    return _Block(dataset, ids, days, tuple(cols), tuple(cols.values()), id_name,
                  tuple(consts.items()))


def _piece_rows(piece: _Block | pl.DataFrame, lo: int, hi: int) -> pl.DataFrame:
    return piece.slice(lo, hi - lo) if isinstance(piece, pl.DataFrame) else piece.rows(lo, hi)


def _cut(pieces: list[_Block | pl.DataFrame], lo: int, hi: int) -> pl.DataFrame:
    """Rows lo..hi of the pieces one after another (a market's dataset)."""
    out, start = [], 0
    for piece in pieces:
        a, b = max(lo, start), min(hi, start + piece.height)
        if a < b:
            out.append(_piece_rows(piece, a - start, b - start))
        start += piece.height
    if not out:  # no rows at all: an empty frame of the dataset's columns
        return _piece_rows(pieces[0], 0, 0)
    return out[0] if len(out) == 1 else pl.concat(out)


def _ohlc_from_close(close: np.ndarray, rng: np.random.Generator, vol: float) -> dict:
    T = len(close)
    prev = np.concatenate([close[:1], close[:-1]])
    ret = np.log(close / prev)
    open_ = prev * np.exp(0.3 * ret + rng.normal(0, 0.25 * vol, T))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.4 * vol, T)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.4 * vol, T)))
    return {k: np.round(v, 2) for k, v in
            {"open": open_, "high": high, "low": low, "close": close}.items()}


def _index_frames(market: str, days: np.ndarray, specs: list[SecuritySpec],
                  sim: dict[str, np.ndarray], seed: int) -> tuple[list[pl.DataFrame], list[pl.DataFrame], dict]:
    """Index levels (cap-weighted, sector-tilted member returns) and valuations."""
    rng = _rng(seed, _MARKET_NO[market], 2)
    close, shares = sim["close_econ"], sim["shares_econ"]
    # mcap_prev = the day before's close * shares (the first day's own); simple = close /
    # the day before's close - 1 (0 the first day): written in place, the same figures.
    mcap_prev = np.empty_like(close)
    np.multiply(close[:-1], shares[:-1], out=mcap_prev[1:])
    mcap_prev[:1] = close[:1] * shares[:1]
    simple = np.empty_like(close)
    np.divide(close[1:], close[:-1], out=simple[1:])
    simple[:1] = close[:1] / close[:1]
    simple -= 1.0
    weights = np.empty_like(close)
    a = _anchor_index(days)
    years_from_anchor = (days - days[a]).astype(np.int64) / 365.25
    levels, valuations, closes = [], [], {}
    for index_id, mkt, _name, level0, pe0, pb0, dy0, growth, tilt in _INDEXES:
        if mkt != market:
            continue
        w = np.array([tilt.get(s.sector, 0.0) for s in specs])
        if not w.any():
            w = np.ones(len(specs))
        # idx_ret = sum(weights * simple) / sum(weights) by day, weights = mcap_prev * w
        np.multiply(mcap_prev, w, out=weights)
        total = weights.sum(axis=1)
        weights *= simple
        idx_ret = weights.sum(axis=1) / total
        cum = np.cumsum(np.log1p(idx_ret))
        close_idx = level0 * np.exp(cum - cum[a])
        ohlc = _ohlc_from_close(close_idx, rng, _MKT_VOL[market])
        closes[index_id] = ohlc["close"]
        levels.append(pl.DataFrame({"index_id": index_id, "trade_date": days, **ohlc}))
        rel = close_idx / close_idx[a]
        valuations.append(pl.DataFrame({
            "index_id": index_id,
            "trade_date": days,
            # Earnings and book grow smoothly, so multiples move with the price.
            "pe_ttm": np.round(pe0 * rel * np.exp(-growth * years_from_anchor), 2),
            "pb": np.round(pb0 * rel * np.exp(-0.08 * years_from_anchor), 3),
            "dividend_yield": np.round(dy0 / rel, 4),
        }))
    return levels, valuations, closes


def _cn_flows(days: np.ndarray, specs: list[SecuritySpec], sim: dict[str, np.ndarray],
              seed: int) -> dict[str, np.ndarray]:
    """Order-size class flows per stock (T x N per class): main force = super large +
    large, and the medium and small classes take the other side, so the five classes net
    to zero."""
    rng = _rng(seed, _MARKET_NO["CN"], 3)
    T, N = len(days), len(specs)
    value = sim["volume"] * sim["close"]
    inside = (days >= _epoch(EPISODE[0])) & (days <= _epoch(EPISODE[1]))
    bias_by_sector = np.array([
        -0.03 if s.sector in AI_SECTORS else {"Banks": 0.02, "Coal": 0.02}.get(s.sector, 0.01)
        for s in specs
    ])
    # In place, the same draws in the same order and the same operations per element as
    # ratio = 0.02 * clip(ret / vol_day, -3, 3) - 0.008 + outer(inside, bias) + 0.02 * z1,
    # main = ratio * value, super_large = round(main * u1 + 0.005 * value * z2),
    # small = round(-main * u2 + 0.005 * value * z3) (main re-summed from the classes).
    tmp = np.empty((T, N))
    main = np.divide(sim["ret"], sim["vol_day"])
    np.clip(main, -3.0, 3.0, out=main)
    main *= 0.02
    main -= 0.008
    main += np.multiply(inside[:, None], bias_by_sector, out=tmp)
    noise = rng.standard_normal((T, N))
    noise *= 0.02
    main += noise
    main *= value
    super_large = rng.uniform(0.45, 0.75, (T, N))
    super_large *= main
    np.multiply(value, 0.005, out=tmp)
    tmp *= rng.standard_normal((T, N), out=noise)
    super_large += tmp
    np.round(super_large, out=super_large)
    large = np.round(main)
    large -= super_large
    main = super_large + large
    small = rng.uniform(0.4, 0.7, (T, N))
    small *= main
    np.negative(small, out=small)
    np.multiply(value, 0.005, out=tmp)
    tmp *= rng.standard_normal((T, N), out=noise)
    small += tmp
    np.round(small, out=small)
    del tmp, noise
    medium = -main - small
    return {"main_force": main, "super_large": super_large, "large": large, "medium": medium,
            "small": small}


def _board_flows(days: np.ndarray, specs: list[SecuritySpec], mats: dict[str, np.ndarray],
                 members: pl.DataFrame) -> pl.DataFrame | None:
    """The AI concept board: the sum of its members' flows on each day they belong."""
    col = {s.security_id: i for i, s in enumerate(specs)}
    total = np.zeros((len(_FLOW_TYPES_CN), len(days)))
    any_member = False
    for sid, valid_from, valid_to in members.select("security_id", "valid_from", "valid_to").iter_rows():
        if sid not in col:
            continue
        mask = np.ones(len(days), dtype=bool)
        if valid_from is not None:
            mask &= days >= _epoch(valid_from)
        if valid_to is not None:
            mask &= days <= _epoch(valid_to)
        for k, typ in enumerate(_FLOW_TYPES_CN):
            total[k] += mats[typ][:, col[sid]] * mask
        any_member = True
    if not any_member:
        return None
    return pl.concat([
        pl.DataFrame({"entity_id": BOARD_AI, "trade_date": days, "net_buy_value": total[k],
                      "investor_type": typ})
        for k, typ in enumerate(_FLOW_TYPES_CN)
    ]).with_columns(flow_scope=pl.lit("board"))


def _market_flows(market: str, days: np.ndarray, index_close: np.ndarray,
                  seed: int) -> pl.DataFrame:
    """Investor-type flows for a whole market: daily for KOSPI, weekly for Tokyo (as JPX
    publishes them), with foreigners selling into the episode."""
    rng = _rng(seed, _MARKET_NO[market], 4)
    if market == "JP":
        # Weekly statistics, dated on the week's last session (Monday-based weeks).
        week = (days.astype(np.int64) + 3) // 7
        last = np.r_[week[1:] != week[:-1], True]
        dates, closes = days[last], index_close[last]
        entity, period, scale, bias_size = "JP:TSE", "week", 2.5e11, -1.5e11
    else:
        dates, closes = days, index_close
        entity, period, scale, bias_size = "KR:KOSPI", "day", 2.5e11, -2.8e11
    prev = np.concatenate([closes[:1], closes[:-1]])
    ret = np.log(closes / prev)
    typical = max(float(np.std(ret)), 1e-6) if len(ret) > 1 else 0.01
    inside = (dates >= _epoch(EPISODE[0])) & (dates <= _epoch(EPISODE[1]))
    bias = np.where(inside, bias_size, 0.0)
    foreign = np.round(scale * ret / typical * 0.5 + bias
                       + 0.6 * scale * rng.standard_normal(len(dates)))
    if market == "JP":
        individual = np.round(-0.6 * foreign + 0.4 * scale * rng.standard_normal(len(dates)))
        institution = -foreign - individual
    else:
        institution = np.round(-0.3 * foreign + 0.4 * scale * rng.standard_normal(len(dates)))
        individual = -foreign - institution
    return pl.concat([
        pl.DataFrame({"entity_id": entity, "trade_date": dates, "net_buy_value": v,
                      "investor_type": typ, "period": period})
        for typ, v in (("foreign", foreign), ("institution", institution),
                       ("individual", individual))
    ]).with_columns(flow_scope=pl.lit("market"))


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def _fx(start: dt.date, end: dt.date, seed: int) -> pl.DataFrame:
    """Reference-rate-like fixings: weekdays without the TARGET holidays."""
    holidays = []
    for y in range(start.year, end.year + 1):
        easter = _easter(y)
        holidays += [dt.date(y, 1, 1), easter - dt.timedelta(2), easter + dt.timedelta(1),
                     dt.date(y, 5, 1), dt.date(y, 12, 25), dt.date(y, 12, 26)]
    all_days = np.arange(_epoch(start), _epoch(end) + 1)
    days = all_days[np.is_busday(all_days, holidays=_to_days(holidays))]
    a = _anchor_index(days)
    inside = (days >= _epoch(EPISODE[0])) & (days <= _epoch(EPISODE[1]))
    frames = []
    for k, (ccy, (level, vol)) in enumerate(_FX.items()):
        rng = _rng(seed, 9, k)
        steps = vol * rng.standard_normal(len(days)) + _FX_EPISODE_DRIFT[ccy] * inside
        steps[0] = 0.0
        cum = np.cumsum(steps)
        rate = level * np.exp(cum - cum[a])
        frames.append(pl.DataFrame({"trade_date": days, "currency": ccy,
                                    "usd_per_unit": np.round(rate, 10)}))
    return pl.concat(frames)


def _fundamentals(specs: list[SecuritySpec], shares: list[_Share], start: dt.date,
                  end: dt.date, seed: int, cik: dict[str, str], stream: tuple[int, ...] = (),
                  sort: bool = True, with_rows: bool = True) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    """Filings as reported plus the share counts they carry.

    US: 10-Q income lines are the discrete quarter, cash-flow lines year-to-date, the 10-K
    the fiscal year. CN, KR, JP: every quarterly report is cumulative (year-to-date), the
    annual report the fiscal year. fiscal_year is the calendar year the fiscal year ends in.
    `with_rows=False` skips the fundamentals' rows (None then): the share counts alone.
    """
    rng = _rng(seed, 7, *stream)
    first = _years_before(start, 1) - dt.timedelta(days=92)
    m_first = np.datetime64(first, "M").astype(np.int64)
    m_last = np.datetime64(end, "M").astype(np.int64)
    fye0 = np.array([s.fye - 1 for s in specs])  # 0-based fiscal year-end month
    # First fiscal year start per security: the fiscal year that contains `first`.
    fy_start_lo = m_first + (fye0 - m_first % 12) % 12 - 11
    months = np.arange(fy_start_lo.min(), m_last + 1)
    grid = ((months[None, :] - fye0[:, None]) % 3 == 0) & (months[None, :] >= fy_start_lo[:, None] + 2)
    sec_i, mon_j = np.nonzero(grid)
    mi = months[mon_j]
    to_fy_end = (fye0[sec_i] - mi % 12) % 12
    fq = 4 - to_fy_end // 3
    fy_end = mi + to_fy_end
    period_end = (mi + 1).astype("datetime64[M]").astype("datetime64[D]") - 1
    q_start = (mi - 2).astype("datetime64[M]").astype("datetime64[D]")
    fy_start = (fy_end - 11).astype("datetime64[M]").astype("datetime64[D]")
    fiscal_year = fy_end // 12 + 1970
    markets = np.array([s.market for s in specs])[sec_i]

    lag = np.empty(len(mi), dtype=np.int64)
    k = len(mi)
    us = markets == "US"
    lag[us] = np.where(fq[us] == 4, rng.integers(55, 66, k)[us], rng.integers(25, 46, k)[us])
    cn = markets == "CN"
    cn_lag = np.select([fq == 1, fq == 2, fq == 3], [rng.integers(20, 30, k), rng.integers(45, 60, k),
                                                     rng.integers(20, 30, k)], rng.integers(85, 116, k))
    lag[cn] = cn_lag[cn]
    other = ~(us | cn)
    lag[other] = np.where(fq[other] == 4, rng.integers(80, 91, k)[other],
                          rng.integers(38, 46, k)[other])
    filed = _weekday_shift(period_end + lag)

    anchor = _epoch(ANCHOR)
    t_years = (period_end - anchor).astype(np.int64) / 365.25
    sector = np.array([s.sector for s in specs])[sec_i]
    mcap = np.array([s.mcap_bn * 1e9 for s in specs])[sec_i]
    pe = np.array([s.pe for s in specs])[sec_i]
    margin = np.array([_MARGIN_OVERRIDE.get(s.security_id, _MARGIN[s.sector]) for s in specs])[sec_i]
    growth = np.array([0.15 if s.pe < 0 else _NI_GROWTH[s.sector] for s in specs])[sec_i]
    capex_ratio = np.array([_CAPEX_RATIO[s.sector] for s in specs])[sec_i]
    capex_growth = np.array([_CAPEX_GROWTH.get(s.sector, 0.05) for s in specs])[sec_i]
    base_q = mcap / np.abs(pe) / 4.0
    trend = np.exp(growth * t_years)
    ni = np.sign(pe) * base_q * trend * (1 + 0.05 * rng.standard_normal(k))
    revenue = base_q / margin * trend * (1 + 0.03 * rng.standard_normal(k))
    capex = revenue * capex_ratio * np.exp((capex_growth - growth) * t_years) * (1 + 0.05 * rng.standard_normal(k))
    ocf = ni * np.where(sector == "Banks", 1.1, 1.3) + 0.05 * revenue

    shares_pe = np.array([sh.base for sh in shares])[sec_i]
    for i in [i for i, sh in enumerate(shares) if sh.changes]:
        rows = sec_i == i
        shares_pe[rows] = shares[i].econ(period_end[rows]) / shares[i].traded_factor(period_end[rows])
    shares_pe = np.round(shares_pe)

    ids = pl.Series([s.security_id for s in specs], dtype=pl.Utf8).gather(sec_i)
    ccy = pl.Series([CURRENCY[s.market] for s in specs], dtype=pl.Utf8).gather(sec_i)
    q = pl.DataFrame({
        "security_id": ids, "market": markets, "currency": ccy, "fq": fq, "fiscal_year": fiscal_year,
        "period_end": period_end, "q_start": q_start, "fy_start": fy_start, "filed_date": filed,
        "revenue": np.round(revenue, -3), "net_income": np.round(ni, -3),
        "capex": np.round(capex, -3), "operating_cash_flow": np.round(ocf, -3),
        "shares": shares_pe,
    })
    q = q.with_columns(
        pl.col(m).cum_sum().over("security_id", "fiscal_year").alias(f"{m}_ytd")
        for m in ("revenue", "net_income", "capex", "operating_cash_flow")
    ).with_columns(
        eps_q=(pl.col("net_income") / pl.col("shares")).round(2),
        eps_ytd=(pl.col("net_income_ytd") / pl.col("shares")).round(2),
    )
    q = q.filter(pl.col("filed_date") <= end)

    forms_other = {m: d.report_forms for m, d in DEMO_MARKETS.items() if m != "US"}
    form_expr = pl.when(pl.col("market") == "US").then(
        pl.when(pl.col("fq") == 4).then(pl.lit("10-K")).otherwise(pl.lit("10-Q")))
    for mkt, names in forms_other.items():
        form_expr = form_expr.when(pl.col("market") == mkt).then(
            pl.col("fq").replace_strict({i + 1: f for i, f in enumerate(names)}, return_dtype=pl.Utf8))
    cik_s = pl.col("security_id").replace_strict(cik, default=None, return_dtype=pl.Utf8)
    q = q.with_row_index("seq").with_columns(
        form=form_expr.otherwise(pl.lit(None, pl.Utf8)),
        fiscal_period=pl.when(pl.col("fq") == 4).then(pl.lit("FY"))
        .otherwise(pl.lit("Q") + pl.col("fq").cast(pl.Utf8)),
        accession=pl.when(pl.col("market") == "US").then(
            cik_s.str.zfill(10) + pl.lit("-") + (pl.col("filed_date").dt.year() % 100).cast(pl.Utf8).str.zfill(2)
            + pl.lit("-") + (pl.col("seq") + 1).cast(pl.Utf8).str.zfill(6)),
    )

    # The restatement: the original 10-Q overstated income; the 10-Q/A has the figure
    # the later filings (and the 10-K) are consistent with.
    restated = q.filter(
        (pl.col("security_id") == RESTATED) & (pl.col("fq") < 4)
        & (pl.col("filed_date") <= end - dt.timedelta(days=150))
    ).tail(1)
    if restated.height:
        amended_on = restated["filed_date"][0] + dt.timedelta(days=91)
        amended_on += dt.timedelta(days=(7 - amended_on.weekday()) % 7 if amended_on.weekday() >= 5 else 0)
        amend = restated.with_columns(
            filed_date=pl.lit(amended_on, pl.Date),
            form=pl.lit("10-Q/A"),
            accession=pl.col("accession").str.slice(0, 14) + pl.lit("900001"),
        )
        key = restated.select("security_id", "fiscal_year", "fq").row(0)
        hit = ((pl.col("security_id") == key[0]) & (pl.col("fiscal_year") == key[1])
               & (pl.col("fq") == key[2]))
        q = q.with_columns(
            pl.when(hit).then((pl.col(c) * RESTATEMENT_FACTOR * per_unit).round(0) / per_unit)
            .otherwise(pl.col(c)).alias(c)
            for c, per_unit in (("revenue", 1e-3), ("net_income", 1e-3), ("eps_q", 100.0))
        )
        q = pl.concat([q, amend.filter(pl.col("filed_date") <= end)], how="vertical_relaxed")

    # Share counts as carried by each original filing (as of the period end).
    counts = (q.filter(~pl.col("form").is_in(["10-Q/A"]))
              .select("security_id", pl.col("period_end").alias("as_of_date"), "shares", "filed_date"))
    if not with_rows:
        return None, counts
    blocks = []
    common = [pl.col("security_id"), pl.col("period_end"), pl.col("fiscal_year"),
              pl.col("fiscal_period"), pl.col("filed_date"), pl.col("form"), pl.col("accession")]
    # The three kinds of filing, each filtered once (not once per metric).
    us_q = q.filter((pl.col("market") == "US") & (pl.col("fq") < 4))
    annual = q.filter(pl.col("fq") == 4)
    other_q = q.filter((pl.col("market") != "US") & (pl.col("fq") < 4))
    metrics = {"revenue": ("revenue", "revenue_ytd"), "net_income": ("net_income", "net_income_ytd"),
               "eps_diluted": ("eps_q", "eps_ytd"), "capex": ("capex", "capex_ytd"),
               "operating_cash_flow": ("operating_cash_flow", "operating_cash_flow_ytd")}
    for metric, (disc, ytd) in metrics.items():
        unit = pl.col("currency") + pl.lit("/share") if metric == "eps_diluted" else pl.col("currency")
        income = metric in ("revenue", "net_income", "eps_diluted")

        def block(kind: pl.DataFrame, value: str, basis: str, period_start: str,
                  metric: str = metric, unit: pl.Expr = unit) -> pl.DataFrame:
            return kind.select(
                *common, pl.lit(metric).alias("metric"), pl.col(period_start).alias("period_start"),
                pl.lit(basis).alias("value_basis"), pl.col(value).alias("value"), unit.alias("unit"))

        if income:
            blocks.append(block(us_q, disc, "discrete", "q_start"))
        else:
            blocks.append(block(us_q, ytd, "ytd", "fy_start"))
        blocks.append(block(other_q, ytd, "ytd", "fy_start"))
        blocks.append(block(annual, ytd, "discrete", "fy_start"))
    fundamentals = pl.concat(blocks).with_columns(source=pl.lit(SOURCE))
    if sort:
        fundamentals = fundamentals.sort(*_FILING_ORDER)
    return fundamentals, counts


_FILING_ORDER = ("security_id", "metric", "period_end", "filed_date")


def _share_rows(specs: list[SecuritySpec], shares: list[_Share], counts: pl.DataFrame,
                start: dt.date, end: dt.date) -> pl.DataFrame:
    """Quarterly counts from filings plus the corporate-action rows (split, placement),
    which are known on the day they take effect so that market cap stays continuous."""
    events = []
    for spec, sh in zip(specs, shares, strict=True):
        days = [e[0] for e in (SPLITS.get(spec.security_id), PLACEMENTS.get(spec.security_id)) if e]
        for day in days:
            if start <= day <= end:
                d = np.array([_epoch(day)])
                count = float(np.round(sh.econ(d) / sh.traded_factor(d))[0])
                events.append((spec.security_id, day, count))
    ev = pl.DataFrame(events, schema={"security_id": pl.Utf8, "as_of_date": pl.Date, "shares": pl.Float64},
                      orient="row").with_columns(filed_date=pl.col("as_of_date"))
    out = pl.concat([counts.select(ev.columns), ev])
    return (out.unique(["security_id", "as_of_date"], keep="last", maintain_order=True)
            .with_columns(share_class=pl.lit("total"), source=pl.lit(SOURCE))
            .sort("security_id", "as_of_date"))


def _securities(specs: list[SecuritySpec]) -> tuple[pl.DataFrame, dict[str, str]]:
    cik: dict[str, str] = {}
    rows = []
    for k, s in enumerate(specs):
        market, code = s.market, s.code
        if market == "US":
            mic = "XNAS" if (code in _US_NASDAQ or (code.startswith("Z") and s.sector in AI_SECTORS)) else "XNYS"
            board = "Nasdaq" if mic == "XNAS" else "NYSE"
            # Above the range of CIKs the SEC has issued, so never a real filer's.
            cik[s.security_id] = str(9_900_000 + 17 * k)
            symbol = code
        elif market == "CN":
            num, suffix = code.split(".")
            mic = "XSHG" if suffix == "SH" else "XSHE"
            board = ("STAR" if num.startswith(("688", "689")) else
                     "ChiNext" if num.startswith(("300", "301")) else "Main Board")
            symbol = num
        else:
            mic, board, symbol = DEMO_MARKETS[market].mic, DEMO_MARKETS[market].board, code
        rows.append({
            "security_id": s.security_id, "market": market, "exchange_mic": mic, "symbol": symbol,
            "name": s.name, "name_local": s.name_local, "currency": CURRENCY[market],
            "sector": s.sector, "industry": s.industry, "listing_board": board,
            "is_ai": s.sector in AI_SECTORS, "cik": cik.get(s.security_id), "source": SOURCE,
        })
    return pl.DataFrame(rows, schema=DATASETS["securities"].schema), cik


def _baskets(specs: list[SecuritySpec]) -> pl.DataFrame:
    present = {s.security_id: s for s in specs}
    rows: list[tuple[str, str, dt.date | None]] = []

    def add(basket: str, ids: list[str] | tuple[str, ...]) -> None:
        for sid in ids:
            if sid in present:
                since = BOARD_JOINER[1] if (basket == "CN_AI" and sid == BOARD_JOINER[0]) else None
                rows.append((basket, sid, since))

    def where(market: str, sectors: tuple[str, ...] | frozenset[str]) -> list[str]:
        return [s.security_id for s in specs if s.market == market and s.sector in sectors]

    add("US_AI_BIG8", US_AI_BIG8)
    add("US_TOP5_CAPEX", US_TOP5_CAPEX)
    add("CN_AI", CN_AI)
    add("CN_DIVIDEND", where("CN", ("Banks", "Coal", "Utilities")))
    add("CN_BANKS", where("CN", ("Banks",)))
    add("CN_COAL", where("CN", ("Coal",)))
    add("CN_CONSUMER", where("CN", ("Consumer",)))
    for code, d in DEMO_MARKETS.items():
        if d.ai_basket:
            add(d.ai_basket, where(code, AI_SECTORS))
    return pl.DataFrame(
        rows, schema={"basket_id": pl.Utf8, "security_id": pl.Utf8, "valid_from": pl.Date},
        orient="row",
    ).with_columns(valid_to=pl.lit(None, pl.Date), source=pl.lit(SOURCE))


def _finish_one(name: str, df: pl.DataFrame) -> pl.DataFrame:
    """Contract column order and types; every row says it is synthetic."""
    if "source" not in df.columns:
        df = df.with_columns(source=pl.lit(SOURCE))
    return df.select([pl.col(c).cast(t) for c, t in DATASETS[name].schema.items()])


def _finish(frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    return {name: _finish_one(name, df) for name, df in frames.items()}


# The most rows `fetch_parts` hands over at once (a market's table is read in slices).
PART_ROWS = 2_000_000

# The datasets generated market by market (from one simulation of the market's prices);
# the others are small and made from the universe alone.
MARKET_DATASETS = ("prices_daily", "index_levels_daily", "index_valuation_daily",
                   "fund_flows_daily")


@dataclass(frozen=True)
class _Plan:
    """The universe of one parameter set: small (specs and share events, no daily rows)."""

    seed: int
    start: dt.date
    end: dt.date
    specs: list[SecuritySpec]
    securities: pl.DataFrame
    cik: dict[str, str]
    baskets: pl.DataFrame
    shares: list[_Share]


@lru_cache(maxsize=2)
def _plan(n_securities: int, years: int, seed: int, end: dt.date) -> _Plan:
    if years < 1:
        raise ValueError(f"years={years}: the demo needs at least one year")
    start = _years_before(end, years)
    specs = universe(n_securities, _rng(seed, 0))
    securities, cik = _securities(specs)
    baskets = _baskets(specs)
    anchor = _epoch(ANCHOR)
    lo = _epoch(_years_before(start, 2))
    hi = _epoch(end) + 366
    shares = [_Share(s, s.mcap_bn * 1e9 / s.price, anchor, lo, hi) for s in specs]
    return _Plan(seed, start, end, specs, securities, cik, baskets, shares)


def _market_blocks(plan: _Plan, market: str
                   ) -> Iterator[tuple[str, _Block | pl.DataFrame]]:
    """The daily datasets of one market as (dataset, piece), each dataset's pieces in its
    row order, produced only when asked: a `_Block` of matrices for the per-security
    datasets, a small frame in contract form for the index and market-wide series.

    One market's simulation is the only T x N state held: the long frames are cut from
    its matrices later, a range of rows at a time (China's five flow classes at 18,000 x
    10 are 60 M rows, about 4 GB as one frame with its copies), and matrices no later
    dataset needs are dropped as soon as their block is out. Every market's random draws
    come from its own seeded generators, one per component, so a market comes out the
    same alone or with the others, and in slices or whole.
    """
    specs, seed, start, end = plan.specs, plan.seed, plan.start, plan.end
    idx = [i for i, s in enumerate(specs) if s.market == market]
    days = _to_days(trading_days(market, start, end))
    if not len(days) or not idx:
        return
    m_specs = [specs[i] for i in idx]
    m_shares = [plan.shares[i] for i in idx]
    sim = _simulate(market, days, m_specs, m_shares, seed)
    ids = [s.security_id for s in m_specs]
    yield "prices_daily", _block("prices_daily", ids, days, {
        k: sim[k] for k in ("open", "high", "low", "close", "adj_close", "volume")},
        currency=CURRENCY[market])
    for k in ("open", "high", "low", "adj_close"):
        del sim[k]
    levels, valuations, closes = _index_frames(market, days, m_specs, sim, seed)
    del sim["close_econ"], sim["shares_econ"]
    for df in levels:
        yield "index_levels_daily", _finish_one("index_levels_daily", df)
    for df in valuations:
        yield "index_valuation_daily", _finish_one("index_valuation_daily", df)
    flows: list[pl.DataFrame] = []
    if market == "CN":
        mats = _cn_flows(days, m_specs, sim, seed)
        del sim
        cn = dict(period=pl.lit("day"), currency=pl.lit("CNY"))
        for typ in _FLOW_TYPES_CN:
            yield "fund_flows_daily", _block(
                "fund_flows_daily", ids, days, {"net_buy_value": mats[typ]}, id_name="entity_id",
                investor_type=typ, flow_scope="security", period="day", currency="CNY")
        board = _board_flows(days, m_specs, mats,
                             plan.baskets.filter(pl.col("basket_id") == "CN_AI"))
        if board is not None:
            yield "fund_flows_daily", _finish_one("fund_flows_daily", board.with_columns(**cn))
        return
    del sim
    if market == "KR":
        flows.append(_market_flows("KR", days, closes["KR:KOSPI"], seed))
    elif market == "JP":
        # Weeks are cut on the full calendar so a week straddling `end` is left out.
        ext = _to_days(trading_days("JP", start, end + dt.timedelta(days=7)))
        jp_close = np.interp(ext.astype(np.int64), days.astype(np.int64), closes["JP:N225"])
        jp = _market_flows("JP", ext, jp_close, seed)
        flows.append(jp.filter(pl.col("trade_date") <= end))
    for f in flows:
        yield "fund_flows_daily", _finish_one("fund_flows_daily", f.with_columns(
            currency=pl.lit(CURRENCY[market_of(f["entity_id"][0])])))


def _market_pieces(plan: _Plan, market: str) -> Iterator[tuple[str, pl.DataFrame]]:
    """`_market_blocks` as frames in contract form: each block in slices of whole ids
    (`_Block.pieces`), so no market's frame is made whole."""
    for name, piece in _market_blocks(plan, market):
        if isinstance(piece, _Block):
            for df in piece.pieces():
                yield name, df
        else:
            yield name, piece


def _market_part(plan: _Plan, market: str) -> dict[str, pl.DataFrame]:
    """One market's daily datasets in contract form (a dataset the market lacks is absent)."""
    pieces: dict[str, list[pl.DataFrame]] = {}
    for name, df in _market_pieces(plan, market):
        pieces.setdefault(name, []).append(df)
    return {name: pl.concat(frames) for name, frames in pieces.items()}


def _filings(plan: _Plan, with_rows: bool = True) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    """Fundamentals and the share counts they imply. Filings draw from a stream per market
    (the first four share one), so adding a market leaves the others' filings as they were.
    `with_rows=False`: the share counts alone (fundamentals None), without building the
    fundamentals' rows, which draw nothing, so the counts are the same."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, s in enumerate(plan.specs):
        d = DEMO_MARKETS[s.market]
        groups.setdefault(() if d.legacy_order else (d.stream,), []).append(i)
    # The generator makes one filing row per _FILING_ORDER key, so the order after the
    # one sort of the whole is the same whether or not each group was sorted before;
    # sorting each group too cost a second copy of the 4.2 M rows at 18,000 x 10.
    parts = [_fundamentals([plan.specs[i] for i in idx], [plan.shares[i] for i in idx],
                           plan.start, plan.end, plan.seed, plan.cik, stream=key,
                           sort=len(groups) == 1, with_rows=with_rows)
             for key, idx in groups.items()]
    counts = pl.concat([p[1] for p in parts])
    if not with_rows:
        return None, counts
    fundamentals = pl.concat([p[0] for p in parts if p[0] is not None])
    del parts
    if len(groups) > 1:
        fundamentals = fundamentals.sort(*_FILING_ORDER)
    return fundamentals, counts


def _static(plan: _Plan, dataset: str) -> pl.DataFrame:
    """A dataset made from the universe alone, in contract form."""
    if dataset in ("fundamentals", "shares_outstanding"):
        # Share counts need the filings but not the fundamentals' rows.
        fundamentals, counts = _filings(plan, with_rows=dataset == "fundamentals")
        # The filings' intermediate frames (GBs at 18,000 x 10) stay in the allocators'
        # caches otherwise, under the landing gate's own memory.
        release_memory()
        if fundamentals is not None:
            df = fundamentals
        else:
            df = _share_rows(plan.specs, plan.shares, counts, plan.start, plan.end)
    elif dataset == "indexes":
        df = pl.DataFrame(
            [(i[0], i[1], i[2], CURRENCY[i[1]]) for i in _INDEXES
             if any(s.market == i[1] for s in plan.specs)],
            schema={"index_id": pl.Utf8, "market": pl.Utf8, "name": pl.Utf8,
                    "currency": pl.Utf8},
            orient="row",
        )
    elif dataset == "fx_rates_daily":
        df = _fx(plan.start, plan.end, plan.seed)
    elif dataset == "securities":
        df = plan.securities
    elif dataset == "baskets":
        df = plan.baskets
    else:
        raise KeyError(dataset)
    return _finish({dataset: df})[dataset]


def _generate(n_securities: int, years: int, seed: int, end: dt.date) -> dict[str, pl.DataFrame]:
    """The whole market in memory at once (for snapshots and tests; the extract assets
    stream it market by market through `DemoSource.fetch_parts` instead)."""
    plan = _plan(n_securities, years, seed, end)
    parts = [_market_part(plan, m) for m in MARKET_ORDER]
    frames = {name: pl.concat([p[name] for p in parts if name in p]) for name in MARKET_DATASETS}
    frames.update({name: _static(plan, name) for name in DATASETS if name not in frames})
    return {name: frames[name] for name in DATASETS}


class _Spool:
    """The daily datasets of one parameter set, market by market, on disk.

    Generated on first use, one market at a time (`_market_blocks`), into a temporary
    folder that goes away with this object (or the process): each block's values go to a
    file of raw float64 in the long frame's row order, a slice of ids at a time; the
    small index and market-wide frames are kept as they are. Each extract asset then cuts
    its dataset's rows from them in slices (`DemoSource.fetch_parts`), so the process
    holds one market's simulation and one slice, never a market's frames whole. Raw
    values, not Parquet: the ids, dates and labels are rebuilt on the read from the
    block's own, so nothing is encoded, compressed, hashed into dictionaries or decoded
    again (that was most of the spool's CPU, for a file read once).
    """

    def __init__(self, plan: _Plan):
        self._dir = tempfile.TemporaryDirectory(prefix="selloff-demo-")
        # Per dataset, the pieces of each market that has it, in market order.
        self.parts: dict[str, list[list[_Block | pl.DataFrame]]] = {
            name: [] for name in MARKET_DATASETS}
        for market in MARKET_ORDER:
            pieces: dict[str, list[_Block | pl.DataFrame]] = {}
            for k, (name, piece) in enumerate(_market_blocks(plan, market)):
                if isinstance(piece, _Block):
                    piece = piece.spool(Path(self._dir.name) / f"{name}.{market}.{k}.f64")
                pieces.setdefault(name, []).append(piece)
            for name, market_pieces in pieces.items():
                self.parts[name].append(market_pieces)
            # The market's matrices are freed but stay in the allocators' caches; hand
            # them back before the next market (and the landing).
            release_memory()


@lru_cache(maxsize=2)
def _spool(n_securities: int, years: int, seed: int, end: dt.date) -> _Spool:
    return _Spool(_plan(n_securities, years, seed, end))


class DemoSource(Source):
    """A seeded synthetic market: same parameters, same frames, in any process."""

    name = "demo"
    synthetic = True

    def __init__(self, n_securities: int = 0, years: int = 2, seed: int = 20251104,
                 end: dt.date = dt.date(2025, 12, 31)):
        # 0: every core name of every demo market (demo_universe.CORE).
        self.n_securities = int(n_securities) or len(CORE)
        self.years = int(years)
        self.seed = int(seed)
        # Nothing after today: a demo run on an earlier date simply ends there.
        self.end = min(end, dt.date.today())

    def _params(self) -> tuple[int, int, int, dt.date]:
        return self.n_securities, self.years, self.seed, self.end

    def frames(self) -> dict[str, pl.DataFrame]:
        """Every dataset at once, in memory (snapshot export); not cached."""
        return _generate(*self._params())

    def fetch(self, dataset: str) -> pl.DataFrame:
        return pl.concat(list(self.fetch_parts(dataset)))

    def fetch_parts(self, dataset: str) -> Iterator[pl.DataFrame]:
        """The daily datasets market by market, in slices of at most PART_ROWS rows (from
        the on-disk spool); the rest whole. Parts never share a key: a market's ids carry
        its prefix, and within a market the generator makes every key once."""
        if dataset not in DATASETS:
            raise KeyError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")
        if dataset not in MARKET_DATASETS:
            yield _static(_plan(*self._params()), dataset)
            return
        for pieces in _spool(*self._params()).parts[dataset]:
            # Slices of one market, in row order: concatenated they are the market's frame.
            rows = sum(piece.height for piece in pieces)
            for offset in range(0, max(rows, 1), PART_ROWS):
                yield _cut(pieces, offset, offset + PART_ROWS)

    def describe(self) -> dict:
        return {"name": self.name, "synthetic": True, "n_securities": self.n_securities,
                "years": self.years, "seed": self.seed, "end": self.end.isoformat()}


def export_demo_snapshot(folder: str | Path, *, fmt: str = "parquet", **params: Any) -> Path:
    """Write the demo market as a snapshot folder (manifest marked synthetic).

    `params` are DemoSource's (n_securities, years, seed, end); `fmt` is parquet or csv.
    """
    source = DemoSource(**params)
    d = source.describe()
    return write_snapshot(
        source.frames(), folder,
        name="demo",
        description=(f"Synthetic demo market: {d['n_securities']} securities in "
                     f"{', '.join(MARKET_ORDER)}, "
                     f"{d['years']} years to {d['end']}, seed {d['seed']}, with a scripted AI "
                     "sell-off in Oct-Nov 2025."),
        provenance="Generated by selloff.sources.demo (numpy default_rng, seeded); no market data.",
        licence="Synthetic data, free to use.",
        caveats=[
            "Every figure is simulated; tickers and names are borrowed only so that the claim "
            "registry's baskets resolve. Do not read them as facts about those companies.",
            "adj_close adjusts for splits only (no dividends).",
        ],
        synthetic=True,
        fmt=fmt,
    )
