"""The dbt unit tests (`unit_test` nodes: SQL logic on fixtures) run here, every one.

Production builds leave them out (orchestration.dbt.dbt_build_args: they test the SQL,
not the data, so they need not run on every refresh); `make test` runs them all on a
small demo build: the models they test and their parents are built, then the unit tests.
"""

from __future__ import annotations

import json

import pytest

from selloff import dbt_runner
from selloff.settings import settings_from_env


@pytest.mark.slow
def test_every_dbt_unit_test_passes(tmp_path) -> None:
    settings = settings_from_env({
        "SELLOFF_WAREHOUSE": str(tmp_path / "warehouse" / "selloff.duckdb"),
        "SELLOFF_LAKE_DIR": str(tmp_path / "lake"),
        "SELLOFF_SOURCE": "demo",
        "SELLOFF_DEMO_SECURITIES": "20",
    })
    dbt_runner.land_raw(settings)
    # The unit-tested models and their parents (dbt reads their columns), then the unit
    # tests; no data tests (the marts' tests cover those).
    run = dbt_runner.dbt_build(settings.store, "duckdb", tmp_path,
                               ("--select", "+test_type:unit", "--exclude-resource-type", "test"))
    assert run.ok, run.output[-6000:]
    manifest = json.loads((tmp_path / "target_duckdb" / "manifest.json").read_text())
    expected = set(manifest["unit_tests"])
    assert len(expected) >= 9
    results = json.loads((tmp_path / "target_duckdb" / "run_results.json").read_text())
    ran = {r["unique_id"]: r["status"] for r in results["results"]
           if r["unique_id"].startswith("unit_test.")}
    assert set(ran) == expected
    assert all(status == "pass" for status in ran.values()), ran
