"""Episodes on the real snapshot: one that is not bundled, written here, and the bundled
tariff shock. Every expected figure comes from the snapshot files through plain polars
(tests/snapshot_figures.py imports nothing from `selloff`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests import snapshot_figures as fig
from tests.conftest import REAL_SNAPSHOT, requires_real_snapshot
from tests.graph_runs import GraphRun, copy_run, failures, run_assets

pytestmark = [requires_real_snapshot, pytest.mark.slow, pytest.mark.real_snapshot]
D = dt.date

# The DeepSeek shock: on Monday 27 January 2025 Nvidia lost about 17 % (nearly USD 600 bn,
# the largest one-day loss of any company) after DeepSeek's R1 model; the Nasdaq fell 3 %.
CHIPS = ["US:NVDA", "US:AVGO", "US:AMD", "US:MU"]
SEARCH = {"start": "2025-01-21", "end": "2025-02-14"}
class _PlainDumper(yaml.SafeDumper):
    """Writes a value shared by two entries out twice: episode files refuse aliases."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _plain_yaml(data: object) -> str:
    return yaml.dump(data, Dumper=_PlainDumper, sort_keys=False)


DEEPSEEK = {
    "id": "deepseek_shock_2025",
    "title": "The DeepSeek shock, January 2025",
    "markets": ["US"],
    "headline": "US_AI_CHIPS",
    "detection": {"search_start": SEARCH["start"], "search_end": SEARCH["end"],
                  "drawdown_lookback_start": "2025-01-02"},
    "windows": [
        {"id": "deepseek_day", "start": "2025-01-27", "end": "2025-01-27", "main": True,
         "description": "Monday 27 January 2025"},
        {"id": "deepseek_week", "start": "2025-01-27", "end": "2025-01-31"},
    ],
    "baskets": {"US_AI_CHIPS": CHIPS},
    "defaults": {"search_period": SEARCH},
    "claims": [
        {"id": "D01", "section": "test", "quote": "Nvidia fell about 17 %", "text": "t",
         "metric": "security_worst_day", "params": {"security_id": "US:NVDA"},
         "parts": [
             {"name": "return", "field": "return_pct", "stated_value": -17,
              "comparator": "approx", "unit": "pct"},
             {"name": "cap", "field": "mcap_change_usd", "stated_value": -589e9,
              "comparator": "approx", "unit": "USD"}]},
        {"id": "D02", "section": "test", "quote": "the Nasdaq fell 3 %", "text": "t",
         "metric": "index_worst_day_return", "params": {"index_id": "US:IXIC"},
         "stated_value": -3.1, "comparator": "approx", "unit": "pct"},
        {"id": "D03", "section": "test", "quote": "chip makers lost USD 1 trn in a day",
         "text": "t", "metric": "basket_worst_day_mcap_change",
         "params": {"basket_id": "US_AI_CHIPS"}, "field": "change",
         "stated_value": -1e12, "comparator": "approx", "unit": "USD"},
        {"id": "D04", "section": "test", "quote": "the S&P 500 ended the week lower",
         "text": "t", "metric": "index_window_return",
         "params": {"index_id": "US:SPX", "window": "deepseek_week"},
         "stated_value": 0, "comparator": "lt", "unit": "pct"},
    ],
}


@pytest.fixture(scope="module")
def deepseek_run(tmp_path_factory: pytest.TempPathFactory, real_run: GraphRun) -> GraphRun:
    """The real snapshot's shared build (conftest), copied, then every analytics table and
    what follows them (lake, reports, the published file) rebuilt for this one episode.
    Raw, staging and marts do not depend on the episodes (only analytics and report assets
    read them), so this equals a full refresh with SELLOFF_EPISODES set to the folder."""
    import dagster as dg

    folder = tmp_path_factory.mktemp("episodes") / "deepseek"
    folder.mkdir()
    (folder / "episode.yaml").write_text(_plain_yaml(DEEPSEEK),
                                         encoding="utf-8")
    root = copy_run(real_run, tmp_path_factory.mktemp("deepseek")).root
    run = run_assets(root, dg.AssetSelection.key_prefixes(["analytics"]).downstream(),
                     SELLOFF_SOURCE="snapshot", SELLOFF_SNAPSHOT_DIR=str(REAL_SNAPSHOT),
                     SELLOFF_EPISODES=str(folder))
    assert run.result.success, failures(run)
    return run


def _verdicts(run: GraphRun, episode: str) -> dict[str, dict]:
    v = run.table("analytics.claim_verdicts").filter(pl.col("episode_id") == episode)
    return {r["claim_id"]: r for r in v.iter_rows(named=True)}


def test_only_the_given_episode_is_built(deepseek_run: GraphRun) -> None:
    from selloff.analytics.tables import WHOLE_DATA_TABLES

    for table in set(deepseek_run.tables("analytics")) - set(WHOLE_DATA_TABLES):
        ids = set(deepseek_run.table(f"analytics.{table}")["episode_id"].unique().to_list())
        assert ids <= {"deepseek_shock_2025"}, (table, ids)
    assert sorted(_verdicts(deepseek_run, "deepseek_shock_2025")) == ["D01", "D02", "D03", "D04"]


def test_nvidia_worst_day_matches_the_snapshot(deepseek_run: GraphRun) -> None:
    days = fig.security_day_returns("US:NVDA")
    worst = fig.worst_day(days, D(2025, 1, 21), D(2025, 2, 14))
    assert worst["trade_date"] == D(2025, 1, 27)
    cap = fig.market_cap_change("US:NVDA", worst["prev_date"], worst["trade_date"])
    d01 = _verdicts(deepseek_run, "deepseek_shock_2025")["D01"]
    assert (d01["window_start"], d01["window_end"]) == (D(2025, 1, 24), D(2025, 1, 27))
    parts = {p["name"]: p for p in __import__("json").loads(d01["parts_json"])}
    assert parts["return"]["computed_value"] == pytest.approx(worst["return_pct"], rel=1e-9)
    assert parts["cap"]["computed_value"] == pytest.approx(cap[0], rel=1e-9)
    assert d01["verdict"] == "supported"  # about -17 % and -590 bn USD


def test_nasdaq_worst_day_and_week_window(deepseek_run: GraphRun) -> None:
    v = _verdicts(deepseek_run, "deepseek_shock_2025")
    worst = fig.worst_day(fig.index_day_returns("US:IXIC"), D(2025, 1, 21), D(2025, 2, 14))
    assert v["D02"]["computed_value"] == pytest.approx(worst["return_pct"], rel=1e-9)
    assert v["D02"]["window_end"] == worst["trade_date"] == D(2025, 1, 27)
    week = fig.index_window_return("US:SPX", D(2025, 1, 27), D(2025, 1, 31))
    assert v["D04"]["computed_value"] == pytest.approx(week.return_pct, rel=1e-9)
    assert (v["D04"]["window_start"], v["D04"]["window_end"]) == (week.t0, week.t1)
    assert v["D04"]["verdict"] == ("supported" if week.return_pct < 0 else "contradicted")


def test_episode_basket_worst_day(deepseek_run: GraphRun) -> None:
    """US_AI_CHIPS is not in the snapshot's baskets: the episode's own list is used."""
    v = _verdicts(deepseek_run, "deepseek_shock_2025")["D03"]
    days = sorted(fig.index_closes("US:SPX")["trade_date"].to_list())
    in_search = [d for d in days if D(2025, 1, 21) <= d <= D(2025, 2, 14)]
    changes = {d: fig.basket_cap_change(CHIPS, days[days.index(d) - 1], d)[0] for d in in_search}
    # The worst day by return; on the chips' crash day it is also the worst by cap.
    returns = {d: fig.basket_cap_change(CHIPS, days[days.index(d) - 1], d)[1] for d in in_search}
    worst = min(returns, key=returns.get)
    assert v["window_end"] == worst == D(2025, 1, 27)
    assert v["computed_value"] == pytest.approx(changes[worst], rel=1e-9)
    moves = deepseek_run.table("analytics.entity_moves").filter(
        (pl.col("entity_id") == "US_AI_CHIPS") & (pl.col("period") == "day")
        & (pl.col("t1_date") == worst))
    assert moves["return"].item() * 100 == pytest.approx(returns[worst], rel=1e-9)


def test_headline_drawdown_of_the_episode_basket(deepseek_run: GraphRun) -> None:
    windows = deepseek_run.table("analytics.selloff_windows").filter(
        pl.col("window_id") == "drawdown:basket:US_AI_CHIPS")
    assert windows.height == 1
    move = deepseek_run.table("analytics.entity_moves").filter(
        pl.col("window_id") == "drawdown:basket:US_AI_CHIPS").row(0, named=True)
    # Chain-linked over members with a cap at both ends of each day; every member has one
    # here, so it is the plain cap change from the peak close to the trough close.
    change, pct = fig.basket_cap_change(CHIPS, move["t0_date"], move["t1_date"])
    assert move["change_usd"] == pytest.approx(change, rel=1e-9)
    assert move["return"] * 100 == pytest.approx(pct, rel=1e-9)
    assert move["t1_date"] >= D(2025, 1, 21)


def test_an_invalid_episode_stops_the_cli_before_any_work(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from orchestration.cli import app

    folder = tmp_path / "bad"
    folder.mkdir()
    bad = {**DEEPSEEK, "markets": ["US", "XX"],
           "claims": [{**DEEPSEEK["claims"][1], "metric": "nope"}]}
    (folder / "episode.yaml").write_text(_plain_yaml(bad), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "--episode", str(folder), "--warehouse",
                                      str(tmp_path / "w" / "selloff.duckdb")],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "episode.yaml" in text and "'XX'" in text and "unknown metric 'nope'" in text
    assert not (tmp_path / "w").exists()
