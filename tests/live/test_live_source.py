"""LiveSource: configuration from the environment at call time, every dataset through the
landing contract, the capture into a snapshot folder, and failing fast without network."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pandas as pd
import polars as pl
import pytest
import respx
from _live_support import (
    TODAY,
    FakeTicker,
    Scripted,
    fixture_frame,
    fixture_path,
    fixture_text,
    yahoo_history,
)

from selloff.contracts import DATASET_ORDER
from selloff.settings import SettingsError, live_settings_from_env, settings_from_env
from selloff.sources.live import (
    LiveConfig,
    LiveConfigError,
    LiveSource,
    RetryPolicy,
    SourceUnreachable,
    capture_snapshot,
)
from selloff.sources.live.capture import CaptureError
from selloff.sources.live.jpx import ARCHIVE_PATH, INDEX_PATH
from selloff.sources.live.universe import default_universe_path, load_universe
from selloff.sources.snapshot import SnapshotSource

SEC, ECB, JPX = "https://sec.test", "https://ecb.test/service", "https://jpx.test"
START, END = dt.date(2025, 11, 3), dt.date(2025, 11, 7)

UNIVERSE = """
securities:
  - {security_id: "US:NVDA", name: Nvidia, sector: Semiconductors, is_ai: true, cik: "1045810"}
  - {security_id: "US:NVDA.X", name: "a second line of the same company", cik: "1045810", yahoo: NVDA}
  - {security_id: "CN:688256.SH", name: Cambricon, name_local: 寒武纪, sector: 电子, is_ai: true}
  - {security_id: "KR:005930", name: Samsung Electronics, listing_board: KOSPI, is_ai: true}
  - {security_id: "JP:9984", name: SoftBank Group, is_ai: true}
indexes:
  - {index_id: "JP:N225", name: Nikkei 225, yahoo: "^N225"}
  - {index_id: "CN:000688.SH", name: STAR 50, csindex: "000688"}
baskets:
  AI: ["US:NVDA", "CN:688256.SH", "KR:005930", "JP:9984"]
concept_boards:
  - {name: 人工智能, basket_id: CN_CONCEPT_AI}
market_flows:
  KR: [KOSPI]
  JP: {entity_id: "JP:TSE", sheet: "Tokyo & Nagoya"}
fx: [USD, CNY, JPY, KRW]
"""


def _akshare_api() -> SimpleNamespace:
    codes = {"股票代码": str, "代码": str, "板块代码": str, "指数代码": str}

    def frame(name: str):
        return lambda *a, **k: fixture_frame("akshare", name, dtype=codes)

    return SimpleNamespace(
        stock_zh_a_hist=frame("stock_zh_a_hist_688256.csv"),
        stock_individual_fund_flow=frame("stock_individual_fund_flow_688256.csv"),
        stock_concept_fund_flow_hist=frame("stock_concept_fund_flow_hist_BK0800.csv"),
        stock_board_concept_name_em=frame("stock_board_concept_name_em.csv"),
        stock_board_concept_cons_em=frame("stock_board_concept_cons_em_BK0800.csv"),
        stock_zh_index_hist_csindex=frame("stock_zh_index_hist_csindex_000688.csv"),
        stock_zh_index_value_csindex=frame("stock_zh_index_value_csindex_000688.csv"),
    )


def _pykrx_api() -> SimpleNamespace:
    def read(name: str) -> pd.DataFrame:
        return pd.read_csv(fixture_path("krx", name), index_col="날짜", parse_dates=["날짜"])

    return SimpleNamespace(
        get_market_trading_value_by_date=lambda f, t, who: read(
            f"get_market_trading_value_by_date_{who}.csv"),
        get_market_cap_by_date=lambda f, t, who: read(f"get_market_cap_by_date_{who}.csv"),
    )


def _serve_http(mock) -> None:
    mock.get(f"{SEC}/api/xbrl/companyfacts/CIK0001045810.json").mock(
        return_value=httpx.Response(200, text=fixture_text("sec", "companyfacts_CIK0001045810.json")))
    mock.get(f"{SEC}/submissions/CIK0001045810.json").mock(
        return_value=httpx.Response(200, text=fixture_text("sec", "submissions_CIK0001045810.json")))
    mock.get(url__startswith=f"{ECB}/data/EXR/").mock(
        return_value=httpx.Response(200, text=fixture_text("ecb", "exr_D_2025-11-03_2025-11-05.csv")))
    mock.get(f"{JPX}{INDEX_PATH}").mock(return_value=httpx.Response(200, text="<html></html>"))
    mock.get(f"{JPX}{ARCHIVE_PATH.format(n=0)}").mock(
        return_value=httpx.Response(200, text=fixture_text("jpx", "archives-00.html")))
    mock.get(f"{JPX}{ARCHIVE_PATH.format(n=1)}").mock(return_value=httpx.Response(404))
    mock.get(url__regex=r".*/stock_val_1_251107\.xlsx$").mock(return_value=httpx.Response(
        200, content=fixture_path("jpx", "stock_val_1_251107.xlsx").read_bytes()))


@pytest.fixture()
def live(tmp_path: Path) -> LiveSource:
    path = tmp_path / "universe.yaml"
    path.write_text(UNIVERSE, encoding="utf-8")
    config = LiveConfig(start=START, end=END, universe_path=path,
                        sec_user_agent="Selloff Tests tests@example.com",
                        sec_base_url=SEC, ecb_base_url=ECB, jpx_base_url=JPX,
                        policy=RetryPolicy.fast())
    script = {"frames": {"NVDA": yahoo_history("NVDA", "NVDA_history_2025-11.csv")}}
    hooks = {"ticker_factory": lambda s: FakeTicker(s, script), "akshare_api": _akshare_api(),
             "pykrx_api": _pykrx_api(), "rate_per_second": 1000}
    return LiveSource(config, hooks=hooks, today=TODAY)


# -- configuration ----------------------------------------------------------------------------
def test_config_is_read_when_asked_not_at_import(monkeypatch):
    import subprocess

    env = {**os.environ, "SELLOFF_LIVE_START": "not a date", "KRX_ID": "x", "KRX_PW": "y"}
    code = "import selloff.sources.live, selloff.sources.live.source; print('imported')"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0 and "imported" in done.stdout, done.stderr
    monkeypatch.setenv("SELLOFF_LIVE_START", "not a date")
    with pytest.raises(SettingsError) as err:
        settings_from_env()
    assert "SELLOFF_LIVE_START" in str(err.value)


def test_from_env_defaults_and_values(monkeypatch, tmp_path):
    for var in ("SELLOFF_LIVE_START", "SELLOFF_LIVE_END", "SELLOFF_LIVE_UNIVERSE"):
        monkeypatch.delenv(var, raising=False)
    cfg = LiveConfig.from_settings(live_settings_from_env({}))
    assert (cfg.start, cfg.end) == (dt.date(2025, 9, 1), dt.date(2025, 12, 31))
    assert cfg.universe_path is None and cfg.sec_user_agent is None
    env = {"SELLOFF_LIVE_START": "2025-10-01", "SELLOFF_LIVE_END": "2025-11-30",
           "SEC_USER_AGENT": "A B a@b.c", "KRX_ID": "kid", "KRX_PW": "kpw-secret",
           "SELLOFF_LIVE_UNIVERSE": str(default_universe_path())}
    live = live_settings_from_env(env)
    cfg = LiveConfig.from_settings(live)
    assert (cfg.start, cfg.end) == (dt.date(2025, 10, 1), dt.date(2025, 11, 30))
    assert (cfg.krx_id, cfg.krx_pw, cfg.sec_user_agent) == ("kid", "kpw-secret", "A B a@b.c")
    for shown in (repr(cfg), repr(live), repr(settings_from_env(env))):
        assert "kpw-secret" not in shown and "a@b.c" not in shown
    with pytest.raises(SettingsError):
        live_settings_from_env({"SELLOFF_LIVE_START": "2025-12-01", "SELLOFF_LIVE_END": "2025-11-01"})


def test_make_source_builds_live_from_settings(monkeypatch):
    from selloff.sources import make_source

    # The reachability preflight has its own test (test_live_cli.py); here only the wiring.
    settings = settings_from_env({"SELLOFF_SOURCE": "live", "SELLOFF_LIVE_END": "2025-10-31",
                                  "SELLOFF_LIVE_PREFLIGHT": "0", "KRX_ID": "kid"})
    # make_source is pure: the process environment is not read (a contrary value there
    # changes nothing).
    monkeypatch.setenv("SELLOFF_LIVE_END", "2025-09-30")
    monkeypatch.setenv("KRX_ID", "other")
    src = make_source(settings.source)
    assert isinstance(src, LiveSource) and src.config.end == dt.date(2025, 10, 31)
    assert src.config.krx_id == "kid"


def test_packaged_universe_has_the_names_of_the_issue():
    u = load_universe()
    ids = {s.security_id for s in u.securities}
    assert {"US:NVDA", "US:ORCL", "CN:688256.SH", "CN:300308.SZ", "KR:005930", "KR:000660",
            "JP:9984", "JP:8035", "JP:6857"} <= ids
    assert len(u.baskets["US_AI_BIG8"]) == 8 and u.indexes and u.kr_markets == ("KOSPI", "KOSDAQ")


def test_csv_universe_and_bad_ids(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text("security_id,name,cik,is_ai\nUS:NVDA,Nvidia,1045810,true\nJP:9984,SoftBank,,\n")
    u = load_universe(path)
    assert [s.security_id for s in u.securities] == ["US:NVDA", "JP:9984"]
    assert u.securities[0].is_ai and u.securities[0].cik == "1045810" and not u.indexes
    path.write_text("security_id\nCN:600519\n")
    with pytest.raises(LiveConfigError) as err:
        load_universe(path)
    assert "exchange suffix" in str(err.value) and "row 1" in str(err.value)


def test_missing_sec_user_agent_is_a_clear_error(live):
    live.config = LiveConfig(start=START, end=END, universe_path=live.config.universe_path,
                             sec_base_url=SEC, policy=RetryPolicy.fast())
    with pytest.raises(LiveConfigError) as err:
        live.fetch("fundamentals")
    assert "SEC_USER_AGENT" in str(err.value)


# -- every dataset ----------------------------------------------------------------------------
@respx.mock
def test_every_dataset_passes_the_landing_contract(live):
    _serve_http(respx)
    loaded = {d: live.load(d) for d in DATASET_ORDER}
    assert all(df is not None and df.height for df in loaded.values()), \
        [d for d, df in loaded.items() if df is None]
    prices = loaded["prices_daily"]
    assert set(prices["security_id"]) == {"US:NVDA", "US:NVDA.X", "CN:688256.SH", "KR:005930",
                                          "JP:9984"}
    assert set(prices.filter(pl.col("security_id") == "CN:688256.SH")["source"]) == {"AKShare"}
    # one SEC company, even with two lines of the universe carrying its CIK
    assert set(loaded["fundamentals"]["security_id"]) == {"US:NVDA"}
    shares = loaded["shares_outstanding"]
    assert set(shares["source"]) == {"SEC EDGAR", "Yahoo Finance", "KRX (pykrx)"}
    flows = loaded["fund_flows_daily"]
    assert set(zip(flows["flow_scope"], flows["entity_id"], strict=True)) == {
        ("security", "CN:688256.SH"), ("board", "CN:BK0800"), ("market", "KR:KOSPI"),
        ("security", "KR:005930"), ("market", "JP:TSE")}
    baskets = loaded["baskets"]
    concept = baskets.filter(pl.col("basket_id") == "CN_CONCEPT_AI")
    assert concept["security_id"].to_list() == ["CN:688256.SH"]  # members outside: left out
    assert set(loaded["fx_rates_daily"]["currency"]) == {"EUR", "CNY", "JPY", "KRW"}
    assert loaded["index_valuation_daily"]["index_id"].unique().to_list() == ["CN:000688.SH"]
    assert {r.source for r in live.fetch_log.records} >= {
        "Yahoo Finance", "AKShare", "KRX (pykrx)", "SEC EDGAR", "ECB", "JPX"}


@respx.mock
def test_expanded_board_adds_its_members(live, tmp_path):
    _serve_http(respx)
    path = tmp_path / "universe.yaml"
    path.write_text(UNIVERSE.replace("basket_id: CN_CONCEPT_AI}",
                                     "basket_id: CN_CONCEPT_AI, expand_universe: true}"))
    live.universe = load_universe(path)
    secs = live.load("securities")
    assert {"CN:300308.SZ", "CN:002230.SZ", "CN:601138.SH"} <= set(secs["security_id"])
    assert secs.filter(pl.col("security_id") == "CN:300308.SZ")["name_local"][0] == "中际旭创"
    assert live.load("baskets").filter(pl.col("basket_id") == "CN_CONCEPT_AI").height == 4


@respx.mock
def test_capture_writes_a_snapshot_that_replays(live, tmp_path):
    _serve_http(respx)
    folder = capture_snapshot(tmp_path / "capture", START, END, source=live)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["window"] == {"start": "2025-11-03", "end": "2025-11-07"}
    assert manifest["failures"] == {}
    log = manifest["fetch_log"]
    assert {"source", "dataset", "target", "rows", "fetched_at"} <= set(log[0])
    assert any(e["source"] == "SEC EDGAR" and "companyfacts" in e["target"] for e in log)
    assert any(e["source"] == "AKShare" and "stock_zh_a_hist" in e["target"] for e in log)
    assert "tests@example.com" not in (folder / "manifest.json").read_text(encoding="utf-8")
    replay = SnapshotSource(folder)
    for dataset in DATASET_ORDER:
        assert replay.load(dataset).height == manifest["coverage"][dataset]["rows"]


@respx.mock
def test_capture_keeps_what_worked_and_names_what_failed(live, tmp_path):
    _serve_http(respx)
    respx.get(url__startswith=f"{ECB}/data/EXR/").mock(return_value=httpx.Response(503))
    with pytest.raises(CaptureError) as err:
        capture_snapshot(tmp_path / "partial", START, END, source=live)
    assert "fx_rates_daily" in str(err.value) and "ECB" in str(err.value)
    folder = err.value.path
    assert not (folder / "fx_rates_daily.parquet").exists()
    assert (folder / "prices_daily.parquet").exists()
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert "fx_rates_daily" in manifest["failures"]


# -- no network -------------------------------------------------------------------------------
CLOSED = "http://127.0.0.1:9"  # loopback, nothing listens on the discard port


@pytest.fixture()
def offline(monkeypatch, tmp_path):
    """The environment of a machine without network: every proxy and base URL points at a
    closed local port, so libraries and httpx alike fail to connect at once."""
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.setenv(var, CLOSED)
    for var in ("NO_PROXY", "no_proxy", "KRX_ID", "KRX_PW", "SELLOFF_LIVE_UNIVERSE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SELLOFF_LIVE_SEC_URL", CLOSED)
    monkeypatch.setenv("SELLOFF_LIVE_ECB_URL", CLOSED)
    monkeypatch.setenv("SELLOFF_LIVE_JPX_URL", CLOSED)
    monkeypatch.setenv("SEC_USER_AGENT", "Selloff Tests tests@example.com")
    import yfinance as yf

    yf.set_tz_cache_location(str(tmp_path / "yf-cache"))  # keep yfinance out of ~/.cache
    yield


@pytest.mark.parametrize(("dataset", "source"), [
    ("fx_rates_daily", "ECB"),
    ("fundamentals", "SEC EDGAR"),
    ("prices_daily", "Yahoo Finance"),
    ("fund_flows_daily", "AKShare"),
])
def test_without_network_fails_fast_naming_the_source(offline, dataset, source):
    # the real adapters and the default retry policy
    live = LiveSource.from_settings(settings_from_env().source.live)
    began = time.monotonic()
    with pytest.raises(SourceUnreachable) as err:
        live.load(dataset)
    elapsed = time.monotonic() - began
    assert elapsed < 15, f"took {elapsed:.1f} s"
    msg = str(err.value)
    assert msg.startswith(f"{source}:") and "cannot connect" in msg
    # the next dataset from the same source does not wait again
    began = time.monotonic()
    with pytest.raises(SourceUnreachable) as again:
        live.load(dataset)
    assert time.monotonic() - began < 0.5 and "earlier in this run" in str(again.value)


def test_without_network_http_url_is_named(offline):
    with pytest.raises(SourceUnreachable) as err:
        LiveSource.from_settings(settings_from_env().source.live).load("fx_rates_daily")
    assert f"{CLOSED}/data/EXR/D.USD+CNY+JPY+KRW+HKD+GBP.EUR.SP00.A" in str(err.value)


def test_library_call_failure_is_retried_once_then_named(live):
    stub = Scripted(lambda **kw: None, always_fail=ConnectionRefusedError(111, "refused"))
    live.hooks["akshare_api"].stock_zh_a_hist = stub
    with pytest.raises(SourceUnreachable) as err:
        live.fetch("prices_daily")
    assert len(stub.calls) == 2 and "stock_zh_a_hist" in str(err.value)


def test_a_registry_market_without_a_price_adapter_is_named(live, tmp_path):
    """TW is in the market registry but no live adapter serves its prices yet: a universe
    with a Taiwan name fails naming the market, instead of asking AKShare for the code."""
    path = tmp_path / "tw.yaml"
    path.write_text(UNIVERSE.replace(
        '  - {security_id: "JP:9984", name: SoftBank Group, is_ai: true}\n',
        '  - {security_id: "JP:9984", name: SoftBank Group, is_ai: true}\n'
        '  - {security_id: "TW:2330", name: TSMC, is_ai: true}\n'), encoding="utf-8")
    live.universe = load_universe(path)
    with pytest.raises(LiveConfigError, match="no live price adapter for market TW"):
        live.fetch("prices_daily")
