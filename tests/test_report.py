"""The HTML report (selloff.report) from small hand-built frames."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from selloff.analytics.rotation import ROTATION_SCHEMA
from selloff.analytics.tables import (
    BASKET_FACTOR_SPLIT_SCHEMA,
    FACTOR_ATTRIBUTION_SCHEMA,
    ROLLUP_SCHEMA,
    WINDOWS_SCHEMA,
)
from selloff.analytics.valuation_spread import VALUATION_SPREAD_SCHEMA
from selloff.report import SECTION_IDS, chart_images, write_selloff_report

D = dt.date
W = "selloff_period"
CHROMIUM = Path("/usr/bin/chromium")


def _weekdays(start: dt.date, end: dt.date) -> list[dt.date]:
    out, d = [], start
    while d <= end:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def _rollup_row(kind: str, gid: str, n: int, start: float, price: float, shares: float,
                fx: float, rerating: float, earnings: float) -> dict:
    change = price + shares + fx
    return {"window_id": W, "group_kind": kind, "group_id": gid, "n_securities": n,
            "mcap_usd_start": start, "mcap_usd_end": start + change, "change_usd": change,
            "price_usd": price, "shares_usd": shares, "fx_usd": fx, "rerating_usd": rerating,
            "earnings_usd": earnings,
            "no_earnings_basis_usd": price + shares - rerating - earnings,
            "share_of_total": None}


def report_frames() -> dict[str, pl.DataFrame]:
    bn = 1e9
    windows = pl.DataFrame(
        [{"window_id": W, "market": m, "kind": "named", "start_date": D(2025, 10, 27),
          "end_date": D(2025, 11, 28), "basis": "config", "entity_id": None}
         for m in ("US", "CN", "KR", "JP")],
        schema=WINDOWS_SCHEMA,
    )
    rollup = pl.DataFrame([
        _rollup_row("total", "ALL", 700, 60000 * bn, -1500 * bn, 20 * bn, -80 * bn,
                    -1300 * bn, -150 * bn),
        _rollup_row("market", "US", 500, 50000 * bn, -1200 * bn, 15 * bn, 0.0, -1100 * bn, -90 * bn),
        _rollup_row("market", "CN", 150, 6000 * bn, -200 * bn, 5 * bn, -50 * bn, -150 * bn, -40 * bn),
        _rollup_row("market", "KR", 30, 2000 * bn, -70 * bn, 0.0, -20 * bn, -40 * bn, -15 * bn),
        _rollup_row("market", "JP", 20, 2000 * bn, -30 * bn, 0.0, -10 * bn, -10 * bn, -5 * bn),
        _rollup_row("basket", "US_AI_BIG8", 8, 22000 * bn, -900 * bn, 5 * bn, 0.0, -850 * bn, -40 * bn),
        _rollup_row("basket", "CN_AI", 18, 800 * bn, -60 * bn, 0.0, -5 * bn, -50 * bn, -5 * bn),
        _rollup_row("basket", "CN_DIVIDEND", 10, 500 * bn, 12 * bn, 0.0, -3 * bn, 10 * bn, 2 * bn),
    ], schema=ROLLUP_SCHEMA)

    days = _weekdays(D(2025, 10, 13), D(2025, 11, 28))
    members = {"US_AI_BIG8": ["US:NVDA", "US:MSFT"], "CN_AI": ["CN:688256.SH"],
               "CN_DIVIDEND": ["CN:601088.SH"]}
    base = {"US:NVDA": 4500 * bn, "US:MSFT": 3800 * bn, "CN:688256.SH": 80 * bn,
            "CN:601088.SH": 120 * bn}
    mc_rows = []
    for sid, b in base.items():
        for i, d in enumerate(days):
            drift = -0.004 * max(0, i - 10) if "DIV" not in sid and sid != "CN:601088.SH" else 0.001 * i
            mc_rows.append({"security_id": sid, "trade_date": d, "market_cap_usd": b * (1 + drift)})
    mc = pl.DataFrame(mc_rows)
    bm = pl.DataFrame([{"basket_id": b, "security_id": s, "valid_from": None, "valid_to": None}
                       for b, ss in members.items() for s in ss],
                      schema={"basket_id": pl.Utf8, "security_id": pl.Utf8,
                              "valid_from": pl.Date, "valid_to": pl.Date})

    rot_rows = []
    for m, types in (("KR", {"foreign": -4.6 * bn, "individual": 5.1 * bn, "pension": 0.3 * bn}),
                     ("JP", {"foreign": -2.3 * bn, "individual": 1.9 * bn})):
        for t, v in types.items():
            rot_rows.append({"window_id": W, "market": m, "dimension": "investor_type",
                             "bucket": t, "investor_type": t, "net_flow_usd": v})
    for m in ("US", "CN"):
        for g, r in (("ai_tech", -0.09), ("banks", 0.03), ("coal", 0.05), ("consumer", 0.01)):
            rot_rows.append({"window_id": W, "market": m, "dimension": "sector_group",
                             "bucket": g, "n_securities": 10, "cap_weighted_return": r})
        for q, r in (("Q1", 0.02), ("Q5", -0.08)):
            rot_rows.append({"window_id": W, "market": m, "dimension": "pe_quintile",
                             "bucket": q, "n_securities": 5, "cap_weighted_return": r})
        rot_rows.append({"window_id": W, "market": m, "dimension": "spread", "bucket": "Q1-Q5",
                         "n_securities": 10, "cap_weighted_return": 0.10})
    rotation = pl.DataFrame(rot_rows, schema=ROTATION_SCHEMA)

    vs_rows = []
    for basket, pe0 in (("US_AI_BIG8", 42.0), ("CN_AI", 95.0)):
        for i, d in enumerate(days):
            ai_pe = pe0 * (1 - 0.003 * max(0, i - 10))
            div = 7.6 + 0.005 * i
            vs_rows.append({"trade_date": d, "ai_basket_id": basket, "ai_pe": ai_pe,
                            "dividend_ref": "CN:000922.SH", "dividend_pe": div,
                            "ratio": ai_pe / div, "ratio_percentile": None})
    vs = pl.DataFrame(vs_rows, schema=VALUATION_SPREAD_SCHEMA).with_columns(
        ((pl.col("ratio").rank("average").over("ai_basket_id") - 1)
         / (pl.len().over("ai_basket_id") - 1)).alias("ratio_percentile"))

    split = pl.DataFrame([
        {"window_id": W, "basket_id": "US_AI_BIG8", "market": "US", "n_members": 8, "n_used": 7,
         "cap_coverage": 0.97, "basket_return": -0.061, "market_part": -0.035,
         "valuation_part": -0.012, "ai_theme_part": -0.020, "idiosyncratic_part": 0.006,
         "note": "intercept in market_part; 1 of 8 members excluded: P/E missing or <= 0 at t0 (1)"},
        {"window_id": W, "basket_id": "CN_AI", "market": "CN", "n_members": 18, "n_used": 15,
         "cap_coverage": 0.9, "basket_return": -0.094, "market_part": -0.04,
         "valuation_part": -0.03, "ai_theme_part": -0.01, "idiosyncratic_part": -0.014,
         "note": "intercept in market_part"},
        {"window_id": W, "basket_id": "CN_DIVIDEND", "market": "CN", "n_members": 10,
         "n_used": 10, "cap_coverage": 1.0, "basket_return": 0.02, "market_part": -0.01,
         "valuation_part": 0.02, "ai_theme_part": 0.0, "idiosyncratic_part": 0.01,
         "note": "intercept in market_part"},
    ], schema=BASKET_FACTOR_SPLIT_SCHEMA)
    fa = pl.DataFrame([
        {"window_id": W, "market": m, "index_id": i, "t0_date": D(2025, 10, 24),
         "t1_date": D(2025, 11, 28), "term": t, "coefficient": c, "std_error": 0.01,
         "t_stat": c / 0.01, "r2": 0.31, "n": n, "beta_days_used": 250, "note": None}
        for m, i, n in (("US", "US:SPX", 480), ("CN", "CN:000300.SH", 290))
        for t, c in (("intercept", -0.02), ("beta", -0.03), ("log_pe_z", -0.012),
                     ("is_ai", -0.02))
    ], schema=FACTOR_ATTRIBUTION_SCHEMA)

    claims = pl.DataFrame({
        "claim_id": ["C01", "C08", "C15"],
        "claim_text": ['US "AI big 8" lost nearly USD 800 bn in a week',
                       "ChiNext fell 7.16% in a single week",
                       "Accel: USD 4 trn of data-centre capex <needs> 3.1 trn revenue"],
        "stated_value": [-800e9, -0.0716, None],
        "computed_value": [-812e9, -0.0531, None],
        "unit": ["USD", "return", None],
        "verdict": ["supported", "contradicted", "external"],
        "window_start": [D(2025, 11, 3), D(2025, 11, 17), None],
        "window_end": [D(2025, 11, 7), D(2025, 11, 21), None],
        "entities": ["US_AI_BIG8", "CN:399006.SZ", None],
        "note": ["worst week", None, "external study"],
    })
    flows = pl.DataFrame({
        "flow_scope": ["market"] * 2, "entity_id": ["KR:KOSPI"] * 2,
        "trade_date": [D(2025, 11, 3), D(2025, 11, 4)], "investor_type": ["foreign"] * 2,
        "period": ["day"] * 2, "net_buy_usd": [-1e9, -2e9],
    })
    return {
        "selloff_windows": windows, "selloff_rollup": rollup, "fct_market_cap_daily": mc,
        "dim_basket_member": bm, "rotation": rotation, "fct_fund_flows_daily": flows,
        "valuation_spread": vs, "basket_factor_split": split, "factor_attribution": fa,
        "claim_verdicts": claims,
        "data_quality_findings": pl.DataFrame({
            "dataset": ["shares_outstanding"], "entity": ["US:DXCM"],
            "date_from": [D(2025, 11, 3)], "date_to": [D(2025, 12, 9)],
            "kind": ["shares_jump_reverted"], "detail": ["count -88.9 %, back on 2025-12-10"],
            "action": ["held last good count"]}),
    }


_EXTERNAL = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def _h2_ids(text: str) -> list[str]:
    return re.findall(r'<h2 id="([^"]+)"', text)


def _section(text: str, sid: str) -> str:
    start = text.index(f'<h2 id="{sid}"')
    end = text.find("</section>", start)
    return text[start:end]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "selloff_report.html"
    return write_selloff_report(report_frames(), out, synthetic=True)


def test_every_section_is_present(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert _h2_ids(text) == list(SECTION_IDS)
    assert "insufficient data" not in text
    assert "SYNTHETIC DEMO DATA" in text
    # Every section but the claims and data-quality tables has its chart inline.
    for sid in [s for s in SECTION_IDS if s not in ("claims", "data-quality")]:
        assert "<svg" in _section(text, sid), sid


def test_report_is_self_contained(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert not _EXTERNAL.search(text)
    assert "<script" not in text.lower()
    assert "<link" not in text.lower()
    assert "@import" not in text and "url(http" not in text
    assert "<?xml" not in text and "<!DOCTYPE svg" not in text
    # Inline SVG ids are unique across the page (charts are prefixed).
    ids = re.findall(r'\sid="([^"]+)"', text)
    assert len(ids) == len(set(ids))


def test_content(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    waterfall = _section(text, "waterfall")
    assert "-1,560.0 bn" in waterfall  # price + shares + FX
    claims = _section(text, "claims")
    assert 'class="v-bad"' in claims and "contradicted" in claims
    assert "&lt;needs&gt;" in claims  # data is escaped
    assert "-812.000 bn USD" in claims and "-5.31%" in claims
    factors = _section(text, "factors")
    assert "US_AI_BIG8" in factors and "CN_DIVIDEND" not in factors  # AI baskets only
    flows = _section(text, "flows")
    assert "High to low" in flows and "foreign" in flows


def test_not_synthetic_has_no_banner(tmp_path: Path) -> None:
    out = write_selloff_report(report_frames(), tmp_path / "r.html", synthetic=False)
    assert "SYNTHETIC DEMO DATA" not in out.read_text(encoding="utf-8")


def test_missing_inputs_render_insufficient_data_notes(tmp_path: Path) -> None:
    out = write_selloff_report({}, tmp_path / "empty.html", synthetic=True)
    text = out.read_text(encoding="utf-8")
    assert _h2_ids(text) == list(SECTION_IDS)
    expected = {
        "waterfall": "insufficient data: selloff_rollup",
        "losses": "insufficient data: selloff_rollup",
        "basket-mcap": "insufficient data: fct_market_cap_daily, dim_basket_member",
        "flows": "insufficient data: rotation, fct_fund_flows_daily",
        "valuation-spread": "insufficient data: valuation_spread",
        "factors": "insufficient data: basket_factor_split",
        "claims": "insufficient data: claim_verdicts",
        "data-quality": "insufficient data: data_quality_findings",
    }
    for sid, note in expected.items():
        assert note in _section(text, sid), sid


def test_partial_inputs(tmp_path: Path) -> None:
    frames = report_frames()
    frames["rotation"] = frames["rotation"].head(0)  # present but empty
    del frames["claim_verdicts"]
    frames["basket_factor_split"] = frames["basket_factor_split"].filter(pl.lit(False))
    text = write_selloff_report(frames, tmp_path / "p.html", synthetic=False).read_text()
    # Flows fall back to the market-level fund flows over the window's dates.
    flows = _section(text, "flows")
    assert "fct_fund_flows_daily (market-level" in flows and "<svg" in flows
    assert "insufficient data: rotation" in flows  # the rotation tables
    assert "insufficient data: claim_verdicts" in _section(text, "claims")
    assert "insufficient data: basket_factor_split" in _section(text, "factors")
    assert "<svg" in _section(text, "waterfall")


def test_data_quality_section_lists_findings_and_says_when_there_are_none(tmp_path: Path) -> None:
    frames = report_frames()
    text = write_selloff_report(frames, tmp_path / "f.html", synthetic=False).read_text()
    section = _section(text, "data-quality")
    assert "shares_jump_reverted: 1" in section and "US:DXCM" in section
    frames["data_quality_findings"] = frames["data_quality_findings"].head(0)
    text = write_selloff_report(frames, tmp_path / "n.html", synthetic=False).read_text()
    assert "No findings" in _section(text, "data-quality")


def test_unknown_main_window(tmp_path: Path) -> None:
    text = write_selloff_report(report_frames(), tmp_path / "x.html", synthetic=False,
                                main_window_id="nope").read_text()
    assert "insufficient data: selloff_rollup (no &#39;total&#39; row for nope)" in text


def test_chart_images_are_pngs() -> None:
    images = chart_images(report_frames())
    assert set(images) == {"waterfall", "losses", "basket_mcap", "flows", "valuation_spread",
                           "factors"}
    for name, png in images.items():
        assert png[:8] == b"\x89PNG\r\n\x1a\n", name
        assert len(png) > 5000, name
    assert chart_images({}) == {}


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed "
                    "(apt-get install chromium); the screenshot check needs a real browser")
def test_screenshot_in_headless_chromium(report: Path, tmp_path_factory: pytest.TempPathFactory
                                         ) -> None:
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright not installed in the venv")
    shot = tmp_path_factory.mktemp("screenshot") / "selloff_report.png"
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.as_uri())
            h2s = page.eval_on_selector_all("h2", "els => els.map(e => e.id)")
            svg_boxes = page.eval_on_selector_all(
                "div.chart svg", "els => els.map(e => e.getBoundingClientRect().height)")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert h2s == list(SECTION_IDS)
    assert len(svg_boxes) == 6 and all(h > 150 for h in svg_boxes)
    assert [u for u in requests if not u.startswith("file://")] == []
    assert shot.stat().st_size > 100_000
    keep = Path("/tmp/selloff_report_screenshot.png")
    shutil.copyfile(shot, keep)  # for a human look; outside the repo
