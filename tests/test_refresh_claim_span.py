"""A one-market refresh of a day that only an episode's claims read (after its last day,
inside its span): the claim verdicts recompute the episode, every other per-episode table
keeps its rows (assets/analytics/table_reads.episode_plan, last_read), the warehouse
equals a full build's and the report the one rendered from scratch from its tables."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest

from selloff.episode import FACTS_LOOKAHEAD, episode_span, load_episodes
from tests.graph_runs import failures, run_refresh
from tests.test_orchestration import (
    _assert_same_warehouse,
    _per_episode_metadata,
    _snapshot_without,
)


@pytest.mark.slow
def test_a_day_only_the_claims_read_recomputes_the_claims_alone(
        tmp_path: Path, demo_snapshot: Path, demo_snapshot_run) -> None:
    prices = pl.read_parquet(demo_snapshot / "prices_daily.parquet")
    day: dt.date = prices.filter(pl.col("security_id").str.starts_with("US:"))[
        "trade_date"].max()
    ai = next(e for e in load_episodes() if e.episode_id == "ai_selloff_2025")
    # After what the tables other than the claims read, inside what the claims read.
    assert ai.last_day + FACTS_LOOKAHEAD < day <= episode_span(ai).last

    gap = _snapshot_without(demo_snapshot, tmp_path / "gap", day, day, markets=("US",))
    root = tmp_path / "refreshed"
    before = run_refresh(root, SELLOFF_SOURCE="snapshot", SELLOFF_SNAPSHOT_DIR=str(gap))
    assert before.result.success, failures(before)
    refreshed = run_refresh(root, window=(day.isoformat(), day.isoformat()), markets=("US",),
                            job="market_refresh", SELLOFF_SOURCE="snapshot",
                            SELLOFF_SNAPSHOT_DIR=str(demo_snapshot))
    assert refreshed.result.success, failures(refreshed)
    _assert_same_warehouse(demo_snapshot_run, refreshed, f"refreshing US {day}")

    for table, meta in _per_episode_metadata(refreshed).items():
        if table == "claim_verdicts":
            assert meta["episodes_recomputed"].value == "ai_selloff_2025", table
        else:
            assert meta["episodes_recomputed"].value == "none", (table, meta["refresh_reasons"])
            assert meta["episodes_kept"].value == "ai_selloff_2025, tariff_shock_2025", table

    # The page equals the one rendered from scratch from the refreshed tables, byte for
    # byte (its kept sections came from the section cache). Not the full build's page:
    # two builds' floats differ in their last bits (within assert_same_table's 1e-12),
    # and so do the SVG coordinates' last digits drawn from them.
    import duckdb

    from selloff.report import REPORT_TABLES, build_report, page_html

    with duckdb.connect(str(refreshed.warehouse), read_only=True) as con:
        frames = {t: con.sql(f"SELECT * FROM analytics.{t}").pl()
                  for t in (*REPORT_TABLES, "episode_candidates")}
    episodes = load_episodes()
    scratch = page_html(build_report(frames, episodes), episodes, synthetic=True)
    on_disk = (refreshed.reports / "selloff_report.html").read_text(encoding="utf-8")
    assert _no_clock(on_disk) == _no_clock(scratch)


def _no_clock(page: str) -> str:
    return re.sub(r"generated \d{4}-\d\d-\d\d \d\d:\d\d UTC", "generated -", page)
