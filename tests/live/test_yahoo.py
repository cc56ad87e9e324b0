"""Yahoo Finance through yfinance, mocked at the yfinance boundary: Ticker(symbol).history(...)
returns the frame yfinance builds from Yahoo's chart API with auto_adjust=False
(Open High Low Close 'Adj Close' Volume Dividends 'Stock Splits', indexed by a tz-aware
Date in the exchange's zone; fixtures are that frame's to_csv()), get_shares_full(...) a
Series of share counts indexed the same way; errors are yfinance's own exception types."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from _live_support import FakeTicker, yahoo_history
from yfinance.exceptions import YFRateLimitError

from selloff.sources.live.errors import EmptyAnswer, MalformedPayload, SourceUnavailable
from selloff.sources.live.universe import IndexSpec, SecuritySpec
from selloff.sources.live.yahoo import YahooAdapter, security_id_from_yahoo, yahoo_symbol
from selloff.validation import conform


def _adapter(policy, fetch_log, script: dict, today=dt.date(2026, 11, 24)) -> YahooAdapter:
    return YahooAdapter(policy, fetch_log, ticker_factory=lambda s: FakeTicker(s, script),
                        today=today, rate_per_second=1000)


NVDA = SecuritySpec("US:NVDA")
SOFTBANK = SecuritySpec("JP:9984", listing_board="Prime")


def test_symbol_mapping_both_ways():
    cases = {"CN:600519.SH": "600519.SS", "CN:300308.SZ": "300308.SZ", "KR:005930": "005930.KS",
             "JP:9984": "9984.T", "US:NVDA": "NVDA", "US:BRK.B": "BRK-B"}
    for sid, sym in cases.items():
        assert yahoo_symbol(SecuritySpec(sid)) == sym
        assert security_id_from_yahoo(sym) == sid
    assert yahoo_symbol(SecuritySpec("KR:247540", listing_board="KOSDAQ")) == "247540.KQ"
    assert yahoo_symbol(SecuritySpec("KR:005930", yahoo="005930.KS")) == "005930.KS"


def test_normal_answer_future_split_is_undone(policy, fetch_log):
    script: dict = {}
    yahoo = _adapter(policy, fetch_log, script)
    df = yahoo.prices_daily([SOFTBANK], dt.date(2025, 11, 3), dt.date(2025, 11, 6))
    conform(df, "prices_daily")
    rows = {r["trade_date"]: r for r in df.iter_rows(named=True)}
    assert sorted(rows) == [dt.date(2025, 11, 4), dt.date(2025, 11, 5), dt.date(2025, 11, 6)]
    # Yahoo's Close is divided by the 1:4 split of 2025-12-29; as traded it was 4x.
    assert rows[dt.date(2025, 11, 4)]["close"] == pytest.approx(22_170.0)
    assert rows[dt.date(2025, 11, 4)]["volume"] == pytest.approx(147_802_400 / 4)
    assert rows[dt.date(2025, 11, 4)]["adj_close"] == pytest.approx(5537.33)
    assert rows[dt.date(2025, 11, 4)]["currency"] == "JPY"
    _sym, start, end, kwargs = script["history_calls"][0]
    assert kwargs["auto_adjust"] is False and kwargs["actions"] is True
    assert end == "2026-11-25"  # up to today, so later splits are seen
    assert fetch_log.records[-1].target == "yfinance.Ticker('9984.T').history"


def test_split_inside_the_window_prices_and_share_counts(policy, fetch_log):
    yahoo = _adapter(policy, fetch_log, {}, today=dt.date(2024, 6, 20))
    start, end = dt.date(2024, 6, 5), dt.date(2024, 6, 12)
    prices = yahoo.prices_daily([NVDA], start, end)
    close = dict(zip(prices["trade_date"], prices["close"], strict=True))
    assert close[dt.date(2024, 6, 7)] == pytest.approx(1208.88)   # before the 10:1 split
    assert close[dt.date(2024, 6, 10)] == pytest.approx(121.79)   # ex-date: as traded
    volume = dict(zip(prices["trade_date"], prices["volume"], strict=True))
    assert volume[dt.date(2024, 6, 7)] == pytest.approx(41_238_600)
    adj = dict(zip(prices["trade_date"], prices["adj_close"], strict=True))
    assert adj[dt.date(2024, 6, 7)] == pytest.approx(120.8551)  # Yahoo's adjusted, unchanged

    shares = yahoo.shares_outstanding([NVDA], start, end)
    conform(shares, "shares_outstanding")
    counts = dict(zip(shares["as_of_date"], shares["shares"], strict=True))
    assert counts[dt.date(2024, 5, 22)] == 2_460_000_000
    assert counts[dt.date(2024, 6, 10)] == 24_600_000_000  # the split's own day
    assert dt.date(2024, 8, 21) not in counts  # after the window

    def cap(day: dt.date) -> float:
        as_of = max(d for d in counts if d <= day)
        return close[day] * counts[as_of]

    # Market cap moves with the price, not 10x, across the split.
    assert cap(dt.date(2024, 6, 10)) / cap(dt.date(2024, 6, 7)) == pytest.approx(121.79 / 120.888)


def test_share_counts_same_day_last_wins(policy, fetch_log):
    yahoo = _adapter(policy, fetch_log, {})
    df = yahoo.shares_outstanding([SOFTBANK], dt.date(2025, 11, 3), dt.date(2025, 11, 30))
    counts = dict(zip(df["as_of_date"], df["shares"], strict=True))
    assert counts[dt.date(2025, 8, 13)] == 1_428_112_000
    assert counts[dt.date(2025, 11, 12)] == 1_425_700_000


def test_index_levels_are_not_unadjusted(policy, fetch_log):
    yahoo = _adapter(policy, fetch_log, {})
    df = yahoo.index_levels([IndexSpec("JP:N225", "Nikkei 225", yahoo="^N225")],
                            dt.date(2025, 11, 4), dt.date(2025, 11, 6))
    conform(df, "index_levels_daily")
    assert df.filter(pl.col("trade_date") == dt.date(2025, 11, 5))["close"][0] == 50212.27


def test_empty_answer_on_a_trading_day_is_an_error(policy, fetch_log):
    yahoo = _adapter(policy, fetch_log, {"empty": True})
    with pytest.raises(EmptyAnswer) as err:
        yahoo.prices_daily([SOFTBANK], dt.date(2025, 11, 4), dt.date(2025, 11, 4))
    msg = str(err.value)
    assert msg.startswith("Yahoo Finance:") and "9984.T" in msg and "no price data" in msg


def test_empty_answer_on_a_holiday_is_a_no_op(policy, fetch_log):
    # 2025-11-03 is Culture Day, a Tokyo holiday.
    yahoo = _adapter(policy, fetch_log, {"empty": True})
    assert yahoo.prices_daily([SOFTBANK], dt.date(2025, 11, 3), dt.date(2025, 11, 3)) is None
    # Yahoo answering other days but none in the window is the same no-op.
    yahoo = _adapter(policy, fetch_log, {})
    assert yahoo.prices_daily([SOFTBANK], dt.date(2025, 11, 3), dt.date(2025, 11, 3)) is None


def test_429_then_success(policy, fetch_log):
    script = {"history_fail": [YFRateLimitError(), YFRateLimitError()]}
    yahoo = _adapter(policy, fetch_log, script)
    df = yahoo.prices_daily([SOFTBANK], dt.date(2025, 11, 4), dt.date(2025, 11, 6))
    assert df.height == 3 and len(script["history_calls"]) == 3


def test_429_until_failure(policy, fetch_log):
    script = {"history_always_fail": YFRateLimitError()}
    yahoo = _adapter(policy, fetch_log, script)
    with pytest.raises(SourceUnavailable) as err:
        yahoo.prices_daily([SOFTBANK], dt.date(2025, 11, 4), dt.date(2025, 11, 6))
    assert len(script["history_calls"]) == policy.attempts
    msg = str(err.value)
    assert "Yahoo Finance" in msg and "9984.T" in msg and "Rate limited" in msg


def test_malformed_payload_names_the_column(policy, fetch_log):
    frame = yahoo_history("9984.T").drop(columns=["Adj Close"])  # e.g. auto_adjust=True output
    yahoo = _adapter(policy, fetch_log, {"frames": {"9984.T": frame}})
    with pytest.raises(MalformedPayload) as err:
        yahoo.prices_daily([SOFTBANK], dt.date(2025, 11, 4), dt.date(2025, 11, 6))
    assert err.value.field == "Adj Close" and "9984.T" in str(err.value)


def test_connection_error_is_retried_once_only(fetch_log):
    import requests

    from selloff.sources.live.errors import SourceUnreachable
    from selloff.sources.live.http import RetryPolicy

    script = {"history_always_fail": requests.exceptions.ConnectionError(
        "Failed to resolve 'query2.finance.yahoo.com'")}
    yahoo = _adapter(RetryPolicy.fast(attempts=5), fetch_log, script)
    with pytest.raises(SourceUnreachable):
        yahoo.prices_daily([SOFTBANK], dt.date(2025, 11, 4), dt.date(2025, 11, 6))
    assert len(script["history_calls"]) == 2


def test_placeholder_bar_on_a_holiday_is_dropped(policy, fetch_log):
    import pandas as pd

    frame = yahoo_history("9984.T")
    holiday = frame.iloc[[1]].copy()
    holiday.index = pd.DatetimeIndex([pd.Timestamp("2025-11-03", tz="Asia/Tokyo")], name="Date")
    holiday["Volume"] = 0  # Yahoo repeats a close on Culture Day, without volume
    frame = pd.concat([frame, holiday]).sort_index()
    yahoo = _adapter(policy, fetch_log, {"frames": {"9984.T": frame}})
    df = yahoo.prices_daily([SOFTBANK], dt.date(2025, 11, 3), dt.date(2025, 11, 6))
    assert dt.date(2025, 11, 3) not in df["trade_date"].to_list()
    conform(df, "prices_daily")
