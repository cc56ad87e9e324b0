"""AKShare, mocked at its documented function boundary (the akshare.* functions scrape
Eastmoney/CSIndex over HTTP; these tests replace the functions on the real akshare module
with stand-ins that return DataFrames in the exact column shape the functions return:
the fixture CSVs carry those Chinese column names, see akshare's docs for
stock_zh_a_hist, stock_individual_fund_flow, stock_concept_fund_flow_hist,
stock_board_concept_name_em, stock_board_concept_cons_em, stock_zh_index_hist_csindex and
stock_zh_index_value_csindex)."""

from __future__ import annotations

import datetime as dt
import json

import akshare
import pandas as pd
import polars as pl
import pytest
from _live_support import TODAY, Scripted, fixture_frame, http_error

from selloff.sources.live.akshare_cn import AkshareAdapter
from selloff.sources.live.common import parse_cn_amount
from selloff.sources.live.errors import EmptyAnswer, MalformedPayload, SourceUnavailable
from selloff.sources.live.universe import ConceptBoard, IndexSpec, SecuritySpec
from selloff.validation import conform

CAMBRICON = SecuritySpec("CN:688256.SH", name_local="寒武纪", is_ai=True)
AI_BOARD = ConceptBoard("人工智能", basket_id="CN_CONCEPT_AI")
STAR50 = IndexSpec("CN:000688.SH", "STAR 50", csindex="000688")
CODES = {"股票代码": str, "代码": str, "板块代码": str, "指数代码": str}


def _frame(name: str) -> pd.DataFrame:
    return fixture_frame("akshare", name, dtype=CODES)


@pytest.fixture()
def ak(policy, fetch_log) -> AkshareAdapter:
    return AkshareAdapter(policy, fetch_log, today=TODAY, rate_per_second=1000)


def _serve(monkeypatch, **functions) -> dict[str, Scripted]:
    out = {}
    for name, fn in functions.items():
        stub = fn if isinstance(fn, Scripted) else Scripted(fn)
        monkeypatch.setattr(akshare, name, stub)
        out[name] = stub
    return out


def test_amounts_in_yi_and_wan_are_converted():
    assert parse_cn_amount("1.23亿") == pytest.approx(1.23e8)
    assert parse_cn_amount("-4,567.8万") == pytest.approx(-4.5678e7)
    assert parse_cn_amount("-65.01亿元") == pytest.approx(-6.501e9)
    assert parse_cn_amount(12.5) == 12.5 and parse_cn_amount("-") is None
    with pytest.raises(ValueError):
        parse_cn_amount("12 dollars")


def test_prices_unadjusted_with_volume_in_shares(ak, monkeypatch, fetch_log):
    stubs = _serve(monkeypatch, stock_zh_a_hist=lambda **kw: _frame("stock_zh_a_hist_688256.csv"))
    df = ak.prices_daily([CAMBRICON], dt.date(2025, 11, 3), dt.date(2025, 11, 5))
    conform(df, "prices_daily")
    kwargs = stubs["stock_zh_a_hist"].calls[0][1]
    assert kwargs == {"symbol": "688256", "period": "daily", "start_date": "20251103",
                      "end_date": "20251105", "adjust": ""}
    row = df.filter(pl.col("trade_date") == dt.date(2025, 11, 4)).row(0, named=True)
    assert row["close"] == 1270.0 and row["adj_close"] is None and row["currency"] == "CNY"
    assert row["volume"] == 122_345 * 100  # 成交量 is in 手 (lots of 100 shares)
    assert df.height == 3  # 2025-10-31 is outside the window
    assert "stock_zh_a_hist" in fetch_log.records[-1].target


def test_security_flows_five_order_size_classes(ak, monkeypatch):
    _serve(monkeypatch, stock_individual_fund_flow=lambda **kw: _frame(
        "stock_individual_fund_flow_688256.csv"))
    df = ak.security_flows([CAMBRICON], dt.date(2025, 11, 3), dt.date(2025, 11, 5))
    conform(df, "fund_flows_daily")
    day = df.filter(pl.col("trade_date") == dt.date(2025, 11, 4))
    flows = dict(zip(day["investor_type"], day["net_buy_value"], strict=True))
    assert flows == {"main_force": -1523456789.0, "super_large": -1023456789.0,
                     "large": -500000000.0, "medium": 600000000.0, "small": 923456789.0}
    assert set(df["flow_scope"]) == {"security"} and set(df["entity_id"]) == {"CN:688256.SH"}


def test_board_flows_and_members(ak, monkeypatch):
    stubs = _serve(
        monkeypatch,
        stock_board_concept_name_em=lambda: _frame("stock_board_concept_name_em.csv"),
        stock_concept_fund_flow_hist=lambda **kw: _frame("stock_concept_fund_flow_hist_BK0800.csv"),
        stock_board_concept_cons_em=lambda **kw: _frame("stock_board_concept_cons_em_BK0800.csv"),
    )
    df = ak.board_flows([AI_BOARD], dt.date(2025, 11, 3), dt.date(2025, 11, 5))
    conform(df, "fund_flows_daily")
    worst = df.filter(pl.col("investor_type") == "main_force").sort("net_buy_value").row(0, named=True)
    assert worst["entity_id"] == "CN:BK0800" and worst["flow_scope"] == "board"
    assert worst["net_buy_value"] == pytest.approx(-65.01234567e8)
    assert stubs["stock_concept_fund_flow_hist"].calls[0][1] == {"symbol": "人工智能"}
    members = ak.board_members(AI_BOARD)
    assert members[:3] == [("CN:688256.SH", "寒武纪"), ("CN:300308.SZ", "中际旭创"),
                           ("CN:002230.SZ", "科大讯飞")]
    assert stubs["stock_board_concept_cons_em"].calls[0][1] == {"symbol": "BK0800"}
    assert len(stubs["stock_board_concept_name_em"].calls) == 1  # the code is looked up once


def test_index_valuation_from_csindex(ak, monkeypatch):
    _serve(monkeypatch,
           stock_zh_index_hist_csindex=lambda **kw: _frame("stock_zh_index_hist_csindex_000688.csv"),
           stock_zh_index_value_csindex=lambda **kw: _frame("stock_zh_index_value_csindex_000688.csv"))
    df = ak.index_valuation([STAR50], dt.date(2025, 11, 3), dt.date(2025, 11, 5))
    conform(df, "index_valuation_daily")
    rows = {r["trade_date"]: r for r in df.iter_rows(named=True)}
    assert rows[dt.date(2025, 11, 3)]["pe_ttm"] == 198.47
    assert rows[dt.date(2025, 11, 3)]["dividend_yield"] is None  # outside the ~20-day file
    assert rows[dt.date(2025, 11, 4)]["dividend_yield"] == pytest.approx(0.0024)  # % -> fraction


def test_amounts_as_text_are_converted(ak, monkeypatch):
    # Some AKShare flow functions give 净额 as text with 亿/万; the adapter accepts both.
    frame = _frame("stock_individual_fund_flow_688256.csv").astype({"主力净流入-净额": object})
    frame.loc[1, "主力净流入-净额"] = "-15.23亿"
    _serve(monkeypatch, stock_individual_fund_flow=lambda **kw: frame)
    df = ak.security_flows([CAMBRICON], dt.date(2025, 11, 4), dt.date(2025, 11, 4))
    main = df.filter(pl.col("investor_type") == "main_force")["net_buy_value"][0]
    assert main == pytest.approx(-1.523e9)


def test_empty_answer_on_a_trading_day_is_an_error(ak, monkeypatch):
    _serve(monkeypatch, stock_zh_a_hist=lambda **kw: pd.DataFrame())  # what akshare returns
    with pytest.raises(EmptyAnswer) as err:
        ak.prices_daily([CAMBRICON], dt.date(2025, 11, 4), dt.date(2025, 11, 4))
    assert "AKShare" in str(err.value) and "688256" in str(err.value)


def test_empty_answer_on_a_holiday_is_a_no_op(ak, monkeypatch):
    _serve(monkeypatch, stock_zh_a_hist=lambda **kw: pd.DataFrame())
    # National Day Golden Week 2025: Shanghai closed 10-01..10-08.
    assert ak.prices_daily([CAMBRICON], dt.date(2025, 10, 1), dt.date(2025, 10, 8)) is None


def test_flows_outside_the_source_retention_are_a_warning(ak, monkeypatch, fetch_log, caplog):
    _serve(monkeypatch, stock_individual_fund_flow=lambda **kw: _frame(
        "stock_individual_fund_flow_688256.csv"))
    assert ak.security_flows([CAMBRICON], dt.date(2025, 6, 2), dt.date(2025, 6, 30)) is None
    assert "100 trading days" in caplog.text
    assert "source holds 2025-11-03..2025-11-05 only" in fetch_log.records[-1].error


def test_429_then_success(ak, monkeypatch):
    stub = Scripted(lambda **kw: _frame("stock_zh_a_hist_688256.csv"),
                    fail_with=[http_error(429),
                               json.JSONDecodeError("Expecting value", "<html>", 0)])
    _serve(monkeypatch, stock_zh_a_hist=stub)
    df = ak.prices_daily([CAMBRICON], dt.date(2025, 11, 3), dt.date(2025, 11, 5))
    assert df.height == 3 and len(stub.calls) == 3


def test_429_until_failure(ak, monkeypatch, policy):
    stub = Scripted(lambda **kw: None, always_fail=http_error(429))
    _serve(monkeypatch, stock_individual_fund_flow=stub)
    with pytest.raises(SourceUnavailable) as err:
        ak.security_flows([CAMBRICON], dt.date(2025, 11, 3), dt.date(2025, 11, 5))
    assert len(stub.calls) == policy.attempts
    msg = str(err.value)
    assert msg.startswith("AKShare:") and "stock_individual_fund_flow" in msg and "429" in msg


def test_malformed_payload_names_the_column(ak, monkeypatch):
    frame = _frame("stock_individual_fund_flow_688256.csv").drop(columns=["超大单净流入-净额"])
    _serve(monkeypatch, stock_individual_fund_flow=lambda **kw: frame)
    with pytest.raises(MalformedPayload) as err:
        ak.security_flows([CAMBRICON], dt.date(2025, 11, 3), dt.date(2025, 11, 5))
    assert err.value.field == "超大单净流入-净额" and "688256" in str(err.value)


def test_volume_in_neither_lots_nor_shares_is_malformed(ak, monkeypatch):
    frame = _frame("stock_zh_a_hist_688256.csv")
    frame["成交额"] = frame["成交额"] * 1000  # e.g. a unit change at the source
    _serve(monkeypatch, stock_zh_a_hist=lambda **kw: frame)
    with pytest.raises(MalformedPayload) as err:
        ak.prices_daily([CAMBRICON], dt.date(2025, 11, 3), dt.date(2025, 11, 5))
    assert err.value.field == "成交量"
