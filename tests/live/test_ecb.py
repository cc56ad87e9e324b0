"""ECB reference rates: the SDMX csvdata answer (fixture: columns as the ECB Data Portal
sends them, https://data.ecb.europa.eu/help/api/data), crossed to USD."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
import respx
from _live_support import TODAY, fixture_text

from selloff.sources.live.ecb import EcbAdapter, target_business_days
from selloff.sources.live.errors import EmptyAnswer, MalformedPayload, SourceUnavailable
from selloff.validation import conform

BASE = "https://ecb.test/service"
URL = f"{BASE}/data/EXR/D.USD+CNY+JPY+KRW+HKD+GBP.EUR.SP00.A"
CCYS = ("USD", "CNY", "JPY", "KRW", "HKD", "GBP")


@pytest.fixture()
def ecb(policy, fetch_log) -> EcbAdapter:
    return EcbAdapter(policy, fetch_log, base_url=BASE, today=TODAY)


@respx.mock
def test_normal_answer_is_crossed_to_usd(ecb, fetch_log):
    route = respx.get(URL).mock(return_value=httpx.Response(
        200, text=fixture_text("ecb", "exr_D_2025-11-03_2025-11-05.csv")))
    df = ecb.fx_rates_daily(dt.date(2025, 11, 3), dt.date(2025, 11, 5), CCYS)
    assert route.called
    params = route.calls.last.request.url.params
    assert params["format"] == "csvdata" and params["startPeriod"] == "2025-11-03"
    rates = {(r["trade_date"], r["currency"]): r["usd_per_unit"] for r in df.iter_rows(named=True)}
    day = dt.date(2025, 11, 3)
    assert rates[(day, "EUR")] == pytest.approx(1.1514)
    assert rates[(day, "CNY")] == pytest.approx(1.1514 / 8.1988)
    assert rates[(day, "JPY")] == pytest.approx(1.1514 / 177.57)
    assert rates[(day, "KRW")] == pytest.approx(1.1514 / 1646.55)
    assert ("USD" not in {c for _d, c in rates}), "USD per USD is 1 by definition, not a row"
    assert df.height == 3 * 6  # EUR + 5 currencies, 3 days
    conform(df, "fx_rates_daily")  # passes the landing contract
    assert fetch_log.records[-1].rows == 18 and "csvdata" in fetch_log.records[-1].target


@respx.mock
def test_empty_answer_on_a_business_day_is_an_error(ecb):
    # The ECB answers 404 "No results found." for a query without observations.
    respx.get(URL).mock(return_value=httpx.Response(404, text="No results found."))
    with pytest.raises(EmptyAnswer) as err:
        ecb.fx_rates_daily(dt.date(2025, 11, 4), dt.date(2025, 11, 4), CCYS)
    assert "ECB" in str(err.value) and "2025-11-04" in str(err.value)


@respx.mock
@pytest.mark.parametrize("dropped", ["JPY", "USD"])
def test_missing_currency_is_an_error_naming_it(ecb, dropped):
    text = fixture_text("ecb", "exr_D_2025-11-03_2025-11-05.csv")
    lines = text.splitlines()
    kept = [line for line in lines if f",{dropped}," not in line]
    assert len(kept) < len(lines), "the fixture must hold the dropped currency"
    respx.get(URL).mock(return_value=httpx.Response(200, text="\n".join(kept) + "\n"))
    with pytest.raises(EmptyAnswer) as err:
        ecb.fx_rates_daily(dt.date(2025, 11, 3), dt.date(2025, 11, 5), CCYS)
    assert f"no fixing for {dropped} " in str(err.value) and "ECB" in str(err.value)


@respx.mock
def test_empty_answer_on_a_holiday_is_a_no_op(ecb):
    respx.get(URL).mock(return_value=httpx.Response(404, text="No results found."))
    # 2025-12-25/26 are TARGET holidays, 27/28 a weekend: the ECB fixes no rate.
    assert target_business_days(dt.date(2025, 12, 25), dt.date(2025, 12, 28)) == []
    assert ecb.fx_rates_daily(dt.date(2025, 12, 25), dt.date(2025, 12, 28), CCYS) is None


@respx.mock
def test_429_then_success(ecb):
    route = respx.get(URL).mock(side_effect=[
        httpx.Response(429, headers={"Retry-After": "1"}),
        httpx.Response(503),
        httpx.Response(200, text=fixture_text("ecb", "exr_D_2025-11-03_2025-11-05.csv")),
    ])
    df = ecb.fx_rates_daily(dt.date(2025, 11, 3), dt.date(2025, 11, 5), CCYS)
    assert route.call_count == 3 and df.height == 18


@respx.mock
def test_429_until_failure_names_source_and_url(ecb, policy):
    route = respx.get(URL).mock(return_value=httpx.Response(429))
    with pytest.raises(SourceUnavailable) as err:
        ecb.fx_rates_daily(dt.date(2025, 11, 3), dt.date(2025, 11, 5), CCYS)
    assert route.call_count == policy.attempts
    msg = str(err.value)
    assert msg.startswith("ECB:") and "429" in msg and URL in msg


@respx.mock
def test_malformed_payload_names_the_field(ecb):
    respx.get(URL).mock(return_value=httpx.Response(
        200, text=fixture_text("ecb", "exr_malformed_obs_value.csv")))
    with pytest.raises(MalformedPayload) as err:
        ecb.fx_rates_daily(dt.date(2025, 11, 3), dt.date(2025, 11, 5), CCYS)
    assert err.value.field == "OBS_VALUE" and "line 3" in str(err.value)


@respx.mock
def test_missing_column_is_malformed(ecb):
    respx.get(URL).mock(return_value=httpx.Response(200, text="KEY,FREQ,CURRENCY\nx,D,USD\n"))
    with pytest.raises(MalformedPayload) as err:
        ecb.fx_rates_daily(dt.date(2025, 11, 3), dt.date(2025, 11, 5), CCYS)
    assert err.value.field == "CURRENCY_DENOM"
