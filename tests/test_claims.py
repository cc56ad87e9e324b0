"""Claims: the registry, comparators, every metric on small hand-built frames with answers
computed by hand, missing data and failing metrics as rows, and the self-contained report."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import polars as pl
import pytest
import yaml

from selloff.analytics.detection import measure_moves
from selloff.analytics.rotation import rotation
from selloff.claims import (
    METRICS,
    VERDICT_SCHEMA,
    MetricResult,
    MissingData,
    RegistryError,
    combine_verdicts,
    compare,
    compute_claim_verdicts,
)
from selloff.claims.metrics import Frames, MetricContext, MetricSpec
from selloff.claims.registry import Registry, parse_registry
from selloff.episode import bundled_dir, load_episode
from selloff.episode_model import NamedWindow, WindowConfig
from selloff.markets import MARKETS
from selloff.report.fact_check import render_html, write_factcheck_report

D = dt.date
REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
ARTICLE = SHARED / "seed" / "000_a979d1da63498dff.txt"
REAL = SHARED / "data" / "real_2025"
PERIOD = {"start": D(2025, 10, 27), "end": D(2025, 11, 28)}


AI = load_episode(bundled_dir() / "ai_selloff_2025")


def load_registry() -> Registry:
    return AI.registry


def with_moves(frames: dict, period: dict = PERIOD) -> dict:
    """`frames` plus the `entity_moves` the claims look up, computed by the analytics
    engine over `period` (as the claim_verdicts asset reads them from the warehouse)."""
    if "entity_moves" in frames:
        return frames
    config = WindowConfig((NamedWindow("period", period["start"], period["end"], True),),
                          period["start"], period["end"], D(2025, 1, 1))
    moves, windows = measure_moves(config, [(period["start"], period["end"])], MARKETS,
                                   frames.get("fct_index_levels_daily"),
                                   frames.get("fct_market_cap_daily"),
                                   frames.get("dim_basket_member"))
    out = {**frames, "entity_moves": moves, "selloff_windows": windows}
    securities = frames.get("dim_security")
    if (securities is not None and "sector_group" in securities.columns
            and frames.get("fct_market_cap_daily") is not None):
        flows = frames.get("fct_fund_flows_daily")
        if flows is not None and "net_buy_usd" not in flows.columns:
            # The mart carries net_buy_usd: each day at its own rate.
            flows = flows.with_columns(
                (pl.col("net_buy_local") * pl.col("usd_per_unit")).alias("net_buy_usd"))
        out["rotation"] = rotation(windows, frames["fct_market_cap_daily"], None, securities,
                                   flows)
    return out


def verdicts(frames: dict, registry: Registry | None = None, synthetic: bool = False) -> pl.DataFrame:
    return compute_claim_verdicts(with_moves(frames), registry or AI.registry, synthetic)


def run(metric: str, frames: dict, ctx: MetricContext | None = None, **params) -> MetricResult:
    spec = METRICS[metric]
    # Scoped as the claims asset runs it: a read the metric does not declare fails.
    return spec.fn(Frames(with_moves(frames)).scoped(spec), {"search_period": PERIOD, **params},
                   ctx or MetricContext())


def mcap_frame(rows: dict[str, dict[D, tuple[float, float]]], currency: str = "USD",
               fx: float = 1.0) -> pl.DataFrame:
    """{security: {date: (close, shares)}} -> fct_market_cap_daily-like rows."""
    out = []
    for sid, days in rows.items():
        for d, (close, shares) in days.items():
            cap = close * shares if shares is not None else None
            out.append({"security_id": sid, "trade_date": d, "close": close, "adj_close": close,
                        "currency": currency, "shares": shares, "market_cap_local": cap,
                        "usd_per_unit": fx, "market_cap_usd": cap * fx if cap is not None else None})
    return pl.DataFrame(out, schema={"security_id": pl.Utf8, "trade_date": pl.Date, "close": pl.Float64,
                                     "adj_close": pl.Float64, "currency": pl.Utf8, "shares": pl.Float64,
                                     "market_cap_local": pl.Float64, "usd_per_unit": pl.Float64,
                                     "market_cap_usd": pl.Float64})


def index_frame(rows: dict[str, dict[D, float]]) -> pl.DataFrame:
    return pl.DataFrame([{"index_id": i, "trade_date": d, "close": c} for i, days in rows.items()
                         for d, c in days.items()],
                        schema={"index_id": pl.Utf8, "trade_date": pl.Date, "close": pl.Float64})


def baskets(**members: list[str]) -> pl.DataFrame:
    return pl.DataFrame([{"basket_id": b, "security_id": s, "valid_from": None, "valid_to": None}
                         for b, ss in members.items() for s in ss],
                        schema={"basket_id": pl.Utf8, "security_id": pl.Utf8, "valid_from": pl.Date,
                                "valid_to": pl.Date})


# --------------------------------------------------------------------------- registry


def test_registry_has_all_19_claims_in_order() -> None:
    reg = load_registry()
    assert reg.ids == [f"C{i:02d}" for i in range(1, 20)]
    by = {c.id: c for c in reg.claims}
    assert [len(by[c].parts) for c in ("C05", "C10", "C12")] == [2, 2, 3]
    assert by["C15"].metric == by["C16"].metric == "external_study"
    assert by["C09"].parts[0].params["window_from"] == "C08"
    assert by["C01"].parts[0].params["basket_id"] == "US_AI_BIG8"
    assert by["C13"].parts[0].params["basket_id"] == "US_TOP5_CAPEX"
    assert by["C01"].parts[0].stated_value == -800e9  # "-800e9" in YAML is coerced to a number
    assert by["C08"].parts[0].tolerance_kind == "absolute_pp" and by["C08"].parts[0].tolerance == 0.5
    assert by["C01"].parts[0].tolerance_kind == "relative" and by["C01"].parts[0].tolerance == 0.10
    # window_from sources come first
    order = [c.id for c in reg.evaluation_order()]
    assert order.index("C08") < order.index("C09") and order.index("C08") < order.index("C19")


@pytest.mark.skipif(not ARTICLE.exists(), reason=f"article not found at {ARTICLE}")
def test_every_quote_is_in_the_article() -> None:
    text = ARTICLE.read_text(encoding="utf-8")
    for claim in load_registry().claims:
        assert claim.quote in text, claim.id


def _reg(**claim) -> dict:
    base = {"id": "C01", "section": "1", "quote": "q", "text": "t", "metric": "index_worst_week_return",
            "params": {"index_id": "CN:399006.SZ"}, "stated_value": -7.16, "comparator": "approx",
            "unit": "pct"}
    base.update(claim)
    return {"defaults": {"search_period": PERIOD}, "claims": [base]}


@pytest.mark.parametrize("change, message", [
    ({"metric": "no_such_metric"}, "unknown metric 'no_such_metric'"),
    ({"params": {}}, "needs param 'index_id'"),
    ({"params": {"index_id": "X", "indx": 1}}, "unknown param 'indx'"),
    ({"comparator": "about"}, "comparator 'about'"),
    ({"unit": "EURO"}, "unit 'EURO'"),
    ({"comparator": "lt", "tolerance": 0.5}, "tolerance only applies to comparator approx"),
    ({"stated_value": "minus seven"}, "stated_value 'minus seven' is not a number"),
    ({"metric": "index_window_return", "params": {"index_id": "X", "window_from": "C99"}},
     "window_from 'C99' is not a claim id"),
    ({"field": "nope"}, "has no field 'nope'"),
    ({"id": "claim one"}, "is not of the form C01"),
])
def test_registry_errors_are_clear(change: dict, message: str) -> None:
    with pytest.raises(RegistryError) as exc:
        parse_registry(_reg(**change), "test.yaml")
    assert message in str(exc.value)
    assert "test.yaml" in str(exc.value)


def test_registry_default_tolerances_follow_the_conventions() -> None:
    reg = parse_registry(_reg(), "t")
    part = reg.claims[0].parts[0]
    assert (part.tolerance, part.tolerance_kind) == (0.5, "absolute_pp")
    reg = parse_registry(_reg(stated_value="-800e9", unit="USD"), "t")
    part = reg.claims[0].parts[0]
    assert (part.tolerance, part.tolerance_kind, part.stated_value) == (0.10, "relative", -800e9)


# --------------------------------------------------------------------------- comparators


def test_compare_approx_relative() -> None:
    assert compare(-880e9, -800e9, "approx", 0.10, "relative") == "supported"   # exactly 10 %
    assert compare(-720e9, -800e9, "approx", 0.10, "relative") == "supported"
    assert compare(-881e9, -800e9, "approx", 0.10, "relative") == "contradicted"
    assert compare(7.0, 7.53, "approx", 0.10, "relative") == "supported"
    assert compare(8.59, 7.53, "approx", 0.10, "relative") == "contradicted"


def test_compare_approx_percentage_points() -> None:
    assert compare(-7.66, -7.16, "approx", 0.5, "absolute_pp") == "supported"  # 0.5 pp, float noise
    assert compare(-6.66, -7.16, "approx", 0.5, "absolute_pp") == "supported"
    assert compare(-7.67, -7.16, "approx", 0.5, "absolute_pp") == "contradicted"
    assert compare(-6.15, -7.16, "approx", 0.5, "absolute_pp") == "contradicted"


def test_compare_strict_and_inclusive() -> None:
    assert compare(-7.08, -7, "lt") == "supported"
    assert compare(-7.0, -7, "lt") == "contradicted"           # "<" is strict
    assert compare(196.0, 196, "gt") == "contradicted"
    assert compare(196.01, 196, "gt") == "supported"
    assert compare(200.0, 200, "ge") == "supported"
    assert compare(-5.0, -5, "le") == "supported"
    with pytest.raises(ValueError):
        compare(1.0, 1.0, "none")


def test_combine_verdicts() -> None:
    s, c, i, e = "supported", "contradicted", "insufficient_data", "external"
    assert combine_verdicts([(s, True), (s, True)]) == s
    assert combine_verdicts([(s, True), (c, True)]) == c
    assert combine_verdicts([(i, True), (c, True)]) == c          # any contradiction wins
    assert combine_verdicts([(s, True), (i, True)]) == i          # a needed part lacks data
    assert combine_verdicts([(s, True), (i, False)]) == s         # an optional part may lack data
    assert combine_verdicts([(e, True)]) == e
    assert combine_verdicts([]) == i


# --------------------------------------------------------------------------- weeks


def _holiday_series() -> dict[D, float]:
    # Sep 19 (Fri) 100; week of Sep 22: 101..105; Sep 29 - Oct 8 closed (a whole calendar
    # week without a session, like China's Golden Week); week of Oct 6 trades Thu 9 and
    # Fri 10 only; week of Oct 13 trades four days (Monday a holiday).
    closes = {D(2025, 9, 19): 100.0}
    closes.update({D(2025, 9, 22 + i): 101.0 + i for i in range(5)})
    closes.update({D(2025, 10, 9): 95.0, D(2025, 10, 10): 94.5})
    closes.update({D(2025, 10, 14): 96.0, D(2025, 10, 15): 95.0, D(2025, 10, 16): 96.5, D(2025, 10, 17): 97.0})
    return closes


def test_weeks_skip_closed_weeks() -> None:
    closes = _holiday_series()
    frames = {"fct_market_cap_daily": mcap_frame({"CN:X": {d: (c, 10.0) for d, c in closes.items()}})}
    period = {"start": D(2025, 9, 22), "end": D(2025, 10, 17)}
    moves = with_moves(frames, period)["entity_moves"]
    weeks = moves.filter(pl.col("period") == "week").sort("start_date")
    # A calendar week without a session is no week; the next starts from the last close.
    assert weeks.select("start_date", "end_date", "t0_date").rows() == [
        (D(2025, 9, 22), D(2025, 9, 26), D(2025, 9, 19)),
        (D(2025, 10, 9), D(2025, 10, 10), D(2025, 9, 26)),
        (D(2025, 10, 14), D(2025, 10, 17), D(2025, 10, 10))]


def test_security_worst_week_return_with_holiday_weeks() -> None:
    closes = _holiday_series()
    frames = {"fct_market_cap_daily": mcap_frame({"CN:X": {d: (c, 10.0) for d, c in closes.items()}})}
    period = {"start": D(2025, 9, 22), "end": D(2025, 10, 17)}
    res = METRICS["security_worst_week_return"].fn(
        Frames(with_moves(frames, period)), {"security_id": "CN:X", "search_period": period},
        MetricContext())
    # The week of Oct 6 runs from the last close before it (Fri Sep 26, 105) to Fri Oct 10 (94.5).
    assert res.value == pytest.approx((94.5 / 105 - 1) * 100)   # -10.0 %
    assert (res.window_start, res.window_end) == (D(2025, 9, 26), D(2025, 10, 10))
    assert res.span == (D(2025, 10, 6), D(2025, 10, 12))


def test_basket_worst_week_mcap_change_sums_members() -> None:
    # Two members; Thanksgiving week (Thu Nov 27 closed). Shares 10 and 2.
    a = {D(2025, 11, 14): 100.0, D(2025, 11, 21): 90.0, D(2025, 11, 24): 95.0, D(2025, 11, 26): 96.0,
         D(2025, 11, 28): 97.0}
    b = {D(2025, 11, 14): 50.0, D(2025, 11, 21): 55.0, D(2025, 11, 24): 40.0, D(2025, 11, 28): 41.0}
    frames = {"fct_market_cap_daily": mcap_frame({"US:A": {d: (c, 10.0) for d, c in a.items()},
                                                  "US:B": {d: (c, 2.0) for d, c in b.items()}}),
              "dim_basket_member": baskets(BIG=["US:A", "US:B"])}
    res = run("basket_worst_week_mcap_change", frames, basket_id="BIG")
    # week of Nov 17: A (90-100)*10 = -100, B (55-50)*2 = +10 -> -90
    # week of Nov 24: A (97-90)*10 = +70, B (41-55)*2 = -28 -> +42
    assert res.value == pytest.approx(-90.0)
    assert (res.window_start, res.window_end) == (D(2025, 11, 14), D(2025, 11, 21))
    assert res.entities == ("BIG",)
    assert res.get("change_pct") == pytest.approx(-90 / (1000 + 100) * 100)


def test_basket_member_without_market_cap_is_insufficient() -> None:
    frames = {"fct_market_cap_daily": mcap_frame({"US:A": {D(2025, 11, 14): (1.0, 1.0), D(2025, 11, 21): (2.0, 1.0)},
                                                  "US:B": {D(2025, 11, 14): (1.0, None), D(2025, 11, 21): (2.0, None)}}),
              "dim_basket_member": baskets(BIG=["US:A", "US:B"])}
    res = run("basket_worst_week_mcap_change", frames, basket_id="BIG")
    assert res.value is None and "1 of its 2 members" in res.missing_dataset


def test_episode_basket_when_the_data_lacks_it() -> None:
    from selloff.analytics.baskets import with_episode_baskets

    caps = mcap_frame({"US:A": {D(2025, 11, 14): (1.0, 1.0), D(2025, 11, 21): (3.0, 1.0)}})
    members = with_episode_baskets(baskets(OTHER=["US:Z"]), {"BIG": ["US:A"], "OTHER": ["US:A"]})
    # The data's own OTHER wins; BIG comes from the episode.
    assert sorted(members.select("basket_id", "security_id").rows()) == [
        ("BIG", "US:A"), ("OTHER", "US:Z")]
    res = run("basket_worst_week_mcap_change",
              {"fct_market_cap_daily": caps, "dim_basket_member": members}, basket_id="BIG")
    assert res.value == pytest.approx(2.0)
    with pytest.raises(MissingData, match="no moves of basket NONE"):
        run("basket_worst_week_mcap_change",
            {"fct_market_cap_daily": caps, "dim_basket_member": members}, basket_id="NONE")


# --------------------------------------------------------------------------- days


def test_security_worst_day_return_and_market_cap() -> None:
    closes = {D(2025, 10, 24): 100.0, D(2025, 10, 27): 98.0, D(2025, 10, 28): 92.0, D(2025, 10, 29): 93.0}
    shares = {D(2025, 10, 24): 10.0, D(2025, 10, 27): 10.0, D(2025, 10, 28): 11.0, D(2025, 10, 29): 11.0}
    frames = {"fct_market_cap_daily": mcap_frame({"CN:C": {d: (c, shares[d]) for d, c in closes.items()}},
                                                 currency="CNY", fx=0.14)}
    res = run("security_worst_day", frames, security_id="CN:C", rank_by="return_pct")
    assert res.window_end == D(2025, 10, 28) and res.window_start == D(2025, 10, 27)
    assert res.get("return_pct") == pytest.approx((92 / 98 - 1) * 100)
    assert res.get("mcap_change_local") == pytest.approx(92 * 11 - 98 * 10)   # +32: shares rose
    assert res.get("mcap_change_usd") == pytest.approx((92 * 11 - 98 * 10) * 0.14)
    # by market cap the worst day is Oct 27 (-20 CNY), not the worst return day
    res2 = run("security_worst_day", frames, security_id="CN:C", rank_by="mcap_change_local")
    assert res2.window_end == D(2025, 10, 27) and res2.value == pytest.approx(-20.0)


def test_board_flow_worst_day_and_fallback() -> None:
    schema = {"flow_scope": pl.Utf8, "entity_id": pl.Utf8, "trade_date": pl.Date, "investor_type": pl.Utf8,
              "period": pl.Utf8, "net_buy_local": pl.Float64, "usd_per_unit": pl.Float64, "net_buy_usd": pl.Float64}
    board = pl.DataFrame([
        ("board", "CN:BOARD_AI", D(2025, 11, 3), "main_force", "day", -2e9, 0.14, -0.28e9),
        ("board", "CN:BOARD_AI", D(2025, 11, 4), "main_force", "day", -6.5e9, 0.14, -0.91e9),
        ("board", "CN:BOARD_AI", D(2025, 11, 4), "small", "day", -9e9, 0.14, -1.26e9),
        ("board", "CN:BOARD_AI", D(2025, 10, 20), "main_force", "day", -9e9, 0.14, -1.26e9),  # before period
    ], schema=schema, orient="row")
    res = run("board_flow_worst_day", {"fct_fund_flows_daily": board}, board_id="CN:BOARD_AI",
              investor_type="main_force")
    assert res.value == -6.5e9 and res.window_end == D(2025, 11, 4)
    members = pl.DataFrame([
        ("security", "CN:1", D(2025, 11, 3), "main_force", "day", -1e9, 0.14, None),
        ("security", "CN:2", D(2025, 11, 3), "main_force", "day", -2e9, 0.14, None),
        ("security", "CN:1", D(2025, 11, 4), "main_force", "day", 1e9, 0.14, None),
    ], schema=schema, orient="row")
    frames = {"fct_fund_flows_daily": members, "dim_basket_member": baskets(CN_AI=["CN:1", "CN:2"])}
    res = run("board_flow_worst_day", frames, board_id="CN:BOARD_AI", investor_type="main_force",
              fallback_basket="CN_AI")
    assert res.value == pytest.approx(-3e9) and "fallback" in res.note
    assert res.get("net_buy_usd") == pytest.approx(-3e9 * 0.14)
    with pytest.raises(MissingData, match="flow_scope=board"):
        run("board_flow_worst_day", {**frames, "fct_fund_flows_daily": members.clear()},
            board_id="CN:BOARD_AI", investor_type="main_force", fallback_basket="CN_AI")
    with pytest.raises(MissingData, match="flow_scope=board.*no basket CN_AI"):
        run("board_flow_worst_day", {"fct_fund_flows_daily": members}, board_id="CN:BOARD_AI",
            investor_type="main_force", fallback_basket="CN_AI")


# --------------------------------------------------------------------------- months


FLOW_SCHEMA = {"flow_scope": pl.Utf8, "entity_id": pl.Utf8, "trade_date": pl.Date, "investor_type": pl.Utf8,
               "period": pl.Utf8, "net_buy_local": pl.Float64, "usd_per_unit": pl.Float64}


def test_flow_month_total_converts_each_day_at_its_own_rate() -> None:
    rows = pl.DataFrame([
        ("market", "KR:KOSPI", D(2025, 10, 31), "foreign", "day", -9e12, 0.0007),   # other month
        ("market", "KR:KOSPI", D(2025, 11, 3), "foreign", "day", -1e12, 0.0007),
        ("market", "KR:KOSPI", D(2025, 11, 4), "foreign", "day", -2e12, 0.0006),
        ("market", "KR:KOSPI", D(2025, 11, 28), "foreign", "day", 1e12, 0.0010),
        ("market", "KR:KOSPI", D(2025, 11, 28), "individual", "day", 5e12, 0.0010),
        ("market", "KR:KOSPI", D(2025, 12, 1), "foreign", "day", -9e12, 0.0007),    # other month
    ], schema=FLOW_SCHEMA, orient="row")
    res = run("flow_month_total", {"fct_fund_flows_daily": rows}, flow_scope="market",
              entity_id="KR:KOSPI", investor_type="foreign", month="2025-11")
    expected = -1e12 * 0.0007 - 2e12 * 0.0006 + 1e12 * 0.0010       # -0.9e9 USD
    assert res.value == pytest.approx(expected)
    # an average rate over the month would give a different (wrong) answer
    assert abs(-2e12 * (0.0007 + 0.0006 + 0.0010) / 3 - expected) > 1e6
    assert (res.window_start, res.window_end) == (D(2025, 11, 1), D(2025, 11, 30))


def test_flow_month_total_prefers_net_buy_usd_and_checks_calendar() -> None:
    rows = pl.DataFrame([
        ("market", "KR:KOSPI", D(2025, 11, 3), "foreign", "day", -1e12, 0.0007),
    ], schema=FLOW_SCHEMA, orient="row").with_columns(pl.lit(-123.0).alias("net_buy_usd"))
    cal = pl.DataFrame({"market": ["KR", "KR"], "calendar_date": [D(2025, 11, 3), D(2025, 11, 4)],
                        "is_trading_day": [True, True]})
    res = run("flow_month_total", {"fct_fund_flows_daily": rows}, entity_id="KR:KOSPI",
              investor_type="foreign", month="2025-11")
    assert res.value == -123.0
    res = run("flow_month_total", {"fct_fund_flows_daily": rows, "dim_trading_calendar": cal},
              entity_id="KR:KOSPI", investor_type="foreign", month="2025-11")
    assert res.value is None and "1 of 2 trading days missing" in res.missing_dataset


def test_flow_month_total_market_proxy_for_a_basket() -> None:
    weekly = pl.DataFrame([
        ("market", "JP:TSE", D(2025, 10, 31), "foreign", "week", -1e11, 0.0065),
        ("market", "JP:TSE", D(2025, 11, 7), "foreign", "week", -2e11, 0.0065),
        ("market", "JP:TSE", D(2025, 11, 14), "foreign", "week", 1e11, 0.0064),
    ], schema=FLOW_SCHEMA, orient="row")
    frames = {"fct_fund_flows_daily": weekly, "dim_basket_member": baskets(JP_AI=["JP:9984", "JP:8035"])}
    params = dict(basket_id="JP_AI", investor_type="foreign", month="2025-11", proxy_entity_id="JP:TSE")
    res = run("flow_month_total", frames, **params)
    proxy = -2e11 * 0.0065 + 1e11 * 0.0064
    assert res.value is None
    assert "scope cannot be matched" in res.missing_dataset
    assert res.values["proxy_value"] == pytest.approx(proxy) and "weekly" in res.note
    res = run("flow_month_total", frames, **params, proxy_policy="use")
    assert res.value == pytest.approx(proxy) and res.note.startswith("PROXY")


# --------------------------------------------------------------------------- indexes


def _mini_registry(tmp_path: Path, claims: str) -> Registry:
    text = "defaults:\n  search_period: {start: 2025-10-27, end: 2025-11-28}\nclaims:\n" + claims
    return parse_registry(yaml.safe_load(text), "mini.yaml")


def test_index_worst_week_and_same_week_reuse(tmp_path: Path) -> None:
    chinext = {D(2025, 10, 24): 100.0, D(2025, 10, 31): 101.0, D(2025, 11, 7): 102.0,
               D(2025, 11, 14): 100.0, D(2025, 11, 20): 95.0, D(2025, 11, 21): 93.0, D(2025, 11, 28): 96.0}
    sse50 = {D(2025, 10, 24): 50.0, D(2025, 11, 7): 51.0, D(2025, 11, 14): 50.0, D(2025, 11, 21): 49.5,
             D(2025, 11, 28): 48.0}
    frames = {"fct_index_levels_daily": index_frame({"CN:399006.SZ": chinext, "CN:000016.SH": sse50})}
    reg = _mini_registry(tmp_path, """
  - {id: C08, section: "1.2", quote: q, text: t, metric: index_worst_week_return,
     params: {index_id: "CN:399006.SZ"}, stated_value: -7.0, comparator: approx, unit: pct}
  - {id: C09, section: "1.2", quote: q, text: t, metric: index_window_return,
     params: {index_id: "CN:000016.SH", window_from: C08}, stated_value: -1.32, comparator: approx, unit: pct}
""")
    v = verdicts(frames, reg)
    c08, c09 = v.row(0, named=True), v.row(1, named=True)
    assert c08["computed_value"] == pytest.approx(-7.0)            # 93/100 - 1
    assert (c08["window_start"], c08["window_end"]) == (D(2025, 11, 14), D(2025, 11, 21))
    assert c08["verdict"] == "supported"
    # C09 over C08's week: SSE 50 49.5/50 - 1 = -1.0 %, 0.32 pp from -1.32
    assert c09["computed_value"] == pytest.approx(-1.0)
    assert (c09["window_start"], c09["window_end"]) == (D(2025, 11, 14), D(2025, 11, 21))
    assert c09["verdict"] == "supported" and "same window as C08" in c09["note"]


def test_same_week_reuse_when_source_has_no_window(tmp_path: Path) -> None:
    reg = _mini_registry(tmp_path, """
  - {id: C08, section: "1.2", quote: q, text: t, metric: index_worst_week_return,
     params: {index_id: "CN:399006.SZ"}, stated_value: -7.0, comparator: approx, unit: pct}
  - {id: C09, section: "1.2", quote: q, text: t, metric: index_window_return,
     params: {index_id: "CN:000016.SH", window_from: C08}, stated_value: -1.32, comparator: approx, unit: pct}
""")
    v = verdicts({}, reg)
    assert v["verdict"].to_list() == ["insufficient_data", "insufficient_data"]
    assert "window of C08" in v["note"][1] and "fct_index_levels_daily" in v["note"][0]


def test_index_valuation_stat() -> None:
    iv = pl.DataFrame({"index_id": ["CN:000688.SH"] * 4 + ["CN:000922.SH"] * 3,
                       "trade_date": [D(2025, 10, 20), D(2025, 10, 27), D(2025, 11, 3), D(2025, 11, 10),
                                      D(2025, 10, 28), D(2025, 11, 4), D(2025, 11, 20)],
                       "pe_ttm": [300.0, 180.0, 190.0, 170.0, 8.0, 8.5, 9.0]})
    frames = {"fct_index_valuation_daily": iv}
    res = run("index_valuation_stat", frames, index_id="CN:000688.SH", stat="max")
    assert res.value == 190.0 and "max on 2025-11-03" in res.note   # 300 is before the period
    res = run("index_valuation_stat", frames, index_id="CN:000922.SH", stat="mean",
              context_indexes=["CN:000688.SH"])
    assert res.value == pytest.approx(8.5) and "CN:000688.SH pe_ttm mean 180.00" in res.note
    res = run("index_valuation_stat", frames, index_id="CN:000922.SH", stat="at_date", at_date="2025-11-18")
    assert res.value == 9.0
    with pytest.raises(MissingData, match="CN:000016.SH"):
        run("index_valuation_stat", frames, index_id="CN:000016.SH")


# --------------------------------------------------------------------------- baskets


def test_basket_return_to_peak() -> None:
    a = {D(2025, 3, 3): 10.0, D(2025, 6, 2): 25.0, D(2025, 11, 3): 20.0, D(2025, 12, 15): 40.0}
    b = {D(2025, 3, 4): 20.0, D(2025, 7, 1): 18.0, D(2025, 11, 28): 30.0}
    frames = {"fct_market_cap_daily": mcap_frame({"CN:A": {d: (c, 1.0) for d, c in a.items()},
                                                  "CN:B": {d: (c, 1.0) for d, c in b.items()}}),
              "dim_basket_member": baskets(CN_AI=["CN:A", "CN:B"])}
    res = run("basket_return_to_peak", frames, basket_id="CN_AI", start_date=D(2025, 1, 1))
    # A: 10 -> peak 25 (+150 %; the Dec 15 close is after the period); B: 20 -> 30 (+50 %)
    assert res.get("max_pct") == pytest.approx(150.0)
    assert res.value == pytest.approx(100.0) and res.get("mean_pct") == pytest.approx(100.0)
    assert res.window_start == D(2025, 3, 3) and "first available close 2025-03-03" in res.note


def test_basket_return_to_peak_is_ai_of_market() -> None:
    frames = {"fct_market_cap_daily": mcap_frame({"CN:A": {D(2025, 1, 2): (10.0, 1.0), D(2025, 5, 5): (30.0, 1.0)},
                                                  "CN:B": {D(2025, 1, 2): (10.0, 1.0), D(2025, 5, 5): (90.0, 1.0)}}),
              "dim_security": pl.DataFrame({"security_id": ["CN:A", "CN:B"], "market": ["CN", "CN"],
                                            "is_ai": [True, False]})}
    res = run("basket_return_to_peak", frames, market="CN", start_date="2025-01-01")
    assert res.value == pytest.approx(200.0) and res.entities == ("CN:A",)


def _fq() -> pl.DataFrame:
    rows = [
        # security, fy, fp, period_end, cal_y, cal_q, filed, revenue, net_income, capex
        ("US:MSFT", 2026, "Q1", D(2025, 9, 30), 2025, 3, D(2025, 10, 29), 77e9, 27e9, 19.4e9),
        ("US:ORCL", 2026, "Q1", D(2025, 8, 31), 2025, 3, D(2025, 9, 10), 15e9, 3e9, -8.5e9),
        ("US:ORCL", 2026, "Q2", D(2025, 11, 30), 2025, 4, D(2025, 12, 10), 16e9, 6e9, 12e9),
        ("US:MDAI", 2025, "Q3", D(2025, 9, 30), 2025, 3, D(2025, 11, 10), 4e6, -3.5e6, 0.1e6),
        ("US:MDAI", 2024, "Q3", D(2024, 9, 30), 2024, 3, D(2024, 11, 12), 10e6, -1e6, 0.1e6),
    ]
    return pl.DataFrame(rows, orient="row", schema={
        "security_id": pl.Utf8, "fiscal_year": pl.Int64, "fiscal_period": pl.Utf8, "period_end": pl.Date,
        "calendar_year": pl.Int64, "calendar_quarter": pl.Int64, "filed_date": pl.Date,
        "revenue": pl.Float64, "net_income": pl.Float64, "capex": pl.Float64})


def test_basket_quarter_sum_aligns_fiscal_calendars() -> None:
    frames = {"fct_fundamentals_quarterly": _fq(), "dim_basket_member": baskets(TOP=["US:MSFT", "US:ORCL"])}
    res = METRICS["basket_quarter_sum"].fn(Frames(frames), {"basket_id": "TOP", "column": "capex",
                                                           "calendar_year": 2025, "calendar_quarter": 3},
                                           MetricContext())
    assert res.value == pytest.approx(19.4e9 + 8.5e9)     # ORCL FY26 Q1 (ended Aug) is calendar Q3
    assert "FY2026 Q1" in res.note
    frames["dim_basket_member"] = baskets(TOP=["US:MSFT", "US:ORCL", "US:META"])
    res = METRICS["basket_quarter_sum"].fn(Frames(frames), {"basket_id": "TOP", "column": "capex",
                                                           "calendar_year": 2025, "calendar_quarter": 3},
                                           MetricContext())
    assert res.value is None and "US:META" in res.missing_dataset and "partial sum" in res.note


def test_fundamentals_yoy_value_and_event_day() -> None:
    closes = {D(2025, 11, 7): 2.0, D(2025, 11, 10): 1.9, D(2025, 11, 11): 1.8, D(2025, 11, 12): 1.7}
    frames = {"fct_fundamentals_quarterly": _fq(),
              "fct_market_cap_daily": mcap_frame({"US:MDAI": {d: (c, None) for d, c in closes.items()}})}
    p = {"security_id": "US:MDAI", "calendar_year": 2025, "calendar_quarter": 3}
    yoy = METRICS["fundamentals_quarter_yoy"].fn(Frames(frames), {**p, "column": "revenue"}, MetricContext())
    assert yoy.value == pytest.approx(-60.0)
    ni = METRICS["fundamentals_quarter_value"].fn(Frames(frames), {**p, "column": "net_income"}, MetricContext())
    assert ni.value == -3.5e6
    ev = run("security_event_day_return", frames, **p, event_offset_days=1, list_below_pct=-5)
    # filed Mon Nov 10 -> next session Nov 11: 1.8/1.9 - 1
    assert ev.value == pytest.approx((1.8 / 1.9 - 1) * 100) and ev.window_end == D(2025, 11, 11)
    assert "2025-11-12" in ev.note     # listed among the period's days below -5 %


def test_fundamentals_missing_company_names_the_dataset() -> None:
    frames = {"fct_fundamentals_quarterly": _fq().filter(pl.col("security_id") != "US:MDAI"),
              "fct_market_cap_daily": mcap_frame({"US:MDAI": {D(2025, 11, 10): (1.0, None),
                                                              D(2025, 11, 11): (0.9, None)}})}
    p = {"security_id": "US:MDAI", "calendar_year": 2025, "calendar_quarter": 3}
    with pytest.raises(MissingData, match="fundamentals .*US:MDAI"):
        METRICS["fundamentals_quarter_yoy"].fn(Frames(frames), {**p, "column": "revenue"}, MetricContext())
    ev = run("security_event_day_return", frames, **p)
    assert ev.value is None and "US:MDAI" in ev.missing_dataset


# --------------------------------------------------------------------------- rotation


def test_sector_rotation(tmp_path: Path) -> None:
    t0, t1 = D(2025, 11, 14), D(2025, 11, 21)
    px = {"CN:AI1": (100, 90, 30.0), "CN:AI2": (10, 9.5, 10.0), "CN:BK": (5, 5.1, 100.0),
          "CN:CO": (20, 19.8, 10.0), "CN:CS": (50, 49.0, 20.0)}
    mc = mcap_frame({s: {t0: (a, n), t1: (b, n)} for s, (a, b, n) in px.items()}, currency="CNY", fx=0.14)
    ds = pl.DataFrame({"security_id": list(px), "market": ["CN"] * 5,
                       "sector_group": ["ai_tech", "ai_tech", "banks", "coal", "consumer"]})
    idx = index_frame({"CN:399006.SZ": {D(2025, 11, 7): 100.0, t0: 100.0, t1: 90.0, D(2025, 11, 28): 95.0}})
    frames = {"fct_market_cap_daily": mc, "dim_security": ds, "fct_index_levels_daily": idx}
    reg = _mini_registry(tmp_path, """
  - {id: C08, section: "1.2", quote: q, text: t, metric: index_worst_week_return,
     params: {index_id: "CN:399006.SZ"}, stated_value: -7.0, comparator: approx, unit: pct}
  - id: C19
    section: "1.2"
    quote: q
    text: t
    metric: sector_rotation
    params: {market: CN, window_from: C08, groups_from: [ai_tech], groups_to: [banks, coal, consumer]}
    parts:
      - {name: returns, field: return_spread_pp, stated_value: 0, comparator: lt, unit: pp}
      - {name: out, field: from_flow_usd, stated_value: 0, comparator: lt, unit: USD, required: false}
      - {name: in, field: to_flow_usd, stated_value: 0, comparator: gt, unit: USD, required: false}
""")
    v = verdicts(frames, reg).row(1, named=True)
    # ai_tech cap-weighted: AI1 -10 % on 3000, AI2 -5 % on 100 -> (-10*3000 - 5*100)/3100
    ai = (-10 * 3000 - 5 * 100) / 3100
    weakest = (49 / 50 - 1) * 100                       # consumer -2 %
    assert v["computed_value"] == pytest.approx(ai - weakest)
    assert v["verdict"] == "supported"                  # flows optional and missing
    assert "no CN main_force flows" in v["note"]
    # with flows: out of AI; banks +2, coal +1, consumer -4 -> combined -1 bn CNY: contradicted
    flows = pl.DataFrame([
        ("security", "CN:AI1", D(2025, 11, 18), "main_force", "day", -5e9, 0.14),
        ("security", "CN:BK", D(2025, 11, 18), "main_force", "day", 2e9, 0.14),
        ("security", "CN:CO", D(2025, 11, 19), "main_force", "day", 1e9, 0.14),
        ("security", "CN:CS", D(2025, 11, 20), "main_force", "day", -4e9, 0.14),
        ("security", "CN:CS", D(2025, 11, 14), "main_force", "day", 9e9, 0.14),   # t0 day: outside
    ], schema=FLOW_SCHEMA, orient="row")
    v = verdicts({**frames, "fct_fund_flows_daily": flows}, reg).row(1, named=True)
    parts = json.loads(v["parts_json"])
    assert parts[1]["computed_value"] == pytest.approx(-5e9 * 0.14) and parts[1]["verdict"] == "supported"
    assert parts[2]["computed_value"] == pytest.approx(-1e9 * 0.14) and parts[2]["verdict"] == "contradicted"
    assert v["verdict"] == "contradicted" and "net outflow from consumer" in v["note"]
    # consumer only -0.5 bn: combined +2.5 bn CNY flows in -> all parts supported
    flows = flows.with_columns(pl.when(pl.col("net_buy_local") == -4e9).then(-0.5e9)
                               .otherwise(pl.col("net_buy_local")).alias("net_buy_local"))
    v = verdicts({**frames, "fct_fund_flows_daily": flows}, reg).row(1, named=True)
    assert v["verdict"] == "supported"
    assert json.loads(v["parts_json"])[2]["computed_value"] == pytest.approx(2.5e9 * 0.14)


# --------------------------------------------------------------------------- whole registry


def test_empty_warehouse_gives_one_row_per_claim_never_a_crash() -> None:
    v = verdicts({}, synthetic=True)
    assert v.schema == pl.Schema(VERDICT_SCHEMA)
    assert v["claim_id"].to_list() == [f"C{i:02d}" for i in range(1, 20)]
    by_id = dict(zip(v["claim_id"], v["verdict"], strict=True))
    assert by_id["C15"] == by_id["C16"] == "external"
    assert all(by_id[c] == "insufficient_data" for c in by_id if c not in ("C15", "C16"))
    notes = dict(zip(v["claim_id"], v["note"], strict=True))
    assert "fct_fund_flows_daily" in notes["C04"]
    assert "guidance" in notes["C14"] and "segment data" in notes["C17"]
    assert all(v["synthetic"])


def test_missing_board_flows_named() -> None:
    flows = pl.DataFrame(schema={**FLOW_SCHEMA, "net_buy_usd": pl.Float64})
    v = verdicts({"fct_fund_flows_daily": flows, "dim_basket_member": baskets(CN_AI=["CN:1"])})
    row = v.filter(pl.col("claim_id") == "C04").row(0, named=True)
    assert row["verdict"] == "insufficient_data"
    assert "fct_fund_flows_daily has no flow_scope=board rows for CN:BOARD_AI" in row["note"]


def test_a_metric_that_raises_becomes_an_insufficient_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(frames, params, ctx):
        raise ZeroDivisionError("kaboom")

    monkeypatch.setitem(METRICS, "boom", MetricSpec("boom", boom, (), (), (), "always fails"))
    reg = _mini_registry(tmp_path, """
  - {id: C01, section: "1", quote: q, text: t, metric: boom, stated_value: 1, comparator: gt, unit: x}
  - {id: C02, section: "1", quote: q, text: t, metric: external_study, comparator: none}
""")
    v = verdicts({}, reg)
    assert v.height == 2
    row = v.row(0, named=True)
    assert row["verdict"] == "insufficient_data"
    assert "metric boom failed: ZeroDivisionError: kaboom" in row["note"]
    assert v.row(1, named=True)["verdict"] == "external"


# --------------------------------------------------------------------------- report


_NETWORK_ATTR = re.compile(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def test_report_is_self_contained_and_flags_synthetic(tmp_path: Path) -> None:
    v = verdicts({}, synthetic=True)
    md, html_path = write_factcheck_report(v, tmp_path / "reports")
    html = html_path.read_text(encoding="utf-8")
    assert md.name == "fact_check.md" and html_path.name == "fact_check.html"
    assert "SYNTHETIC DEMO DATA" in html and "SYNTHETIC DEMO DATA" in md.read_text(encoding="utf-8")
    assert not _NETWORK_ATTR.search(html)
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html
    assert "<style>" in html
    for cid in ("C01", "C19"):
        assert f'id="{cid}"' in html
    assert "美股 AI 八巨头单周市值蒸发近 8000 亿美元" in html
    assert "insufficient data" in html and "external" in html


def test_report_without_synthetic_banner_escapes_text() -> None:
    v = verdicts({}, synthetic=False).with_columns(
        pl.when(pl.col("claim_id") == "C01").then(pl.lit('<img src="https://x/y.png">'))
        .otherwise(pl.col("note")).alias("note"))
    html = render_html(v)
    assert "SYNTHETIC DEMO DATA" not in html
    assert '<img src="https://x' not in html       # escaped, not rendered
    assert not _NETWORK_ATTR.search(html)


# --------------------------------------------------------------------------- real data


@pytest.mark.real_snapshot
@pytest.mark.skipif(not (REAL / "index_levels_daily.csv").exists(), reason=f"real snapshot not at {REAL}")
def test_real_snapshot_chinext_week_and_sse50_same_week() -> None:
    """Straight from the snapshot's index levels (no dbt): ChiNext's worst calendar week in
    the sell-off period is Nov 17-21 (-6.15 %, not -7.16 %), SSE 50 fell 2.72 % that week."""
    lv = pl.read_csv(REAL / "index_levels_daily.csv", try_parse_dates=True).select("index_id", "trade_date", "close")
    v = verdicts({"fct_index_levels_daily": lv})
    c08 = v.filter(pl.col("claim_id") == "C08").row(0, named=True)
    c09 = v.filter(pl.col("claim_id") == "C09").row(0, named=True)
    assert (c08["window_start"], c08["window_end"]) == (D(2025, 11, 14), D(2025, 11, 21))
    assert c08["computed_value"] == pytest.approx(-6.152, abs=0.01) and c08["verdict"] == "contradicted"
    assert c09["computed_value"] == pytest.approx(-2.718, abs=0.01) and c09["verdict"] == "contradicted"


def test_returns_use_adjusted_closes_where_both_days_have_one() -> None:
    """Raw closes only before the vendor's adjusted series starts, then a 2:1 split: the
    window over adjusted days returns adj_1/adj_0 - 1; the raw stretch still counts. The
    claims' prices are the engine's level series (moves.security_levels)."""
    from selloff.analytics.moves import MIXED
    from selloff.claims.metrics import price_basis, security_levels_of

    days = [dt.date(2025, 5, d) for d in (1, 2, 5, 6, 7)]
    rows = pl.DataFrame({
        "security_id": "US:X",
        "trade_date": days,
        "close": [100.0, 110.0, 112.0, 57.0, 60.0],   # split 2:1 before 05-06
        "adj_close": [None, None, 56.0, 57.0, 60.0],  # adjusted from 05-05 on
    })

    def levels(frame: pl.DataFrame) -> pl.DataFrame:
        return security_levels_of(Frames({"fct_market_cap_daily": frame}), ["US:X"])

    priced = levels(rows)
    assert price_basis(priced) == MIXED
    p = dict(zip(priced["trade_date"], priced["level"], strict=True))
    assert p[days[4]] / p[days[2]] - 1 == pytest.approx(60.0 / 56.0 - 1, rel=1e-12)
    assert p[days[1]] / p[days[0]] - 1 == pytest.approx(0.10, rel=1e-12)   # raw stretch
    assert p[days[2]] / p[days[1]] - 1 == pytest.approx(112 / 110 - 1, rel=1e-12)  # raw end
    full = rows.with_columns(pl.col("close").alias("adj_close"))
    assert price_basis(levels(full)) == "adj_close"
    assert price_basis(levels(rows.with_columns(pl.lit(None, pl.Float64).alias("adj_close")))) == "close"


def test_sector_rotation_names_its_groups() -> None:
    # The engine knows no sector: the groups come from the episode's claim, so a claim
    # without them is refused when the file is read, not judged on someone's defaults.
    text = ("claims:\n  - {id: C1, section: '1', quote: q, text: t, metric: sector_rotation,\n"
            "     params: {market: CN, window_from: C0}, stated_value: 0, comparator: lt, "
            "unit: pp}\n")
    with pytest.raises(RegistryError) as err:
        parse_registry(yaml.safe_load(text), "rot.yaml")
    assert any("needs param 'groups_from'" in p for p in err.value.problems)
    assert any("needs param 'groups_to'" in p for p in err.value.problems)
