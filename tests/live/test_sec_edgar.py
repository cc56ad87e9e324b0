"""SEC EDGAR company facts and submissions (fixtures in the JSON shape data.sec.gov serves:
companyfacts {cik, entityName, facts: {taxonomy: {concept: {label, description, units:
{unit: [{start, end, val, accn, fy, fp, form, filed, frame}]}}}}}; the values are
illustrative, not NVIDIA's or Meta's filings)."""

from __future__ import annotations

import datetime as dt
import json
import logging

import httpx
import polars as pl
import pytest
import respx
from _live_support import TODAY, fixture_json, fixture_text

from selloff.sources.live.errors import (
    EmptyAnswer,
    LiveConfigError,
    MalformedPayload,
    SourceUnavailable,
)
from selloff.sources.live.http import TokenBucket
from selloff.sources.live.sec_edgar import SecEdgarAdapter, cik10
from selloff.validation import conform

BASE = "https://sec.test"
UA = "Selloff Tests tests@example.com"
NVDA_FACTS = f"{BASE}/api/xbrl/companyfacts/CIK0001045810.json"
NVDA_SUBS = f"{BASE}/submissions/CIK0001045810.json"
META_FACTS = f"{BASE}/api/xbrl/companyfacts/CIK0001326801.json"
META_SUBS = f"{BASE}/submissions/CIK0001326801.json"
START, END = dt.date(2025, 9, 1), dt.date(2025, 12, 31)


@pytest.fixture()
def sec(policy, fetch_log) -> SecEdgarAdapter:
    return SecEdgarAdapter(UA, policy, fetch_log, base_url=BASE, today=TODAY)


def _serve(mock: respx.MockRouter) -> None:
    mock.get(NVDA_FACTS).mock(return_value=httpx.Response(
        200, text=fixture_text("sec", "companyfacts_CIK0001045810.json")))
    mock.get(NVDA_SUBS).mock(return_value=httpx.Response(
        200, text=fixture_text("sec", "submissions_CIK0001045810.json")))
    mock.get(META_FACTS).mock(return_value=httpx.Response(
        200, text=fixture_text("sec", "companyfacts_CIK0001326801.json")))
    mock.get(META_SUBS).mock(return_value=httpx.Response(
        200, text=fixture_text("sec", "submissions_CIK0001326801.json")))


def test_cik_is_zero_padded_to_ten_digits():
    assert cik10("1045810") == "0001045810"
    assert cik10(320193) == "0000320193"
    with pytest.raises(ValueError):
        cik10("NVDA")


def test_user_agent_is_required(policy, fetch_log):
    with pytest.raises(LiveConfigError) as err:
        SecEdgarAdapter(None, policy, fetch_log, base_url=BASE)
    assert "SEC_USER_AGENT" in str(err.value)


@respx.mock
def test_normal_answer_facts_keep_period_form_filed_and_accession(sec):
    _serve(respx)
    df = sec.fundamentals([("US:NVDA", "1045810")], START, END)
    assert respx.calls.last.request.headers["User-Agent"] == UA
    conform(df, "fundamentals")  # unique on the contract key, types right
    q3 = df.filter((pl.col("metric") == "net_income") & (pl.col("fiscal_period") == "Q3"))
    row = q3.row(0, named=True)
    assert row["period_start"] == dt.date(2025, 7, 28) and row["period_end"] == dt.date(2025, 10, 26)
    assert row["fiscal_year"] == 2026 and row["value_basis"] == "discrete"
    assert row["form"] == "10-Q" and row["filed_date"] == dt.date(2025, 11, 19)
    assert row["accession"] == "0001045810-25-000230" and row["unit"] == "USD"
    fy = df.filter((pl.col("metric") == "net_income") & (pl.col("fiscal_period") == "FY"))
    assert dict(zip(fy["fiscal_year"], fy["value"], strict=True))[2025] == 72_880_000_000
    assert set(fy["value_basis"]) == {"discrete"}
    q4 = df.filter((pl.col("metric") == "net_income") & (pl.col("fiscal_period") == "Q4"))
    assert q4["value"].to_list() == [22_091_000_000] and q4["form"].to_list() == ["10-K"]
    # The FY2024 figure repeated as a comparative in the FY2025 10-K is not a new fact.
    fy24 = fy.filter(pl.col("fiscal_year") == 2024)
    assert fy24["filed_date"].to_list() == [dt.date(2024, 2, 21)]
    eps = df.filter(pl.col("metric") == "eps_diluted")
    assert eps["unit"].to_list() == ["USD/share"] and eps["value"].to_list() == [1.30]


@respx.mock
def test_revenue_prefers_the_contract_concept_then_revenues(sec):
    _serve(respx)
    rev = sec.fundamentals([("US:NVDA", "1045810")], START, END).filter(
        pl.col("metric") == "revenue")
    by_end = dict(zip(rev["period_end"], rev["value"], strict=True))
    assert by_end[dt.date(2025, 4, 27)] == 44_062_000_000  # both concepts: the first wins
    assert by_end[dt.date(2025, 1, 26)] == 130_497_000_000  # only Revenues reports FY2025


@respx.mock
def test_ten_q_duration_over_100_days_is_ytd(sec):
    _serve(respx)
    capex = sec.fundamentals([("US:NVDA", "1045810")], START, END).filter(
        pl.col("metric") == "capex").sort("period_end")
    assert capex["value_basis"].to_list() == ["discrete", "ytd", "ytd"]
    assert capex["fiscal_period"].to_list() == ["Q1", "Q2", "Q3"]
    assert capex["period_start"].to_list() == [dt.date(2025, 1, 27)] * 3


@respx.mock
def test_amendment_restating_a_quarter_is_a_new_fact_from_its_filed_date(sec):
    _serve(respx)
    q2 = sec.fundamentals([("US:NVDA", "1045810")], START, END).filter(
        (pl.col("metric") == "net_income") & (pl.col("fiscal_period") == "Q2")
        & (pl.col("value_basis") == "discrete")).sort("filed_date")
    assert q2.select("form", "filed_date", "value").rows() == [
        ("10-Q", dt.date(2025, 8, 27), 26_422_000_000),
        ("10-Q/A", dt.date(2025, 9, 15), 26_400_000_000),
    ]
    assert q2["period_end"].n_unique() == 1 and set(q2["fiscal_year"]) == {2026}


@respx.mock
def test_two_share_classes_are_summed_into_total(sec):
    _serve(respx)
    df = sec.shares_outstanding([("US:META", "1326801")], START, END)
    conform(df, "shares_outstanding")
    rows = df.sort("as_of_date").select("as_of_date", "share_class", "shares", "filed_date").rows()
    assert rows == [
        (dt.date(2025, 7, 24), "total", 2_172_000_000 + 343_000_000, dt.date(2025, 7, 31)),
        (dt.date(2025, 10, 23), "total", 2_170_000_000 + 343_000_000, dt.date(2025, 10, 30)),
    ]


@respx.mock
def test_empty_answer_on_trading_days_is_an_error(sec):
    doc = {"cik": 1045810, "entityName": "NVIDIA CORP", "facts": {"us-gaap": {}, "dei": {}}}
    respx.get(NVDA_FACTS).mock(return_value=httpx.Response(200, json=doc))
    respx.get(NVDA_SUBS).mock(return_value=httpx.Response(
        200, text=fixture_text("sec", "submissions_CIK0001045810.json")))
    with pytest.raises(EmptyAnswer) as err:
        sec.fundamentals([("US:NVDA", "1045810")], START, END)
    assert "SEC EDGAR" in str(err.value) and NVDA_FACTS in str(err.value)
    with pytest.raises(EmptyAnswer):
        sec.shares_outstanding([("US:NVDA", "1045810")], START, END)


@respx.mock
def test_empty_answer_on_a_holiday_is_a_no_op(policy, fetch_log):
    # Thanksgiving 2025 with no lookback: a window without NYSE sessions lands nothing.
    doc = {"cik": 1045810, "entityName": "NVIDIA CORP", "facts": {"dei": {}}}
    respx.get(NVDA_FACTS).mock(return_value=httpx.Response(200, json=doc))
    sec = SecEdgarAdapter(UA, policy, fetch_log, base_url=BASE, today=TODAY,
                          shares_lookback_days=0)
    day = dt.date(2025, 11, 27)
    assert sec.shares_outstanding([("US:NVDA", "1045810")], day, day) is None


@respx.mock
def test_429_then_success(sec):
    _serve(respx)
    respx.get(META_FACTS).mock(side_effect=[
        httpx.Response(429), httpx.Response(500),
        httpx.Response(200, text=fixture_text("sec", "companyfacts_CIK0001326801.json"))])
    df = sec.shares_outstanding([("US:META", "1326801")], START, END)
    assert df.height == 2


@respx.mock
def test_429_until_failure(sec, policy, caplog):
    route = respx.get(META_FACTS).mock(return_value=httpx.Response(429))
    with caplog.at_level(logging.WARNING, logger="selloff.sources.live"), \
            pytest.raises(SourceUnavailable) as err:
        sec.shares_outstanding([("US:META", "1326801")], START, END)
    assert route.call_count == policy.attempts
    assert str(err.value).startswith("SEC EDGAR:") and META_FACTS in str(err.value)
    # The User-Agent (a contact address) is never logged nor put in a message.
    assert "tests@example.com" not in caplog.text and "tests@example.com" not in str(err.value)


@respx.mock
def test_forbidden_explains_the_user_agent(sec):
    respx.get(META_FACTS).mock(return_value=httpx.Response(403))
    with pytest.raises(SourceUnavailable) as err:
        sec.shares_outstanding([("US:META", "1326801")], START, END)
    assert "SEC_USER_AGENT" in str(err.value)


@respx.mock
def test_malformed_payload_names_the_field(sec):
    doc = fixture_json("sec", "companyfacts_CIK0001326801.json")
    del doc["facts"]["us-gaap"]["NetIncomeLoss"]["units"]["USD"][1]["filed"]
    respx.get(META_FACTS).mock(return_value=httpx.Response(200, text=json.dumps(doc)))
    respx.get(META_SUBS).mock(return_value=httpx.Response(
        200, text=fixture_text("sec", "submissions_CIK0001326801.json")))
    with pytest.raises(MalformedPayload) as err:
        sec.fundamentals([("US:META", "1326801")], START, END)
    assert err.value.field == "facts.us-gaap.NetIncomeLoss.units.USD[1].filed"
    assert "CIK0001326801" in str(err.value)


@respx.mock
def test_not_json_is_malformed(sec):
    respx.get(META_FACTS).mock(return_value=httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(MalformedPayload):
        sec.shares_outstanding([("US:META", "1326801")], START, END)


def test_token_bucket_keeps_ten_requests_per_second():
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    bucket = TokenBucket(10, clock=lambda: now[0], sleep=sleep)
    for _ in range(30):
        bucket.acquire()
    # 10 in the first burst, then one every 0.1 s: 30 requests take >= 2 s.
    assert now[0] == pytest.approx(2.0)
