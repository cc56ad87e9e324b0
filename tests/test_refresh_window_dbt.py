"""The refresh window reaches dbt through the build file, not through `--vars`.

A small demo market is landed and built in full by dbt (a subprocess, as Dagster runs it);
then the window table gets one day (dbt_runner.set_refresh_window) and only the daily
facts are built again. That windowed build must
  - reuse the full build's parse state (no "Unable to do partial parsing": its vars are
    the full build's),
  - rebuild only the rows from the window's first day on: the rows before it are marked
    (adj_close = -1) before the windowed build and must come out still marked,
  - give the full build's rows from that day on,
and the window table is gone once cleared, so a later full build sees no window. The
full build also runs every dbt unit test, checked here too.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from selloff import dbt_runner, warehouse
from selloff.settings import StoreSettings, settings_from_env
from tests.graph_runs import assert_same_table

DAY = dt.date(2025, 11, 20)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[StoreSettings, Path]:
    root = tmp_path_factory.mktemp("refresh_window_dbt")
    settings = settings_from_env({
        "SELLOFF_WAREHOUSE": str(root / "warehouse" / "selloff.duckdb"),
        "SELLOFF_LAKE_DIR": str(root / "lake"),
        "SELLOFF_SOURCE": "demo",
        "SELLOFF_DEMO_SECURITIES": "20",
    })
    dbt_runner.land_raw(settings)
    run = dbt_runner.dbt_build(settings.store, "duckdb", root)
    assert run.ok, run.output[-6000:]
    # The full build's manifest and results, before a windowed build overwrites them.
    kept = root / "full_build"
    kept.mkdir()
    for name in ("manifest.json", "run_results.json"):
        shutil.copyfile(root / "target_duckdb" / name, kept / name)
    return settings.store, root


@pytest.mark.slow
def test_every_dbt_unit_test_passes(built) -> None:
    """The dbt unit tests (`unit_test` nodes: SQL logic on fixtures), every one. Production
    builds leave them out (orchestration.dbt.dbt_build_args: they test the SQL, not the
    data); a plain `dbt build`, as this module's full build, runs them all."""
    _, root = built
    manifest = json.loads((root / "full_build" / "manifest.json").read_text())
    expected = set(manifest["unit_tests"])
    assert len(expected) >= 9
    results = json.loads((root / "full_build" / "run_results.json").read_text())
    ran = {r["unique_id"]: r["status"] for r in results["results"]
           if r["unique_id"].startswith("unit_test.")}
    assert set(ran) == expected
    assert all(status == "pass" for status in ran.values()), ran


@pytest.mark.slow
def test_windowed_dbt_build_reads_the_window_from_the_build_file(built) -> None:
    settings, root = built
    path = settings.build_warehouse
    with warehouse.connect(path, read_only=True) as con:
        full = con.sql("SELECT * FROM marts.fct_market_cap_daily").pl()
        prices = con.sql("SELECT security_id, trade_date FROM raw.prices_daily").pl()
    expected_rebuilt = prices.filter(pl.col("trade_date") >= DAY).height
    assert 0 < expected_rebuilt < prices.height

    with warehouse.connect(path) as con:
        # A mark that only a rebuild of those rows would undo; the model reads no
        # adj_close back from itself (previous_rows takes close and market_cap_usd).
        con.execute("UPDATE marts.fct_market_cap_daily SET adj_close = -1 WHERE trade_date < ?",
                    [DAY])
        dbt_runner.set_refresh_window(con, (DAY, DAY))
    try:
        run = dbt_runner.dbt_build(settings, "duckdb", root,
                                   ("--select", "fct_market_cap_daily"))
    finally:
        with warehouse.connect(path) as con:
            dbt_runner.set_refresh_window(con, None)
    assert run.ok, run.output[-6000:]
    # Same vars as the full build: dbt reuses its parse state.
    assert "Unable to do partial parsing" not in run.output

    results = json.loads((root / "target_duckdb" / "run_results.json").read_text())
    [model] = [r for r in results["results"]
               if r["unique_id"] == "model.selloff.fct_market_cap_daily"]
    assert model["status"] == "success"
    compiled = model["compiled_code"]
    assert f"trade_date >= cast('{DAY.isoformat()}' as date)" in compiled
    # The tests of the fact checked the rebuilt rows only.
    tests = [r for r in results["results"] if r["unique_id"].startswith("test.")
             and "fct_market_cap_daily" in r["unique_id"]]
    assert tests and all(r["status"] == "pass" for r in tests)
    assert any(f">= cast('{DAY.isoformat()}' as date)" in r["compiled_code"] for r in tests)

    with warehouse.connect(path, read_only=True) as con:
        refreshed = con.sql("SELECT * FROM marts.fct_market_cap_daily").pl()
        left = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = "
                           "'selloff_refresh_window'").fetchall()[0][0]
    before = pl.col("trade_date") < DAY
    # Rows before the window were left as they were (still marked) ...
    kept = refreshed.filter(before)
    assert kept.height == full.filter(before).height > 0
    assert (kept["adj_close"] == -1).all()
    marked = full.filter(before).with_columns(pl.lit(-1).cast(full.schema["adj_close"])
                                              .alias("adj_close"))
    assert_same_table(marked, kept, "fct_market_cap_daily before the window")
    # ... and the rows from its first day on are the full build's.
    rebuilt = refreshed.filter(~before)
    assert rebuilt.height == expected_rebuilt
    assert_same_table(full.filter(~before), rebuilt, "fct_market_cap_daily from the window on")
    assert left == 0


def test_window_table_holds_one_row_and_a_full_build_drops_it(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with warehouse.connect(path) as con:
        dbt_runner.set_refresh_window(con, (DAY, DAY + dt.timedelta(days=2)))
        dbt_runner.set_refresh_window(con, (DAY, DAY))
        rows = con.execute(f"SELECT * FROM {dbt_runner.REFRESH_WINDOW_TABLE}").fetchall()
        assert rows == [(DAY, DAY)]
        dbt_runner.set_refresh_window(con, None)
        assert con.execute("SELECT count(*) FROM duckdb_tables() "
                           "WHERE table_name = 'selloff_refresh_window'").fetchall()[0][0] == 0
