"""Sell-offs found in the data (selloff.analytics.discovery, `selloff discover`).

Expected figures are computed here with plain polars from the inputs (the synthetic
frames below, or the real snapshot's files), never copied from the output.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from selloff.analytics.discovery import (
    DiscoveryConfigError,
    candidate_problems,
    discover,
    discovery_config,
    select_candidates,
    zigzag_drawdowns,
)
from tests.conftest import REAL_SNAPSHOT, requires_real_snapshot
from tests.graph_runs import GraphRun

# --------------------------------------------------------------------------- zigzag


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=1.0, max_value=1000.0), min_size=2, max_size=80),
       st.floats(min_value=0.02, max_value=0.5), st.floats(min_value=0.02, max_value=0.5))
def test_zigzag_drawdowns_are_peak_to_trough_falls(levels, threshold, rebound) -> None:
    found = zigzag_drawdowns(list(range(len(levels))), levels, threshold, rebound)
    last = -1
    for p, t in found:
        # In order, disjoint, a real fall at least as deep as the threshold...
        assert last <= p < t
        assert levels[t] / levels[p] - 1 <= -threshold + 1e-12
        # ...from the highest close to the lowest close of its stretch.
        assert levels[p] == max(levels[p:t + 1])
        assert levels[t] == min(levels[p:t + 1])
        last = t


def test_zigzag_splits_on_a_rebound_and_keeps_the_open_one() -> None:
    levels = [100, 95, 80, 90, 89, 100, 99, 70, 71]
    # 100 -> 80 (-20 %), rebound to 90 (+12.5 %) closes it; from 90 the next fall
    # reaches a new high first (100 at index 5), then 100 -> 70 stays open at the end.
    assert zigzag_drawdowns(list(range(len(levels))), levels, 0.1, 0.1) == [(0, 2), (5, 7)]


# --------------------------------------------------------------------------- configuration


def test_config_overrides_are_checked_all_at_once() -> None:
    assert discovery_config({"drawdown_threshold": 0.15}).drawdown_threshold == 0.15
    with pytest.raises(DiscoveryConfigError) as err:
        discovery_config({"drawdown_threshold": 15, "day_lookback": 0, "nope": 1,
                          "weight_cap": -1, "day_sigma": "3"})
    text = str(err.value)
    for key in ("drawdown_threshold", "day_lookback", "nope", "weight_cap", "day_sigma"):
        assert key in text
    assert len(err.value.problems) == 5


# --------------------------------------------------------------------------- synthetic data


def _days(n: int, start: dt.date = dt.date(2025, 1, 6)) -> list[dt.date]:
    out, d = [], start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def _synthetic() -> tuple[pl.DataFrame, pl.DataFrame, list[dt.date]]:
    """A calm US index with a 20 % crash over sessions 60..64, and two US securities
    whose caps follow it (one at twice the weight); a KR index crashing one session later."""
    days = _days(120)
    us, kr, crash = [], [], 1.0
    for i in range(120):
        crash *= 0.955 if 60 <= i <= 64 else 1.0
        us.append(100.0 * (1.0 + 0.004 * ((i * 7) % 5 - 2)) * crash)
    for i in range(120):
        kr.append(us[max(i - 1, 0)] * 25)
    index = pl.DataFrame({"index_id": ["US:SPX"] * 120 + ["KR:KOSPI"] * 120,
                          "trade_date": days + days, "close": us + kr})
    caps = pl.DataFrame({
        "security_id": ["US:AAA"] * 120 + ["US:BBB"] * 120,
        "trade_date": days + days,
        "market_cap_usd": [1e11 * x / 100 for x in us] + [2e11 * x / 100 for x in us],
        "close": us + us})
    return index, caps, days


def test_discover_finds_the_crash_and_its_cap_lost() -> None:
    index, caps, days = _synthetic()
    members = pl.DataFrame({"basket_id": ["US_AB", "US_AB"], "security_id": ["US:AAA", "US:BBB"]})
    found, events = discover(index, caps, members)
    assert candidate_problems(found, events) == []
    top = found.row(0, named=True)
    assert top["rank"] == 1 and top["markets"] == "KR,US"
    # Independent: the SPX peak-to-trough from the closes, and the cap lost is the
    # summed cap at the peak minus at the trough (both securities have every day).
    spx = index.filter(pl.col("index_id") == "US:SPX").sort("trade_date")
    # Ties: the first close at the low, the latest close at the high before it.
    trough = spx.sort("close", "trade_date").row(0, named=True)
    peak = spx.filter(pl.col("trade_date") < trough["trade_date"]).sort(
        ["close", "trade_date"], descending=True).row(0, named=True)
    fall_spx = trough["close"] / peak["close"] - 1
    assert fall_spx < -0.2
    spx_dd = events.filter((pl.col("entity_id") == "US:SPX") & (pl.col("event_kind") == "drawdown"))
    assert spx_dd.height == 1
    assert spx_dd["return"][0] == pytest.approx(fall_spx, rel=1e-12)
    assert spx_dd["end_date"][0] == trough["trade_date"]
    total = caps.group_by("trade_date").agg(pl.col("market_cap_usd").sum())
    cap = dict(total.iter_rows())
    assert top["cap_lost_usd"] == pytest.approx(cap[peak["trade_date"]] - cap[trough["trade_date"]],
                                                rel=1e-9)
    assert top["start_date"] <= days[60] and top["end_date"] >= trough["trade_date"]
    # The KR crash one session later is the same sell-off, and so is the basket's.
    assert {"KR:KOSPI", "US:SPX", "US_AB", "US:MKT_CAPW"} <= set(top["entities"].split(","))
    worst_day = spx.with_columns((pl.col("close") / pl.col("close").shift(1) - 1).alias("r"))
    assert top["worst_day_return"] <= worst_day["r"].min() + 1e-12


def test_select_candidates_filters_and_ranks_again() -> None:
    index, caps, _ = _synthetic()
    found, _ = discover(index, caps, None)
    assert select_candidates(found, markets=["JP"]).height == 0
    only_kr = select_candidates(found, markets=["KR"], top=1)
    assert only_kr["rank"].to_list() == [1] and "KR" in only_kr["markets"][0]
    late = select_candidates(found, since=dt.date(2030, 1, 1))
    assert late.height == 0


def test_report_block_ranks_and_draws_the_timeline() -> None:
    from selloff.report.discovered import TITLE, discovered_block

    index, caps, _ = _synthetic()
    found, _ = discover(index, caps, None)
    block, fig = discovered_block(found)
    assert block.title == TITLE == "Sell-offs found in the data"
    section = block.sections[0]
    assert fig is not None and "<svg" in str(section.chart)
    assert found["candidate_id"][0] in str(section.parts[0])
    empty_block, none = discovered_block(found.clear())
    assert none is None and empty_block.sections[0].missing


def test_discover_cli_rejects_bad_input_with_exit_2(tmp_path: Path) -> None:
    from orchestration.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["discover", "--since", "2025-13-01"])
    assert res.exit_code == 2 and "--since" in res.output
    res = runner.invoke(app, ["discover", "--market", "XX"])
    assert res.exit_code == 2 and "XX" in res.output
    res = runner.invoke(app, ["discover", "--since", "2025-05-01", "--until", "2025-04-01"])
    assert res.exit_code == 2


# --------------------------------------------------------------------------- real snapshot


# real_run: the session's one build of the real snapshot (conftest), shared with
# tests/test_real_snapshot.py.


def _index_file() -> pl.DataFrame:
    return pl.read_csv(REAL_SNAPSHOT / "index_levels_daily.csv", try_parse_dates=True)


def _fall(closes: pl.DataFrame, peak: dt.date, trough: dt.date) -> float:
    c = dict(closes.select("trade_date", "close").iter_rows())
    return c[trough] / c[peak] - 1


@requires_real_snapshot
@pytest.mark.slow
@pytest.mark.real_snapshot
def test_real_snapshot_candidates(real_run: GraphRun, tmp_path: Path) -> None:
    found = real_run.table("analytics.episode_candidates").sort("rank")
    events = real_run.table("analytics.episode_candidate_events")
    assert candidate_problems(found, events) == []
    checks = {c.check_name: c.passed for c in real_run.result.get_asset_check_evaluations()}
    assert checks["candidates_consistent"]
    # The asset's metadata shows the top candidates (the UI's asset page).
    import dagster as dg

    mat = next(m for m in real_run.result.get_asset_materialization_events()
               if m.asset_key == dg.AssetKey(["analytics", "episode_candidates"]))
    top_md = mat.materialization.metadata["top candidates"].value
    # Markdown cells are escaped (selloff.markdown: text from data is shown literally).
    from selloff.markdown import escape_markdown

    assert escape_markdown(found["candidate_id"][0]) in top_md
    assert "Sell-offs found in the data" in (real_run.reports / "selloff_report.html").read_text()
    idx = _index_file()
    # The bundled episodes' main windows overlap candidates' spans.
    for first, last in ((dt.date(2025, 4, 3), dt.date(2025, 4, 4)),
                        (dt.date(2025, 10, 27), dt.date(2025, 11, 28))):
        assert found.filter((pl.col("start_date") <= last) & (pl.col("end_date") >= first)).height
    # The tariff crash ranks first: the Nasdaq Composite from its 19 February 2025 high
    # to its 8 April low, computed from the snapshot's closes.
    top = found.row(0, named=True)
    ixic = idx.filter(pl.col("index_id") == "US:IXIC").sort("trade_date")
    before = ixic.filter(pl.col("trade_date") <= dt.date(2025, 4, 8))
    low = ixic.filter(pl.col("trade_date").is_between(dt.date(2025, 3, 1),
                                                      dt.date(2025, 4, 30))).sort("close").row(0, named=True)
    high = before.filter(pl.col("trade_date") < low["trade_date"]).sort(
        "close", descending=True).row(0, named=True)
    assert top["headline_entity"] == "US:IXIC"
    assert top["main_end"] == low["trade_date"] == dt.date(2025, 4, 8)
    assert high["trade_date"] == dt.date(2025, 2, 19)
    assert top["headline_fall"] == pytest.approx(low["close"] / high["close"] - 1, abs=1e-9)
    assert top["start_date"] <= dt.date(2025, 4, 3) and top["end_date"] >= dt.date(2025, 4, 8)
    assert set(top["markets"].split(",")) == {"CN", "JP", "KR", "US"}
    # Every index drawdown of the table is its peak-to-trough fall in the file.
    dd = events.filter((pl.col("event_kind") == "drawdown") & (pl.col("entity_kind") == "index"))
    assert dd.height >= 10
    for r in dd.iter_rows(named=True):
        closes = idx.filter(pl.col("index_id") == r["entity_id"])
        assert r["return"] == pytest.approx(_fall(closes, r["t0_date"], r["t1_date"]), abs=1e-9)
        span = closes.filter(pl.col("trade_date").is_between(r["t0_date"], r["t1_date"]))
        assert span["close"].max() == pytest.approx(span.filter(
            pl.col("trade_date") == r["t0_date"])["close"].item())
        assert span["close"].min() == pytest.approx(span.filter(
            pl.col("trade_date") == r["t1_date"])["close"].item())
    # Other sharp shocks of 2025: the S&P 500's 10 October fall is a day shock.
    spx = idx.filter(pl.col("index_id") == "US:SPX").sort("trade_date").with_columns(
        (pl.col("close") / pl.col("close").shift(1) - 1).alias("r"))
    oct10 = events.filter((pl.col("entity_id") == "US:SPX") & (pl.col("event_kind") == "day_shock")
                          & (pl.col("t1_date") == dt.date(2025, 10, 10)))
    assert oct10.height == 1
    assert oct10["return"][0] == pytest.approx(
        spx.filter(pl.col("trade_date") == dt.date(2025, 10, 10))["r"].item(), abs=1e-12)
    # The drafts validate.
    from orchestration.cli import app
    from selloff.episode import load_episode

    res = CliRunner().invoke(app, ["discover", "--top", "5", "--out", str(tmp_path / "drafts"),
                                   "--warehouse", str(real_run.warehouse)])
    assert res.exit_code == 0, res.output
    folders = sorted((tmp_path / "drafts").iterdir())
    assert len(folders) == 5
    for f in folders:
        ep = load_episode(f)
        assert all(c.section.startswith("generated") for c in ep.claims)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["US:AAA", "US:BBB", "KR:005930", "JP:7203", "CN:600519"]),
                          st.integers(0, 30),
                          st.one_of(st.none(), st.floats(1e6, 1e12, allow_nan=False))),
                min_size=1, max_size=80))
def test_market_aggregates_one_market_at_a_time_equal_one_basket_call(rows) -> None:
    # The per-market loop (memory) must give exactly what one basket_levels call over
    # every market's aggregate gives.
    from selloff.analytics.discovery import AGGREGATE_SUFFIX, market_aggregate_levels
    from selloff.analytics.moves import basket_levels

    cap = (pl.DataFrame(rows, schema={"security_id": pl.Utf8, "day": pl.Int64,
                                      "market_cap_usd": pl.Float64}, orient="row")
           .unique(["security_id", "day"], keep="first")
           .select("security_id",
                   (pl.lit(dt.date(2025, 1, 1)) + pl.duration(days=pl.col("day")))
                   .cast(pl.Date).alias("trade_date"), "market_cap_usd"))
    members = (cap.select("security_id").unique()
               .select((pl.col("security_id").str.split(":").list.first()
                        + f":{AGGREGATE_SUFFIX}").alias("basket_id"), "security_id")
               .sort("basket_id", "security_id"))
    got = market_aggregate_levels(cap)
    want = basket_levels(cap, members)
    assert got.equals(want)
