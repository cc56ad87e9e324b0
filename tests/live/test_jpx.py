"""JPX weekly investor-type statistics: the index/archive pages (HTML linking
stock_val_1_YYMMDD.xls) and the weekly workbooks, built by fixtures/jpx/build_fixtures.py
in JPX's layout (heading with the week, unit line, 差引き/Balance column, a Sales/Purchases
row pair per investor type)."""

from __future__ import annotations

import datetime as dt

import httpx
import polars as pl
import pytest
import respx
from _live_support import TODAY, fixture_path, fixture_text

from selloff.sources.live.errors import EmptyAnswer, MalformedPayload, SourceUnavailable
from selloff.sources.live.jpx import ARCHIVE_PATH, INDEX_PATH, JpxAdapter
from selloff.validation import conform

BASE = "https://jpx.test"
ATT = f"{BASE}/markets/statistics-equities/investor-type"
FILE_1107 = f"{ATT}/b5b4pj0000068abc-att/stock_val_1_251107.xlsx"
FILE_1114 = f"{ATT}/b5b4pj0000069xyz-att/stock_val_1_251114.xlsx"


@pytest.fixture()
def jpx(policy, fetch_log) -> JpxAdapter:
    return JpxAdapter(policy, fetch_log, base_url=BASE, today=TODAY, rate_per_second=1000)


def _pages(mock, *, index: str | None = None, archive: str | None = None) -> None:
    mock.get(f"{BASE}{INDEX_PATH}").mock(return_value=httpx.Response(
        200, text=index if index is not None else fixture_text("jpx", "index.html")))
    mock.get(f"{BASE}{ARCHIVE_PATH.format(n=0)}").mock(return_value=httpx.Response(
        200, text=archive if archive is not None else fixture_text("jpx", "archives-00.html")))
    mock.get(f"{BASE}{ARCHIVE_PATH.format(n=1)}").mock(return_value=httpx.Response(404))


def _files(mock, *, week_1114: str = "stock_val_1_251114_million_yen.xlsx") -> None:
    mock.get(FILE_1107).mock(return_value=httpx.Response(
        200, content=fixture_path("jpx", "stock_val_1_251107.xlsx").read_bytes()))
    mock.get(FILE_1114).mock(return_value=httpx.Response(
        200, content=fixture_path("jpx", week_1114).read_bytes()))


@respx.mock
def test_normal_answer_weekly_net_by_investor_type(jpx, fetch_log):
    _pages(respx)
    _files(respx)
    df = jpx.weekly_flows(dt.date(2025, 11, 3), dt.date(2025, 11, 14), entity_id="JP:TSE",
                          sheet="Tokyo & Nagoya")
    conform(df, "fund_flows_daily")
    assert set(df["period"]) == {"week"} and set(df["flow_scope"]) == {"market"}
    assert sorted(set(df["trade_date"])) == [dt.date(2025, 11, 7), dt.date(2025, 11, 14)]
    w1 = df.filter(pl.col("trade_date") == dt.date(2025, 11, 7))
    net = dict(zip(w1["investor_type"], w1["net_buy_value"], strict=True))
    # 千円 -> yen: (purchases - sales) x 1e3
    assert net["foreign"] == (14_920_044_434 - 15_234_567_890) * 1e3
    assert net["individual"] == (4_587_654_321 - 4_123_456_789) * 1e3
    # その他法人等 + その他金融機関 + 証券会社 are one 'other'
    assert net["other"] == ((41_234_567 - 45_678_901) + (21_098_765 - 23_456_789)
                            + (240_123_456 - 234_567_890)) * 1e3
    assert len(net) == 9 and "brokerage" not in net
    # The volume file (stock_vol) and the PDF on the page are not fetched.
    assert not any("stock_vol" in r.target or r.target.endswith(".pdf") for r in fetch_log.records)


@respx.mock
def test_million_yen_table_is_scaled_by_1e6(jpx):
    _pages(respx)
    _files(respx)
    df = jpx.weekly_flows(dt.date(2025, 11, 10), dt.date(2025, 11, 14), sheet="Tokyo & Nagoya")
    net = dict(zip(df["investor_type"], df["net_buy_value"], strict=True))
    # same flows as the thousand-yen file, rounded to millions
    assert net["foreign"] == (14_920_044 - 15_234_567) * 1e6
    assert net["foreign"] == pytest.approx((14_920_044_434 - 15_234_567_890) * 1e3, rel=1e-5)


@respx.mock
def test_week_ending_on_a_holiday_is_dated_on_its_last_trading_day(jpx, monkeypatch):
    import selloff.sources.live.jpx as mod

    # Were Friday 2025-11-07 a holiday, the week of 11/04 - 11/07 would be dated Thursday.
    real = mod.trading_days
    monkeypatch.setattr(mod, "trading_days", lambda market, a, b: [
        d for d in real(market, a, b) if d != dt.date(2025, 11, 7)])
    _pages(respx, index="<html></html>")
    _files(respx)
    df = jpx.weekly_flows(dt.date(2025, 11, 3), dt.date(2025, 11, 7))
    assert set(df["trade_date"]) == {dt.date(2025, 11, 6)}


@respx.mock
def test_empty_answer_on_trading_days_is_an_error(jpx):
    _pages(respx, index="<html><body>no files</body></html>", archive="<html></html>")
    with pytest.raises(EmptyAnswer) as err:
        jpx.weekly_flows(dt.date(2025, 11, 4), dt.date(2025, 11, 7))
    assert str(err.value).startswith("JPX:") and "2025-11-04" in str(err.value)


@respx.mock
def test_empty_answer_on_a_holiday_is_a_no_op(jpx):
    _pages(respx, index="<html></html>", archive="<html></html>")
    assert jpx.weekly_flows(dt.date(2025, 11, 3), dt.date(2025, 11, 3)) is None  # Culture Day


@respx.mock
def test_429_then_success(jpx):
    route = respx.get(f"{BASE}{INDEX_PATH}").mock(side_effect=[
        httpx.Response(429), httpx.Response(200, text=fixture_text("jpx", "index.html"))])
    respx.get(f"{BASE}{ARCHIVE_PATH.format(n=0)}").mock(return_value=httpx.Response(
        200, text=fixture_text("jpx", "archives-00.html")))
    respx.get(f"{BASE}{ARCHIVE_PATH.format(n=1)}").mock(return_value=httpx.Response(404))
    _files(respx)
    df = jpx.weekly_flows(dt.date(2025, 11, 3), dt.date(2025, 11, 14))
    assert route.call_count == 2 and df.height == 18


@respx.mock
def test_429_until_failure(jpx, policy):
    _pages(respx)
    route = respx.get(FILE_1107).mock(return_value=httpx.Response(429))
    with pytest.raises(SourceUnavailable) as err:
        jpx.weekly_flows(dt.date(2025, 11, 3), dt.date(2025, 11, 7))
    assert route.call_count == policy.attempts
    assert str(err.value).startswith("JPX:") and FILE_1107 in str(err.value)


@respx.mock
def test_malformed_payload_without_unit(jpx):
    _pages(respx)
    _files(respx, week_1114="stock_val_1_251121_no_unit.xlsx")
    with pytest.raises(MalformedPayload) as err:
        jpx.weekly_flows(dt.date(2025, 11, 10), dt.date(2025, 11, 14))
    assert err.value.field == "unit (単位)" and "stock_val_1_251114" in str(err.value)


@respx.mock
def test_unknown_sheet_is_malformed(jpx):
    _pages(respx)
    _files(respx)
    with pytest.raises(MalformedPayload) as err:
        jpx.weekly_flows(dt.date(2025, 11, 3), dt.date(2025, 11, 7), sheet="TSE Growth")
    assert err.value.field == "sheet" and "Tokyo & Nagoya" in str(err.value)


@respx.mock
def test_not_an_excel_file_is_malformed(jpx):
    _pages(respx)
    respx.get(FILE_1107).mock(return_value=httpx.Response(200, content=b"<html>moved</html>"))
    with pytest.raises(MalformedPayload) as err:
        jpx.weekly_flows(dt.date(2025, 11, 3), dt.date(2025, 11, 7))
    assert err.value.field == "<workbook>"


@respx.mock
def test_xls_with_two_week_blocks_takes_the_week_of_the_column_it_reads(jpx):
    """JPX publishes .xls (read with xlrd). With last week's block beside this week's, the
    balance comes from the rightmost column, so the week must be that block's (11/04 -
    11/07, dated on its last session 11-07), not the first heading (10/27 - 10/31)."""
    xls = f"{ATT}/b5b4pj0000068abc-att/stock_val_1_251107.xls"
    index = f'<html><body><a href="{xls}">stock_val_1_251107.xls</a></body></html>'
    _pages(respx, index=index, archive="<html></html>")
    respx.get(xls).mock(return_value=httpx.Response(
        200, content=fixture_path("jpx", "stock_val_1_251107_two_weeks.xls").read_bytes()))
    df = jpx.weekly_flows(dt.date(2025, 10, 27), dt.date(2025, 11, 7), entity_id="JP:TSE",
                          sheet="Tokyo & Nagoya")
    conform(df, "fund_flows_daily")
    assert set(df["trade_date"]) == {dt.date(2025, 11, 7)}
    net = dict(zip(df["investor_type"], df["net_buy_value"], strict=True))
    # This week's block (build_xls_fixture.py): purchases - sales, thousand yen -> yen;
    # last week's block has the opposite sign.
    assert net["foreign"] == (14_920_044_434 - 15_234_567_890) * 1e3
    assert net["individual"] == (4_587_654_321 - 4_123_456_789) * 1e3
    assert len(net) == 9


def test_xlrd_is_a_declared_live_dependency_and_pinned() -> None:
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    live = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]["live"]
    assert any(d.startswith("xlrd") for d in live)
    assert any(line.startswith("xlrd==") for line in (root / "constraints.txt").read_text().splitlines())
