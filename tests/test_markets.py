"""The market registry (selloff/markets.py): its entries agree with exchange_calendars,
everything that lists markets derives from it, and the dbt seeds are what it generates."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest
import yaml

from selloff import markets
from selloff.markets import REGISTRY, USD_PER_UNIT_BAND
from tests.xcals_child import calendar_facts

ROOT = Path(__file__).resolve().parent.parent
DBT = ROOT / "dbt_project"


@pytest.mark.parametrize("m", REGISTRY, ids=lambda m: m.code)
def test_entry_agrees_with_its_exchange_calendar(m: markets.Market) -> None:
    cal = calendar_facts(m.calendar, "2025-01-02")
    assert cal.timezone == m.timezone
    # The close in force today (TSE moved to 15:30 in 2024).
    assert cal.close == m.close
    assert m.currency in USD_PER_UNIT_BAND
    assert re.fullmatch(markets.id_pattern(), m.default_index)
    assert m.default_index.startswith(f"{m.code}:")
    assert set(m.mics) and all(re.fullmatch(r"[A-Z0-9]{4}", mic) for mic in m.mics)
    assert m.refresh_time > m.close


def test_taiwan_is_registered() -> None:
    tw = markets.market("TW")
    assert (tw.calendar, tw.currency, tw.timezone, tw.close, tw.default_index) == (
        "XTAI", "TWD", "Asia/Taipei", dt.time(13, 30), "TW:TAIEX")
    assert tw.cron == "0 14 * * 1-5"
    with pytest.raises(KeyError, match="unknown market 'XX'.*US, CN, KR, JP, TW"):
        markets.market("XX")


@pytest.mark.parametrize(("security_id", "ok"), [
    ("US:NVDA", True), ("US:BRK.B", True), ("CN:688256.SH", True), ("CN:000001.SZ", True),
    ("KR:005930", True), ("JP:9984", True), ("JP:130A", True), ("TW:2330", True),
    ("CN:688256", False),   # China needs the exchange suffix
    ("KR:5930", False), ("JP:99840", False), ("TW:23301", False), ("TW:TSMC", False),
    ("XX:1234", False),
])
def test_security_id_follows_its_markets_code_pattern(security_id: str, ok: bool) -> None:
    assert bool(re.fullmatch(markets.security_id_pattern(), security_id)) is ok
    known = markets.market_of(security_id) in markets.MARKETS
    assert (known and markets.market(markets.market_of(security_id)).security_id_matches(security_id)) is ok


def test_landing_gate_rejects_a_code_outside_its_markets_pattern() -> None:
    from selloff.contracts import DATASETS
    from selloff.validation import DataContractError, validate

    rows = [("TW:2330", "TW", "TWD"), ("TW:23301", "TW", "TWD"), ("ZZ:1", "US", "USD")]
    df = pl.DataFrame(
        [{"security_id": s, "market": m, "exchange_mic": None, "symbol": s[3:], "name": None,
          "name_local": None, "currency": c, "sector": None, "industry": None,
          "listing_board": None, "is_ai": False, "cik": None, "source": "t"} for s, m, c in rows],
        schema=DATASETS["securities"].schema)
    with pytest.raises(DataContractError) as err:
        validate(df, "securities")
    rules = {(v.row, v.rule) for v in err.value.violations}
    assert (2, "security code of its market (markets.py code_pattern)") in rules
    assert not any(row == 1 for row, _ in rules)  # TW:2330 is fine
    # A bad prefix is reported by the id rule, not a second time by the code rule.
    assert {r for row, r in rules if row == 3} >= {"id format: security_id"}
    assert (3, "security code of its market (markets.py code_pattern)") not in rules


@pytest.mark.parametrize("name", ["markets", "currencies"])
def test_committed_dbt_seed_is_what_the_registry_generates(name: str) -> None:
    committed = (DBT / "seeds" / f"{name}.csv").read_text(encoding="utf-8")
    assert committed == markets.seed_csv(name), (
        f"dbt_project/seeds/{name}.csv is stale: run `python -m selloff.markets`")


def test_write_dbt_seeds(tmp_path: Path) -> None:
    written = markets.write_dbt_seeds(tmp_path)
    assert sorted(p.name for p in written) == ["currencies.csv", "markets.csv"]
    seed = pl.read_csv(tmp_path / "markets.csv", infer_schema_length=0)
    assert seed["market"].to_list() == list(markets.MARKETS)
    assert dict(zip(seed["market"], seed["default_index_id"], strict=True))["TW"] == "TW:TAIEX"


def _yaml_tests() -> list[tuple[Path, str, object]]:
    out = []
    for path in (DBT / "models").rglob("*.yml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for model in doc.get("models", []):
            for col in model.get("columns", []):
                for test in col.get("data_tests", []) or []:
                    out.append((path, col["name"], test))
    return out


def test_dbt_market_and_currency_tests_read_the_seeds() -> None:
    """No model YAML hand-copies the market or currency list: every accepted_values list
    is free of them, and every `market`/`currency` column with a value test points at the
    generated seed."""
    codes = set(markets.MARKETS) | set(markets.CURRENCIES)
    tests = _yaml_tests()
    for path, col, test in tests:
        if isinstance(test, dict) and "accepted_values" in test:
            values = set(map(str, test["accepted_values"]["arguments"]["values"]))
            assert not values & codes, f"{path.name}: {col} lists {sorted(values & codes)} by hand"
    refs = {(path.name, col): test["relationships"]["arguments"]["to"]
            for path, col, test in tests if isinstance(test, dict) and "relationships" in test}
    assert {k for k, v in refs.items() if v == "ref('markets')"} >= {
        ("dim_security.yml", "market"), ("dim_index.yml", "market"),
        ("dim_trading_calendar.yml", "market"), ("fct_market_cap_daily.yml", "market"),
        ("stg_trading_calendar.yml", "market")}
    # The staging views of raw datasets leave these lists to the raw GX suites
    # (dbt_project/models/staging/_sources.yml), whose sets are the contracts', i.e. the
    # registry's.
    from selloff.contracts import DATASETS
    for name in ("securities", "indexes", "prices_daily", "fund_flows_daily", "fx_rates_daily"):
        assert DATASETS[name].allowed["currency"] == markets.CURRENCIES, name
    for name in ("securities", "indexes"):
        assert DATASETS[name].allowed["market"] == markets.MARKETS, name


def test_everything_that_lists_markets_derives_from_the_registry() -> None:
    from orchestration.jobs import build_jobs
    from orchestration.schedules import build_schedules
    from selloff.analytics.factor_exposures import DEFAULT_MARKET_INDEX
    from selloff.calendars import MARKET_CALENDARS, MARKET_TIMEZONES, calendar_frame
    from selloff.contracts import DATASETS, MARKET_CURRENCY, MARKETS
    from selloff.sources.demo import MARKET_ORDER

    assert MARKETS == markets.MARKETS == MARKET_ORDER
    assert DATASETS["securities"].allowed["market"] == markets.MARKETS
    assert DATASETS["prices_daily"].allowed["currency"] == markets.CURRENCIES
    assert {m.code: m.currency for m in REGISTRY} == MARKET_CURRENCY
    assert {m.code: m.calendar for m in REGISTRY} == MARKET_CALENDARS
    assert {m.code: m.timezone for m in REGISTRY} == MARKET_TIMEZONES
    assert {m.code: m.default_index for m in REGISTRY} == DEFAULT_MARKET_INDEX
    assert set(calendar_frame(end=dt.date(2025, 1, 31))["market"]) == set(markets.MARKETS)
    schedules = {s.name: s for s in build_schedules(build_jobs())}
    for m in REGISTRY:
        s = schedules[f"daily_{m.code.lower()}_after_close"]
        assert (s.cron_schedule, s.execution_timezone) == (m.cron, m.timezone)
        f = schedules[f"freshness_{m.code.lower()}"]
        assert (f.cron_schedule, f.execution_timezone) == (m.freshness_cron, m.timezone)
    assert len(schedules) == 2 * len(REGISTRY) + 1  # and filings_daily


def test_a_refresh_past_midnight_is_refused() -> None:
    from dataclasses import replace

    late = replace(markets.market("US"), close=dt.time(23, 45))
    with pytest.raises(ValueError, match="US: refresh .* falls on the next day"):
        _ = late.cron


def test_a_freshness_deadline_past_midnight_is_refused() -> None:
    from dataclasses import replace

    late = replace(markets.market("TW"), freshness_grace=dt.timedelta(hours=11))
    with pytest.raises(ValueError, match="TW: freshness deadline .* falls on the next day"):
        _ = late.fresh_by
    assert markets.market("US").fresh_by == dt.time(17, 30)  # 16:00 + 30 min + 1 h


def test_demo_markets_are_registry_markets_with_their_own_streams() -> None:
    from selloff.sources.demo_universe import CORE, DEMO_FX, DEMO_INDEXES, DEMO_MARKETS

    assert set(DEMO_MARKETS) <= set(markets.MARKETS)
    streams = [d.stream for d in DEMO_MARKETS.values()]
    assert len(set(streams)) == len(streams)
    assert {s.market for s in CORE} == set(DEMO_MARKETS)
    assert all(markets.market(s.market).security_id_matches(s.security_id) for s in CORE)
    for code in DEMO_MARKETS:
        m = markets.market(code)
        # The factor model's default index exists in the demo, and the currency has a path.
        assert m.default_index in {i[0] for i in DEMO_INDEXES}, code
        assert m.currency == "USD" or m.currency in DEMO_FX, code
        assert all(len(f) > 0 for f in DEMO_MARKETS[code].report_forms) or code == "US"


def test_market_of_in_python_polars_and_sql() -> None:
    import duckdb

    ids = ["US:NVDA", "CN:688256.SH", "KR:005930", "JP:8035", None]
    assert [markets.market_of(i) for i in ids if i] == ["US", "CN", "KR", "JP"]
    frame = pl.DataFrame({"entity_id": ids})
    assert frame.select(markets.market_of_expr("entity_id"))["entity_id"].to_list() == [
        "US", "CN", "KR", "JP", None]
    # A stated market wins where present; the prefix fills the rest.
    stated = frame.with_columns(market=pl.Series(["XX", None, None, None, None]))
    assert stated.select(markets.market_of_expr("entity_id", stated))["market"].to_list() == [
        "XX", "CN", "KR", "JP", None]
    sql = duckdb.sql(f"SELECT {markets.market_of_sql('entity_id')} AS m "
                     "FROM (SELECT unnest(?) AS entity_id)", params=[ids]).pl()
    assert sql["m"].to_list() == ["US", "CN", "KR", "JP", None]
