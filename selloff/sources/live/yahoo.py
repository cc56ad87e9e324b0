"""Yahoo Finance through yfinance: daily prices, index levels, share counts.

Yahoo's chart API returns prices adjusted for splits (`Close`) and for splits and
dividends (`Adj Close`); the price as traded is not sent. With auto_adjust=False and the
split events (`Stock Splits`, e.g. 10.0 for a 10-for-1 split on its ex-date) the adapter
undoes the split adjustment: close as traded on day d = Close(d) x the product of the
ratios of every split after d, volume as traded = Volume / that product. The history is
therefore fetched from the window start up to today, since a split after the window
(SoftBank Group's 1:4 of 2026-01-01) still changes the window's Close. Share counts
(get_shares_full) are as reported, not adjusted.

Unofficial API, personal use (see docs/LIVE_SOURCES.md). Tests mock at the yfinance
boundary (Ticker.history / Ticker.get_shares_full) with frames in yfinance's shape.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import pandas as pd
import polars as pl

from selloff.calendars import calendar_bounds, is_trading_day
from selloff.sources.live.common import FetchLog, clip_window, require_rows, typed_frame
from selloff.sources.live.errors import EmptyAnswer, MalformedPayload
from selloff.sources.live.http import RetryPolicy, TokenBucket, call_with_retry
from selloff.sources.live.universe import IndexSpec, SecuritySpec

log = logging.getLogger("selloff.sources.live")

SOURCE = "Yahoo Finance"
PRICE_COLUMNS = ("Open", "High", "Low", "Close", "Adj Close", "Volume")
SHARES_LOOKBACK_DAYS = 400
_YAHOO_SUFFIX = {"SH": "SS", "SZ": "SZ", "BJ": "BJ"}
_FROM_YAHOO_SUFFIX = {"SS": "SH", "SZ": "SZ", "BJ": "BJ"}


def yahoo_symbol(spec: SecuritySpec) -> str:
    """security_id -> Yahoo symbol: US:BRK.B -> BRK-B, CN:600519.SH -> 600519.SS,
    CN:300308.SZ -> 300308.SZ, KR:005930 -> 005930.KS (.KQ on KOSDAQ), JP:9984 -> 9984.T."""
    if spec.yahoo:
        return spec.yahoo
    market, code = spec.market, spec.code
    if market == "US":
        return code.replace(".", "-")
    if market == "CN":
        num, _, suffix = code.partition(".")
        return f"{num}.{_YAHOO_SUFFIX[suffix]}"
    if market == "KR":
        board = (spec.listing_board or "").upper()
        return f"{code}.KQ" if board == "KOSDAQ" else f"{code}.KS"
    if market == "JP":
        return f"{code}.T"
    raise ValueError(f"no Yahoo symbol rule for {spec.security_id}")


def security_id_from_yahoo(symbol: str) -> str:
    """The inverse of yahoo_symbol for the default rules: 600519.SS -> CN:600519.SH."""
    head, _, suffix = symbol.rpartition(".")
    if suffix in _FROM_YAHOO_SUFFIX and head.isdigit():
        return f"CN:{head}.{_FROM_YAHOO_SUFFIX[suffix]}"
    if suffix in ("KS", "KQ"):
        return f"KR:{head}"
    if suffix == "T":
        return f"JP:{head}"
    return f"US:{symbol.replace('-', '.')}"


def _yf_ticker_factory() -> Callable[[str], Any]:
    import yfinance as yf

    return yf.Ticker


def _error_kwargs() -> dict[str, Any]:
    """Make yfinance raise instead of logging and returning an empty frame.

    yfinance >= 0.2.60 moved this from history(raise_errors=True) (now deprecated) to
    yf.config.debug.hide_exceptions; both give the same behaviour.
    """
    import yfinance as yf

    config = getattr(yf, "config", None)
    if config is not None and hasattr(config, "debug"):
        config.debug.hide_exceptions = False
        return {}
    return {"raise_errors": True}


def _is_missing(exc: BaseException) -> bool:
    """yfinance's 'no data' exceptions (no prices in range, unknown/delisted symbol)."""
    return any(c.__name__ == "YFTickerMissingError" for c in type(exc).__mro__)


def _local_dates(index: Any, target: str) -> list[dt.date]:
    if not isinstance(index, pd.DatetimeIndex):
        try:
            index = pd.DatetimeIndex(index)
        except (TypeError, ValueError):
            raise MalformedPayload(SOURCE, target, "index", "not dates") from None
    # yfinance stamps daily bars at midnight in the exchange's time zone: the local date.
    return [ts.date() for ts in index]


class YahooAdapter:
    name = SOURCE

    def __init__(self, policy: RetryPolicy, log: FetchLog, *,
                 ticker_factory: Callable[[str], Any] | None = None,
                 today: dt.date | None = None, rate_per_second: float = 2.0):
        self.policy = policy
        self.log = log
        self.today = today
        self._factory = ticker_factory
        self._kwargs: dict[str, Any] | None = {} if ticker_factory is not None else None
        self.bucket = TokenBucket(rate_per_second)
        # symbol -> (first day asked, history, reason): prices and share counts of a
        # symbol share one request.
        self._history: dict[str, tuple[dt.date, pd.DataFrame | None, str]] = {}

    def _ticker(self, symbol: str) -> Any:
        if self._factory is None:
            self._factory = _yf_ticker_factory()
        if self._kwargs is None:
            self._kwargs = _error_kwargs()
        return self._factory(symbol)

    def _call(self, target: str, fn: Callable[[], Any]) -> Any:
        def once() -> Any:
            self.bucket.acquire()
            return fn()

        return call_with_retry(SOURCE, target, once, self.policy, deadline=True)

    def history(self, symbol: str, start: dt.date) -> tuple[pd.DataFrame | None, str]:
        """Daily bars from `start` to today (see module doc), or (None, reason) when Yahoo
        has none."""
        cached = self._history.get(symbol)
        if cached is not None and cached[0] <= start:
            return cached[1], cached[2]
        hist, reason = self._fetch_history(symbol, start)
        self._history[symbol] = (start, hist, reason)
        return hist, reason

    def splits(self, symbol: str, start: dt.date) -> list[tuple[dt.date, float]]:
        """(ex-date, ratio) of the splits Yahoo reports since `start`."""
        hist, _reason = self.history(symbol, start)
        if hist is None or hist.empty or "Stock Splits" not in hist.columns:
            return []
        ratios = pd.to_numeric(hist["Stock Splits"], errors="coerce").fillna(0.0)
        return [(d, float(r)) for d, r in zip(_local_dates(hist.index, symbol), ratios, strict=True)
                if r > 0 and r != 1.0 and d >= start]

    def _fetch_history(self, symbol: str, start: dt.date) -> tuple[pd.DataFrame | None, str]:
        today = self.today or dt.date.today()
        target = f"{symbol} history {start}..{today}"
        ticker = self._ticker(symbol)

        def fetch() -> Any:
            try:
                return ticker.history(start=start.isoformat(),
                                      end=(today + dt.timedelta(days=1)).isoformat(),
                                      interval="1d", auto_adjust=False, actions=True,
                                      timeout=self.policy.read_timeout, **(self._kwargs or {}))
            except Exception as exc:
                if _is_missing(exc):
                    return exc
                raise

        hist = self._call(target, fetch)
        if isinstance(hist, Exception):
            return None, str(hist)
        if hist is None or not isinstance(hist, pd.DataFrame):
            raise MalformedPayload(SOURCE, target, "<history>",
                                   f"expected a DataFrame, got {type(hist).__name__}")
        return hist, ""

    def _bars(self, symbol: str, start: dt.date, end: dt.date, *, unadjust: bool,
              market: str) -> tuple[pl.DataFrame | None, str, str]:
        # From the share-count lookback on, so share_outstanding reuses this request.
        hist, reason = self.history(symbol, start - dt.timedelta(days=SHARES_LOOKBACK_DAYS))
        target = f"{symbol} history {start}..{end}"
        if hist is None or hist.empty:
            return None, target, reason
        missing = [c for c in PRICE_COLUMNS if c not in hist.columns]
        if missing:
            raise MalformedPayload(SOURCE, target, missing[0],
                                   f"missing column (got {list(hist.columns)})")
        splits = hist["Stock Splits"] if "Stock Splits" in hist.columns else 0.0
        frame = pl.DataFrame({
            "trade_date": _local_dates(hist.index, target),
            **{c: pd.to_numeric(hist[c], errors="coerce").astype("float64").to_numpy()
               for c in PRICE_COLUMNS},
            "split": pd.to_numeric(pd.Series(splits, index=hist.index), errors="coerce")
                       .fillna(0.0).astype("float64").to_numpy(),
        }).sort("trade_date")
        if frame["trade_date"].is_duplicated().any():
            # A live intraday bar can duplicate today's date; the last one is the latest.
            frame = frame.unique("trade_date", keep="last").sort("trade_date")
        ratio = pl.when(pl.col("split") > 0).then(pl.col("split")).otherwise(1.0)
        if unadjust:
            # product of the ratios of all splits strictly after each day
            frame = frame.with_columns(
                (ratio.reverse().cum_prod().reverse() / ratio).alias("factor"))
        else:
            frame = frame.with_columns(pl.lit(1.0).alias("factor"))
        frame = frame.filter(pl.col("Close").is_not_nan() & pl.col("Close").is_not_null())
        frame = self._drop_placeholder_bars(frame, market, symbol)
        frame = frame.with_columns(
            *[(pl.col(c) * pl.col("factor")).alias(c.lower()) for c in ("Open", "High", "Low", "Close")],
            pl.col("Adj Close").fill_nan(None).alias("adj_close"),
            (pl.col("Volume") / pl.col("factor")).fill_nan(None).alias("volume"),
        ).with_columns(
            *[pl.col(c).fill_nan(None) for c in ("open", "high", "low")]
        )
        return clip_window(frame, "trade_date", start, end), target, ""

    @staticmethod
    def _drop_placeholder_bars(frame: pl.DataFrame, market: str, symbol: str) -> pl.DataFrame:
        """Yahoo sometimes repeats the last close on an exchange holiday with no volume; such
        a bar is not a session. A bar with volume on a non-session day is kept, so the
        landing check reports the calendar mismatch instead of hiding it."""
        first, last = calendar_bounds(market)
        off = frame.filter(
            pl.col("trade_date").map_elements(
                lambda d: first <= d <= last and not is_trading_day(market, d),
                return_dtype=pl.Boolean)
            & (pl.col("Volume").is_null() | pl.col("Volume").is_nan() | (pl.col("Volume") == 0)))
        if off.height:
            log.warning("%s: %s: dropped %d bar(s) without volume on non-sessions of %s: %s",
                        SOURCE, symbol, off.height, market,
                        ", ".join(str(d) for d in off["trade_date"].to_list()[:5]))
            frame = frame.join(off.select("trade_date"), on="trade_date", how="anti")
        return frame

    def prices_daily(self, securities: list[SecuritySpec], start: dt.date, end: dt.date
                     ) -> pl.DataFrame | None:
        frames = []
        for spec in securities:
            symbol = yahoo_symbol(spec)
            bars, target, reason = self._bars(symbol, start, end, unadjust=True,
                                              market=spec.market)
            self.log.add(SOURCE, "prices_daily", f"yfinance.Ticker({symbol!r}).history",
                         0 if bars is None else bars.height)
            bars = self._require(bars, target, reason, spec.market, start, end)
            if bars is None:
                continue
            frames.append(bars.select(
                pl.lit(spec.security_id).alias("security_id"), "trade_date", "open", "high",
                "low", "close", "adj_close", "volume", pl.lit(spec.currency).alias("currency"),
                pl.lit(SOURCE).alias("source")))
        return pl.concat(frames) if frames else None

    def index_levels(self, indexes: list[IndexSpec], start: dt.date, end: dt.date
                     ) -> pl.DataFrame | None:
        frames = []
        for spec in indexes:
            if not spec.yahoo:
                continue
            bars, target, reason = self._bars(spec.yahoo, start, end, unadjust=False,
                                              market=spec.market)
            self.log.add(SOURCE, "index_levels_daily", f"yfinance.Ticker({spec.yahoo!r}).history",
                         0 if bars is None else bars.height)
            bars = self._require(bars, target, reason, spec.market, start, end)
            if bars is None:
                continue
            frames.append(bars.select(
                pl.lit(spec.index_id).alias("index_id"), "trade_date", "open", "high", "low",
                "close", pl.lit(SOURCE).alias("source")))
        return pl.concat(frames) if frames else None

    def _require(self, df: pl.DataFrame | None, target: str, reason: str, market: str,
                 start: dt.date, end: dt.date) -> pl.DataFrame | None:
        try:
            return require_rows(df, source=SOURCE, target=target, market=market, start=start,
                                end=end, today=self.today)
        except EmptyAnswer as exc:
            if reason:
                raise EmptyAnswer(SOURCE, target, f"{exc.detail}; yfinance says: {reason}") from None
            raise

    @staticmethod
    def _with_splits(counts: dict[dt.date, float], splits: list[tuple[dt.date, float]],
                     end: dt.date) -> dict[dt.date, float]:
        """Reported counts plus one count on each split's ex-date (the last count before it
        times the ratio), so that counts and as-traded prices change on the same day; a
        count reported later (after the split) takes over from its own date."""
        out = dict(counts)
        for day, ratio in sorted(splits):
            if day > end or day in counts:
                continue
            before = [d for d in out if d < day]
            if before:
                out[day] = out[max(before)] * ratio
        return out

    def shares_outstanding(self, securities: list[SecuritySpec], start: dt.date, end: dt.date
                           ) -> pl.DataFrame | None:
        frames = []
        first = start - dt.timedelta(days=SHARES_LOOKBACK_DAYS)
        for spec in securities:
            symbol = yahoo_symbol(spec)
            target = f"{symbol} get_shares_full {first}..{end}"
            ticker = self._ticker(symbol)
            series = self._call(target, lambda t=ticker: t.get_shares_full(
                start=first.isoformat(), end=(end + dt.timedelta(days=1)).isoformat()))
            rows: list[dict[str, Any]] = []
            if series is not None:
                if not isinstance(series, pd.Series):
                    raise MalformedPayload(SOURCE, target, "<shares>",
                                           f"expected a Series, got {type(series).__name__}")
                values = pd.to_numeric(series, errors="coerce")
                latest: dict[dt.date, float] = {}
                for day, value in zip(_local_dates(series.index, target), values, strict=True):
                    if pd.notna(value) and value > 0 and first <= day <= end:
                        latest[day] = float(value)  # several counts a day: the last one wins
                latest = self._with_splits(latest, self.splits(symbol, first), end)
                rows = [{"security_id": spec.security_id, "as_of_date": d, "share_class": "total",
                         "shares": v, "filed_date": None, "source": SOURCE}
                        for d, v in sorted(latest.items())]
            self.log.add(SOURCE, "shares_outstanding",
                         f"yfinance.Ticker({symbol!r}).get_shares_full", len(rows))
            df = require_rows(typed_frame("shares_outstanding", rows), source=SOURCE,
                              target=target, market=spec.market, start=first, end=end,
                              today=self.today)
            if df is not None:
                frames.append(df)
        return pl.concat(frames) if frames else None
