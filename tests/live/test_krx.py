"""pykrx, mocked at its documented function boundary: pykrx.stock functions replaced on the
real module by stand-ins returning frames in pykrx's shape (index 날짜; net buying columns
기관합계 기타법인 개인 외국인합계 전체 in won; market cap columns 시가총액 거래량 거래대금 상장주식수),
as in the docstrings of pykrx.stock.get_market_trading_value_by_date / get_market_cap_by_date."""

from __future__ import annotations

import datetime as dt
import importlib
import logging

import pandas as pd
import polars as pl
import pytest
from _live_support import TODAY, Scripted, fixture_path, http_error

from selloff.sources.live.errors import (
    EmptyAnswer,
    MalformedPayload,
    SourceError,
    SourceUnavailable,
)
from selloff.sources.live.krx import KrxAdapter, _quiet_import_env
from selloff.sources.live.universe import SecuritySpec
from selloff.validation import conform

SAMSUNG = SecuritySpec("KR:005930", listing_board="KOSPI")
KRX_ID, KRX_PW = "selloff-user", "pw-S3cret!x"


@pytest.fixture()
def pykrx_stock(monkeypatch):
    for var in ("KRX_ID", "KRX_PW"):
        monkeypatch.delenv(var, raising=False)
    with _quiet_import_env():
        return importlib.import_module("pykrx.stock")


def _frame(name: str) -> pd.DataFrame:
    df = pd.read_csv(fixture_path("krx", name), index_col="날짜", parse_dates=["날짜"])
    return df


def _answer(*args):
    fromdate, todate, ticker = args[:3]
    df = _frame(f"get_market_trading_value_by_date_{ticker}.csv")
    lo, hi = pd.Timestamp(fromdate), pd.Timestamp(todate)
    return df[(df.index >= lo) & (df.index <= hi)]


def _adapter(policy, fetch_log, **kw) -> KrxAdapter:
    return KrxAdapter(policy, fetch_log, today=TODAY, rate_per_second=1000, **kw)


def test_market_and_stock_net_buying(pykrx_stock, monkeypatch, policy, fetch_log):
    stub = Scripted(_answer)
    monkeypatch.setattr(pykrx_stock, "get_market_trading_value_by_date", stub)
    krx = _adapter(policy, fetch_log)
    df = krx.market_flows(("KOSPI",), dt.date(2025, 11, 3), dt.date(2025, 11, 5))
    conform(df, "fund_flows_daily")
    assert stub.calls[0][0] == ("20251103", "20251105", "KOSPI")
    day = df.filter(pl.col("trade_date") == dt.date(2025, 11, 4))
    flows = dict(zip(day["investor_type"], day["net_buy_value"], strict=True))
    assert flows["foreign"] == -2_222_000_000_000 and flows["institution"] == -1_021_345_678_901
    assert set(df["entity_id"]) == {"KR:KOSPI"} and set(df["currency"]) == {"KRW"}
    stock = krx.security_flows([SAMSUNG], dt.date(2025, 11, 3), dt.date(2025, 11, 5))
    assert set(stock["entity_id"]) == {"KR:005930"} and set(stock["flow_scope"]) == {"security"}
    assert stock.height == 3 * 4


def test_listed_shares_from_market_cap_table(pykrx_stock, monkeypatch, policy, fetch_log):
    monkeypatch.setattr(pykrx_stock, "get_market_cap_by_date",
                        Scripted(lambda *a: _frame("get_market_cap_by_date_005930.csv")))
    df = _adapter(policy, fetch_log).shares_outstanding([SAMSUNG], dt.date(2025, 11, 3),
                                                         dt.date(2025, 11, 5))
    conform(df, "shares_outstanding")
    assert set(df["shares"]) == {5_919_637_922} and df.height == 3


def test_empty_answer_on_a_trading_day_is_an_error(pykrx_stock, monkeypatch, policy, fetch_log):
    monkeypatch.setattr(pykrx_stock, "get_market_trading_value_by_date",
                        Scripted(lambda *a: pd.DataFrame()))
    with pytest.raises(EmptyAnswer) as err:
        _adapter(policy, fetch_log).market_flows(("KOSPI",), dt.date(2025, 11, 4),
                                                 dt.date(2025, 11, 4))
    assert "KRX" in str(err.value) and "'KOSPI'" in str(err.value)


def test_empty_answer_on_a_holiday_is_a_no_op(pykrx_stock, monkeypatch, policy, fetch_log):
    monkeypatch.setattr(pykrx_stock, "get_market_trading_value_by_date",
                        Scripted(lambda *a: pd.DataFrame()))
    # Chuseok 2025: KRX closed 10-03 and 10-06..10-09 (10-04/05 a weekend).
    assert _adapter(policy, fetch_log).market_flows(
        ("KOSPI",), dt.date(2025, 10, 3), dt.date(2025, 10, 9)) is None


def test_429_then_success(pykrx_stock, monkeypatch, policy, fetch_log):
    import json

    stub = Scripted(_answer, fail_with=[http_error(429),
                                        json.JSONDecodeError("Expecting value", "", 0)])
    monkeypatch.setattr(pykrx_stock, "get_market_trading_value_by_date", stub)
    df = _adapter(policy, fetch_log).market_flows(("KOSPI",), dt.date(2025, 11, 3),
                                                  dt.date(2025, 11, 5))
    assert df.height == 12 and len(stub.calls) == 3


def test_429_until_failure(pykrx_stock, monkeypatch, policy, fetch_log):
    stub = Scripted(_answer, always_fail=http_error(429))
    monkeypatch.setattr(pykrx_stock, "get_market_trading_value_by_date", stub)
    with pytest.raises(SourceUnavailable) as err:
        _adapter(policy, fetch_log).market_flows(("KOSPI",), dt.date(2025, 11, 3),
                                                 dt.date(2025, 11, 5))
    assert len(stub.calls) == policy.attempts
    assert "get_market_trading_value_by_date" in str(err.value) and "KOSPI" in str(err.value)


def test_malformed_payload_names_the_column(pykrx_stock, monkeypatch, policy, fetch_log):
    monkeypatch.setattr(pykrx_stock, "get_market_trading_value_by_date",
                        Scripted(lambda *a: _answer(*a).drop(columns=["외국인합계"])))
    with pytest.raises(MalformedPayload) as err:
        _adapter(policy, fetch_log).market_flows(("KOSPI",), dt.date(2025, 11, 3),
                                                 dt.date(2025, 11, 5))
    assert err.value.field == "외국인합계"


def test_login_uses_the_credentials_and_never_shows_them(pykrx_stock, monkeypatch, policy,
                                                         fetch_log, capsys, caplog):
    auth = importlib.import_module("pykrx.website.comm.auth")
    seen = []

    def refresh(self, login_id, login_pw):
        print(f"로그인 ID: {login_id}")  # what pykrx itself prints
        seen.append((login_id, login_pw))
        self.is_authenticated = True
        return True

    monkeypatch.setattr(auth.KRXSession, "refresh", refresh)
    monkeypatch.setattr(auth, "_auth_session", None)
    monkeypatch.setattr(pykrx_stock, "get_market_trading_value_by_date", Scripted(_answer))
    krx = _adapter(policy, fetch_log, credentials=(KRX_ID, KRX_PW))
    krx._api = None  # force the import-and-login path
    with caplog.at_level(logging.DEBUG):
        df = krx.market_flows(("KOSPI",), dt.date(2025, 11, 3), dt.date(2025, 11, 5))
    assert df.height == 12 and seen == [(KRX_ID, KRX_PW)]
    assert auth._auth_session is not None and auth._auth_session.is_authenticated
    out = capsys.readouterr()
    for secret in (KRX_ID, KRX_PW):
        assert secret not in out.out + out.err + caplog.text
        assert secret not in repr(krx.__dict__.get("log"))


def test_login_refused_and_errors_carry_no_secret(pykrx_stock, monkeypatch, policy, fetch_log):
    auth = importlib.import_module("pykrx.website.comm.auth")
    monkeypatch.setattr(auth.KRXSession, "refresh", lambda self, i, p: False)
    monkeypatch.setattr(auth, "_auth_session", None)
    krx = _adapter(policy, fetch_log, credentials=(KRX_ID, KRX_PW))
    with pytest.raises(SourceError) as err:
        krx.market_flows(("KOSPI",), dt.date(2025, 11, 3), dt.date(2025, 11, 5))
    assert "KRX_ID" in str(err.value) and KRX_PW not in str(err.value)
    assert KRX_ID not in str(err.value)

    monkeypatch.setattr(auth.KRXSession, "refresh", lambda self, i, p: True)
    monkeypatch.setattr(pykrx_stock, "get_market_trading_value_by_date",
                        Scripted(_answer, always_fail=RuntimeError(f"denied for {KRX_ID}/{KRX_PW}")))
    krx = _adapter(policy, fetch_log, credentials=(KRX_ID, KRX_PW))
    with pytest.raises(SourceError) as err:
        krx.market_flows(("KOSPI",), dt.date(2025, 11, 3), dt.date(2025, 11, 5))
    assert KRX_PW not in str(err.value) and KRX_ID not in str(err.value) and "***" in str(err.value)
