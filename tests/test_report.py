"""The HTML report (selloff.report) from small hand-built analytics tables."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from selloff.analytics.tables import (
    BASKET_FACTOR_SPLIT_SCHEMA,
    FACTOR_ATTRIBUTION_SCHEMA,
    MOVES_SCHEMA,
    ROLLUP_SCHEMA,
    ROTATION_SCHEMA,
    VALUATION_SPREAD_SCHEMA,
    VERDICT_SCHEMA,
    WINDOWS_SCHEMA,
    tag_episode,
)
from selloff.episode import load_episodes
from selloff.report import (
    REPORT_TABLES,
    SECTION_IDS,
    ReportInputError,
    build_report,
    chart_images,
    write_selloff_report,
)
from selloff.report.claims_view import NOTE_CHARS, one_line
from selloff.report.sections import rebased_levels

D = dt.date
W = "selloff_period"
EP = "ai_selloff_2025"
CHROMIUM = Path("/usr/bin/chromium")
EPISODES = {e.episode_id: e for e in load_episodes()}
AI = EPISODES[EP]
LONG_NOTE = ("supported: -812.00 bn USD vs ≈ -800.00 bn USD (1.5 % off, tolerance ±10 %) | "
             "worst calendar week: close 2025-10-31 -> close 2025-11-07 | " + "x" * 300)


def _weekdays(start: dt.date, end: dt.date) -> list[dt.date]:
    out, d = [], start
    while d <= end:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def _move(kind: str, eid: str, period: str, t0: dt.date, t1: dt.date, ret: float | None,
          change: float | None = None, window_id: str | None = None,
          start: dt.date | None = None) -> dict:
    return {"episode_id": EP, "entity_kind": kind, "entity_id": eid,
            "market": "CN" if eid.startswith("CN") else "US", "period": period,
            "window_id": window_id, "start_date": start or t0 + dt.timedelta(days=1),
            "end_date": t1, "t0_date": t0, "t1_date": t1, "level_t0": None, "level_t1": None,
            "return": ret, "change_usd": change, "change_local": None, "n_members": 8,
            "basis": None}


def moves(days: list[dt.date]) -> pl.DataFrame:
    """Basket day rows (a gentle fall, the worst day on 11-13), the headline's worst week
    and its drawdown: -8.099 %, -1,950.47 bn USD from 10-29 to 11-20."""
    rows = []
    span = [d for d in days if d >= D(2025, 10, 24)]
    for basket, r in (("US_AI_BIG8", -0.004), ("CN_AI", -0.006), ("CN_DIVIDEND", 0.001)):
        for t0, t1 in zip(span, span[1:], strict=False):
            ret = -0.0244 if (basket, t1) == ("US_AI_BIG8", D(2025, 11, 13)) else r
            rows.append(_move("basket", basket, "day", t0, t1, ret,
                              -568.6e9 if ret == -0.0244 else ret * 20e12))
    rows.append(_move("basket", "US_AI_BIG8", "week", D(2025, 10, 31), D(2025, 11, 7),
                      -0.0348, -824.8e9, start=D(2025, 11, 3)))
    rows.append(_move("basket", "US_AI_BIG8", "window", D(2025, 10, 29), D(2025, 11, 20),
                      -0.08099069, -1950.4666e9, "drawdown:basket:US_AI_BIG8"))
    rows.append(_move("index", "US:SPX", "window", D(2025, 10, 28), D(2025, 11, 20),
                      -0.0511, None, "drawdown:US:SPX"))
    return pl.DataFrame(rows, schema=MOVES_SCHEMA)


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
         for m in ("US", "CN", "KR", "JP")]
        + [{"window_id": f"{k}:basket:US_AI_BIG8", "market": "US", "kind": k, "start_date": a,
            "end_date": b, "basis": "basket", "entity_id": "US_AI_BIG8"}
           for k, a, b in (("worst_day", D(2025, 11, 13), D(2025, 11, 13)),
                           ("worst_week", D(2025, 11, 3), D(2025, 11, 7)),
                           ("drawdown", D(2025, 10, 30), D(2025, 11, 20)))],
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

    claims = pl.DataFrame([
        {"claim_id": "C01", "claim_text": 'US "AI big 8" lost nearly USD 800 bn in a week',
         "stated_value": -800e9, "computed_value": -812e9, "unit": "USD",
         "stated_text": "≈ -800.00 bn USD", "computed_text": "-812.00 bn USD",
         "verdict": "supported", "window_start": D(2025, 11, 3), "window_end": D(2025, 11, 7),
         "entities": "US_AI_BIG8", "note": LONG_NOTE, "quote": "美股 AI 八巨头",
         "parts_json": '[{"name": "figure", "metric": "m", "verdict": "supported", '
                       '"computed_value": -812000000000.0, "unit": "USD"}]'},
        {"claim_id": "C08", "claim_text": "ChiNext fell 7.16% in a single week",
         "stated_value": -7.16, "computed_value": -5.31, "unit": "pct",
         "stated_text": "≈ -7.16 %", "computed_text": "-5.31 %", "verdict": "contradicted",
         "window_start": D(2025, 11, 17), "window_end": D(2025, 11, 21),
         "entities": "CN:399006.SZ, CN:1, CN:2, CN:3, CN:4", "note": None},
        {"claim_id": "C15", "claim_text": "Accel: USD 4 trn of data-centre capex <needs> 3.1 trn",
         "verdict": "external", "note": "external study"},
    ], schema=VERDICT_SCHEMA)
    findings = pl.DataFrame({
        "dataset": ["shares_outstanding"], "entity": ["US:DXCM"],
        "date_from": [D(2025, 11, 3)], "date_to": [D(2025, 12, 9)],
        "kind": ["shares_jump_reverted"], "detail": ["count -88.9 %, back on 2025-12-10"],
        "action": ["held last good count"]})
    frames = {
        "selloff_windows": windows, "selloff_rollup": rollup, "entity_moves": moves(days),
        "rotation": rotation, "valuation_spread": vs, "basket_factor_split": split,
        "factor_attribution": fa, "claim_verdicts": claims, "data_quality_findings": findings,
    }
    return {k: (v if k == "entity_moves" else tag_episode(v, EP)) for k, v in frames.items()}


_EXTERNAL = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def _h3_ids(text: str) -> list[str]:
    return re.findall(r'<h3 id="([^"]+)"', text)


def _section(text: str, sid: str) -> str:
    start = text.index(f'<h3 id="{sid}"')
    end = text.find("</section>", start)
    return text[start:end]


def _block(text: str, bid: str) -> str:
    start = text.index(f'<h2 id="{bid}"')
    end = text.find("<h2 ", start + 1)
    return text[start:] if end < 0 else text[start:end]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "selloff_report.html"
    return write_selloff_report(report_frames(), out, synthetic=True, episodes=[AI])


def test_every_section_is_present(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert _h3_ids(text) == ["comparison-table", *(f"{EP}-{s}" for s in SECTION_IDS)]
    assert "no data" not in text
    assert "SYNTHETIC DEMO DATA" in text
    # Every section but the claims and data-quality tables has its chart inline.
    for sid in [s for s in SECTION_IDS if s not in ("claims", "data-quality")]:
        assert "<svg" in _section(text, f"{EP}-{sid}"), sid


def test_title_and_lead_come_from_the_episode_and_entity_moves(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    assert f"<title>{AI.title}</title>" in text
    lead = ("US_AI_BIG8 fell 8.1 % (-1,950 bn USD) from its peak on 2025-10-29 to its "
            "trough on 2025-11-20.")
    # The lead opens the page (in the header) and the episode's block.
    assert text.index(lead) < text.index("<main>")
    assert lead in _block(text, EP)
    # The main window's figure beside it: the rollup total of selloff_period.
    assert "Main window <b>selloff_period</b> (2025-10-27 → 2025-11-28): market cap " \
        "-1,560 bn USD across 700 securities" in text


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
    assert "-1,560.0 bn" in _section(text, f"{EP}-waterfall")  # price + shares + FX
    claims = _section(text, f"{EP}-claims")
    assert 'class="badge b-contradicted"' in claims and "contradicted" in claims
    assert "&lt;needs&gt;" in claims  # data is escaped
    assert "-812.00 bn USD" in claims and "-5.31 %" in claims
    assert "CN:399006.SZ, CN:1, CN:2 (+2 more)" in claims
    factors = _section(text, f"{EP}-factors")
    # The episode's valuation.ai_baskets, not a pattern on the ids.
    assert "US_AI_BIG8" in factors and "CN_DIVIDEND" not in factors
    flows = _section(text, f"{EP}-flows")
    assert "High to low" in flows and "foreign" in flows
    baskets = _section(text, f"{EP}-baskets")
    assert "CN_DIVIDEND" in baskets and "AI baskets (drawn thick): US_AI_BIG8, CN_AI" in baskets


def test_claims_one_line_notes_with_details(report: Path) -> None:
    claims = _section(report.read_text(encoding="utf-8"), f"{EP}-claims")
    first = one_line(LONG_NOTE)
    assert first == "supported: -812.00 bn USD vs ≈ -800.00 bn USD (1.5 % off, tolerance ±10 %)"
    assert len(one_line("y" * 500)) == NOTE_CHARS
    row = claims[claims.index("<b>C01</b>"):claims.index("<b>C08</b>")]
    assert f"<td>{first}<details>" in row
    # The full note and the parts one click away.
    details = row[row.index("<details>"):row.index("</details>")]
    assert "x" * 300 in details and "worst calendar week" in details
    assert "<b>figure</b>: <code>m</code>" in details and "computed -812.00 bn" in details


def test_comparison_puts_episodes_side_by_side(tmp_path: Path) -> None:
    text = write_selloff_report(report_frames(), tmp_path / "two.html", synthetic=False,
                                episodes=[AI, EPISODES["tariff_shock_2025"]]).read_text()
    assert "SYNTHETIC DEMO DATA" not in text
    comp = _block(text, "comparison")
    assert AI.title in comp and EPISODES["tariff_shock_2025"].title in comp
    assert "2025-10-29 → 2025-11-20: -8.1%, -1,950.5 bn USD" in comp
    assert "2025-11-13: -2.4%, -568.6 bn USD" in comp            # worst day
    assert "2025-11-03 → 2025-11-07: -3.5%, -824.8 bn USD" in comp  # worst week
    assert "cap change, KR" in comp and "-90.0 bn USD" in comp
    assert "re-rating" in comp and "-1,300.0 bn USD" in comp
    # The episode without rows: every section says so, nothing fails.
    other = _block(text, "tariff_shock_2025")
    assert "no data: entity_moves has no drawdown row for the headline US:SPX" in other
    assert "no data: selloff_rollup has no rows for the main window us_tariff_crash" in other
    assert _h3_ids(text).count("tariff_shock_2025-claims") == 1


def test_missing_table_raises(tmp_path: Path) -> None:
    frames = report_frames()
    del frames["rotation"]
    with pytest.raises(ReportInputError, match="rotation"):
        write_selloff_report(frames, tmp_path / "x.html", synthetic=False, episodes=[AI])
    with pytest.raises(ReportInputError, match="entity_moves"):
        write_selloff_report({}, tmp_path / "x.html", synthetic=False, episodes=[AI])


def test_empty_tables_say_so(tmp_path: Path) -> None:
    frames = {k: v.head(0) for k, v in report_frames().items()}
    text = write_selloff_report(frames, tmp_path / "e.html", synthetic=False,
                                episodes=[AI]).read_text()
    for sid in ("waterfall", "losses", "baskets", "flows", "valuation-spread", "factors",
                "claims"):
        assert "no data" in _section(text, f"{EP}-{sid}"), sid
    assert "No findings" in _section(text, f"{EP}-data-quality")


def test_data_quality_section_lists_findings(report: Path) -> None:
    section = _section(report.read_text(encoding="utf-8"), f"{EP}-data-quality")
    assert "shares_jump_reverted: 1" in section and "US:DXCM" in section


def test_basket_levels_chain_link_the_day_returns() -> None:
    days = _weekdays(D(2025, 10, 13), D(2025, 11, 28))
    lv = rebased_levels(moves(days)).filter(pl.col("basket_id") == "CN_DIVIDEND")
    assert lv["trade_date"][0] == D(2025, 10, 24) and lv["level"][0] == 100.0
    n = lv.height - 1
    assert lv["level"][-1] == pytest.approx(100 * 1.001 ** n)


def test_chart_images_are_pngs() -> None:
    images = chart_images(build_report(report_frames(), [AI]))
    assert set(images) == {f"{EP}: {s}" for s in ("waterfall", "losses", "baskets", "flows",
                                                   "valuation-spread", "factors")}
    for name, png in images.items():
        assert png[:8] == b"\x89PNG\r\n\x1a\n", name
        assert len(png) > 5000, name


def test_assets_read_analytics_tables_only() -> None:
    from assets.report.fact_check import INPUTS as FACT_CHECK
    from assets.report.selloff_report import INPUTS as REPORT

    # the episode tables, and the whole-data candidates for "Sell-offs found in the data"
    assert REPORT.marts == () and REPORT.other == ()
    assert REPORT.analytics == (*REPORT_TABLES, "episode_candidates")
    assert FACT_CHECK.analytics == ("claim_verdicts",) and FACT_CHECK.marts == ()
    assert all(k.path[0] == "analytics" for k in REPORT.deps)


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
            h3s = page.eval_on_selector_all("h3", "els => els.map(e => e.id)")
            svg_boxes = page.eval_on_selector_all(
                "div.chart svg", "els => els.map(e => e.getBoundingClientRect().height)")
            details_open = page.eval_on_selector_all("details[open]", "els => els.length")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert h3s == ["comparison-table", *(f"{EP}-{s}" for s in SECTION_IDS)]
    assert len(svg_boxes) == 6 and all(h > 150 for h in svg_boxes)
    assert details_open == 0  # the full notes are one click away, not open
    assert [u for u in requests if not u.startswith("file://")] == []
    assert shot.stat().st_size > 100_000
    keep = Path("/tmp/selloff_report_screenshot.png")
    shutil.copyfile(shot, keep)  # for a human look; outside the repo
