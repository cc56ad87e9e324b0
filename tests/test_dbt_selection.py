"""What a windowed refresh's dbt build rebuilds: only the models downstream of the raw
datasets the refresh ledger says changed; every data test runs, but one that reads only
models left as built, whose last result on them is carried over
(selloff.dbt_runner.build_selection; orchestration.dbt.selloff_dbt_models).

tests/test_orchestration.py checks that such a refresh still gives the full build's
warehouse; here, that it leaves the rest alone and still tells Dagster about it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.dbt import load_manifest
from selloff import dbt_runner
from tests.graph_runs import copy_run, failures, run_refresh

DAILY = frozenset({"prices_daily", "fund_flows_daily", "fx_rates_daily", "index_levels_daily",
                   "index_valuation_daily"})


def _names(manifest, uids) -> set[str]:
    return {manifest["nodes"][uid]["name"] for uid in uids}


def test_a_daily_landing_leaves_the_reference_models() -> None:
    manifest = load_manifest()
    sel = dbt_runner.build_selection(manifest, DAILY)
    skipped = _names(manifest, sel.skipped_models)
    assert {"int_fundamentals_discrete_versions", "int_fundamentals_ttm",
            "fct_fundamentals_quarterly", "dim_security", "dim_index", "dim_basket_member",
            "dim_trading_calendar", "stg_fundamentals", "markets"} <= skipped
    built = {n["name"] for uid, n in manifest["nodes"].items()
             if n["resource_type"] == "model" and uid not in sel.skipped_models}
    assert built == {f"stg_{d}" for d in DAILY} | {
        "int_shares_outstanding_glitches", "int_fx_rates_asof_daily",
        "int_shares_outstanding_asof_daily", "fct_market_cap_daily",
        "fct_valuation_multiples_daily", "fct_basket_valuation_daily", "fct_fund_flows_daily",
        "fct_index_levels_daily", "fct_index_valuation_daily"}
    args = sel.exclude_args(manifest)
    assert args[0] == "--exclude" and args[2:] == ["--indirect-selection", "empty"]
    assert set(args[1].split()) == _names(manifest, sel.skipped_models)
    # Only models and seeds are left out unless tests are named.
    assert not {uid for uid, n in manifest["nodes"].items()
                if n["resource_type"] == "test" and n["name"] in set(args[1].split())}


def test_every_raw_dataset_changed_skips_no_model() -> None:
    manifest = load_manifest()
    raw = frozenset(s["name"] for s in manifest["sources"].values() if s["source_name"] == "raw")
    sel = dbt_runner.build_selection(manifest, raw)
    assert not [uid for uid in sel.skipped_models if uid.startswith("model.")]


def test_nothing_changed_skips_every_model() -> None:
    manifest = load_manifest()
    sel = dbt_runner.build_selection(manifest, frozenset())
    assert sel.skipped_models == {uid for uid, n in manifest["nodes"].items()
                                  if n["resource_type"] in ("model", "seed")}


def test_the_fingerprint_follows_the_project_files(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "target").mkdir()
    (tmp_path / "models" / "m.sql").write_text("select 1")
    first = dbt_runner.project_fingerprint(tmp_path)
    (tmp_path / "target" / "run.sql").write_text("compiled")  # build output: no change
    assert dbt_runner.project_fingerprint(tmp_path) == first
    (tmp_path / "models" / "m.sql").write_text("select 2")
    assert dbt_runner.project_fingerprint(tmp_path) != first


@pytest.mark.slow
def test_one_day_refresh_builds_only_what_changed(tmp_path: Path, demo_snapshot: Path,
                                                   demo_snapshot_run) -> None:
    """A one-day US refresh after a full build: the fundamentals and dimensions are not
    rebuilt, but still materialized in the run (so nothing downstream is skipped) with
    their row counts, and all their tests run, as the daily facts' (the run publishes:
    the gate finds every blocking check evaluated)."""
    built = copy_run(demo_snapshot_run, tmp_path / "run")
    with duckdb.connect(str(built.warehouse), read_only=True) as con:
        [(day,)] = con.execute("SELECT max(trade_date) FROM raw.prices_daily "
                               "WHERE security_id LIKE 'US:%'").fetchall()
    assert isinstance(day, dt.date)
    run = run_refresh(built.root, window=(day.isoformat(), day.isoformat()), markets=("US",),
                      job="market_refresh", SELLOFF_SOURCE="snapshot",
                      SELLOFF_SNAPSHOT_DIR=str(demo_snapshot))
    assert run.result.success, failures(run)

    mats = {e.asset_key: e.materialization.metadata
            for e in run.result.get_asset_materialization_events()}
    dim = mats[dg.AssetKey(["marts", "dim_security"])]
    assert dim["rebuilt"].value is False and dim["dagster/row_count"].value > 0
    assert dg.AssetKey(["staging", "int_fundamentals_ttm"]) in mats
    mcap = mats[dg.AssetKey(["marts", "fct_market_cap_daily"])]
    assert "rebuilt" not in mcap and mcap["dagster/row_count"].value > 0
    # The view's row count is its grain's (meta row_count_of): the same as count(*) on it.
    view = mats[dg.AssetKey(["staging", "int_shares_outstanding_asof_daily"])]
    with duckdb.connect(str(run.warehouse), read_only=True) as con:
        [(n,)] = con.execute("SELECT count(*) FROM staging.int_shares_outstanding_asof_daily"
                             ).fetchall()
    assert view["dagster/row_count"].value == n > 0
    checks = {(e.asset_key, e.check_name) for e in run.result.get_asset_check_evaluations()}
    assert any(k == dg.AssetKey(["marts", "fct_market_cap_daily"])
               and name.startswith("relationships_") for k, name in checks)
    assert any(k == dg.AssetKey(["marts", "dim_security"]) for k, _ in checks)

    target = Path(__file__).resolve().parent.parent / "dbt_project" / "target"
    [folder] = target.glob(f"selloff_dbt_models-{run.result.run_id[:7]}-*")
    ran = {r["unique_id"].split(".")[-1] if r["unique_id"].startswith("model.") else
           r["unique_id"] for r in json.loads((folder / "run_results.json").read_text())["results"]}
    assert "fct_market_cap_daily" in ran and "int_shares_outstanding_glitches" in ran
    assert not {"int_fundamentals_ttm", "int_fundamentals_discrete_versions",
                "dim_security"} & ran
    assert not [u for u in ran if u.startswith("unit_test.")]


@pytest.mark.slow
def test_a_refresh_carries_over_the_tests_of_models_left_as_built(
        tmp_path: Path, demo_snapshot: Path, demo_snapshot_run) -> None:
    """Two one-day US refreshes on one Dagster instance (as the market schedules run them):
    the first runs every data test (nothing on record yet); the second runs only the tests
    that read a rebuilt model, and records for the others the result they had in the
    first (the tables they read were not rebuilt). Then the same refresh of another
    warehouse on that instance runs every test: those passes were on another file.
    Every run publishes: the gate finds every blocking check evaluated."""
    built = copy_run(demo_snapshot_run, tmp_path / "run")
    other = copy_run(demo_snapshot_run, tmp_path / "other")
    with duckdb.connect(str(built.warehouse), read_only=True) as con:
        [(day,)] = con.execute("SELECT max(trade_date) FROM raw.prices_daily "
                               "WHERE security_id LIKE 'US:%'").fetchall()
    manifest = load_manifest()
    # Independently of dbt_runner: the tests that read no model downstream of prices etc.
    daily_models = {uid for uid, n in manifest["nodes"].items()
                    if n["resource_type"] == "model" and uid in _downstream(manifest, DAILY)}
    tests = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] == "test"}
    reads_rebuilt = {uid for uid, n in tests.items()
                     if set(n["depends_on"]["nodes"]) & daily_models
                     or any(d.startswith("source.") for d in n["depends_on"]["nodes"])}
    assert reads_rebuilt and len(reads_rebuilt) < len(tests)
    runs = []
    with dg.DagsterInstance.ephemeral() as instance:
        for root in (built.root, built.root, other.root):
            run = run_refresh(root, window=(day.isoformat(), day.isoformat()),
                              markets=("US",), job="market_refresh", instance=instance,
                              SELLOFF_SOURCE="snapshot", SELLOFF_SNAPSHOT_DIR=str(demo_snapshot))
            assert run.result.success, failures(run)
            assert dg.AssetKey(["warehouse", "published"]) in {
                e.asset_key for e in run.result.get_asset_materialization_events()}
            runs.append(run)
    first, second, elsewhere = (_dbt_tests_run(r.result.run_id) for r in runs)
    assert first == set(tests) == elsewhere
    assert second == reads_rebuilt
    carried = {e.check_name: e for e in runs[1].result.get_asset_check_evaluations()
               if e.metadata.get("carried_over")}
    assert {tests[uid]["name"] for uid in set(tests) - reads_rebuilt} == set(carried)
    assert all(e.passed and e.metadata["evaluated_in_run"].value == runs[0].result.run_id
               for e in carried.values())
    assert any(e.asset_key == dg.AssetKey(["marts", "dim_security"]) for e in carried.values())


def _downstream(manifest, datasets: frozenset[str]) -> set[str]:
    todo = [uid for uid, s in manifest["sources"].items()
            if s["source_name"] == "raw" and s["name"] in datasets]
    seen: set[str] = set()
    while todo:
        for child in manifest["child_map"].get(todo.pop(), ()):
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def _dbt_tests_run(run_id: str) -> set[str]:
    target = Path(__file__).resolve().parent.parent / "dbt_project" / "target"
    [folder] = target.glob(f"selloff_dbt_models-{run_id[:7]}-*")
    results = json.loads((folder / "run_results.json").read_text())["results"]
    return {r["unique_id"] for r in results if r["unique_id"].startswith("test.")}
