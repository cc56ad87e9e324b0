"""Publication gated by every upstream blocking check, whatever starts it (issue 18).

On the project's real Definitions (build_definitions: the dbt translator's and analytics
assets' eager conditions, behind the gate of orchestration/automation.py), with real runs
on a real instance: a blocking check that fails at its latest evaluation holds back every
asset downstream of it and publication, tick after tick, and automation catches up by
itself once the check passes again; the publish step refuses on its own too."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import duckdb
import pytest

PUBLISHED = dg.AssetKey(["warehouse", "published"])
FUNDAMENTALS = dg.AssetKey(["raw", "fundamentals"])
PRICES = dg.AssetKey(["raw", "prices_daily"])


class Project:
    def __init__(self, root: Path) -> None:
        from orchestration.definitions import build_definitions
        from selloff.settings import settings_from_env
        from selloff.sources.demo import export_demo_snapshot

        self.root = root
        snap = export_demo_snapshot(root / "demo", n_securities=12)
        defs = build_definitions(settings_from_env({
            "SELLOFF_WAREHOUSE": str(root / "warehouse" / "selloff.duckdb"),
            "SELLOFF_SOURCE": "snapshot", "SELLOFF_SNAPSHOT_DIR": str(snap)}))
        # Re-running a dataset's GX suite alone, as the UI's "Execute" on a check does.
        recheck = [dg.define_asset_job(f"recheck_{k.path[-1]}", selection=dg.AssetSelection.checks(
            dg.AssetCheckKey(k, "gx_suite"))) for k in (FUNDAMENTALS, PRICES)]
        self.defs = dg.Definitions.merge(defs, dg.Definitions(jobs=recheck))
        (root / "dagster_home").mkdir()
        self.instance = dg.DagsterInstance.local_temp(str(root / "dagster_home"))
        self.cursor = None

    @property
    def build(self) -> Path:
        return self.root / "warehouse" / "build" / "selloff.duckdb"

    @property
    def published(self) -> Path:
        return self.root / "warehouse" / "selloff.duckdb"

    def run(self, job: str, **kwargs) -> dg.ExecuteInProcessResult:
        job_def = (self.defs.resolve_implicit_global_asset_job_def() if job == "*"
                   else self.defs.resolve_job_def(job))
        return job_def.execute_in_process(instance=self.instance, raise_on_error=False, **kwargs)

    def tick(self) -> set[str]:
        """One evaluation of the automation sensor's conditions; the requested assets."""
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance,
                                                   cursor=self.cursor)
        self.cursor = result.cursor
        return {r.key.to_user_string() for r in result.results
                if isinstance(r.key, dg.AssetKey) and r.true_subset.size}

    def duplicate_a_row(self, table: str) -> None:
        # Real bad data in the build file: a duplicate key, which the GX suite catches.
        with duckdb.connect(str(self.build)) as con:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS keep; CREATE OR REPLACE TABLE keep.{table} "
                        f"AS SELECT * FROM raw.{table}; "
                        f"INSERT INTO raw.{table} SELECT * FROM raw.{table} LIMIT 1")

    def restore(self, table: str) -> None:
        with duckdb.connect(str(self.build)) as con:
            con.execute(f"CREATE OR REPLACE TABLE raw.{table} AS SELECT * FROM keep.{table}; "
                        "DROP SCHEMA keep CASCADE")


def _failures(result: dg.ExecuteInProcessResult) -> list[str]:
    out = []
    for e in result.all_events:
        if e.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = e.step_failure_data
            user = data.user_failure_data.description if data.user_failure_data else None
            out.append(f"{e.step_key}: {user or (data.error.message if data.error else '')}")
    return out


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    p = Project(tmp_path_factory.mktemp("gate"))
    full = p.run("refresh")
    assert full.success, _failures(full)
    published = [e for e in full.get_asset_materialization_events() if e.asset_key == PUBLISHED]
    assert len(published) == 1 and p.published.exists()
    return p


def _descendants(defs: dg.Definitions, key: dg.AssetKey) -> set[str]:
    graph = defs.resolve_asset_graph()
    out, todo = set(), [key]
    while todo:
        for child in graph.get(todo.pop()).child_keys:
            if child not in out:
                out.add(child)
                todo.append(child)
    return {k.to_user_string() for k in out}


@pytest.mark.slow
def test_automation_holds_back_everything_downstream_of_a_failed_check(project: Project) -> None:
    p = project
    downstream = _descendants(p.defs, FUNDAMENTALS)
    assert "warehouse/published" in downstream and "staging/stg_fundamentals" in downstream

    assert p.tick() == set()  # initial evaluation: everything is up to date
    filings = p.run("filings_refresh")  # new filings and share counts land, checks pass...
    assert filings.success, _failures(filings)
    p.duplicate_a_row("fundamentals")  # ...then the fundamentals' suite fails on them
    recheck = p.run("recheck_fundamentals")
    assert [e.passed for e in recheck.get_asset_check_evaluations()] == [False]

    ticks = [p.tick() for _ in range(3)]
    # The share counts passed: their own downstream may follow ...
    assert "staging/stg_shares_outstanding" in ticks[0]
    # ... but nothing built from the fundamentals, and no publication, on any tick.
    for requested in ticks:
        assert not requested & downstream, sorted(requested & downstream)

    p.restore("fundamentals")
    recheck = p.run("recheck_fundamentals")
    assert [e.passed for e in recheck.get_asset_check_evaluations()] == [True]
    # Nothing new upstream: automation catches up by itself with what was held back.
    caught_up = p.tick()
    assert {"staging/stg_fundamentals", "marts/fct_fundamentals_quarterly",
            "analytics/claim_verdicts", "warehouse/published"} <= caught_up, sorted(caught_up)
    assert p.tick() == set()  # and asks once


@pytest.mark.slow
def test_publish_refuses_by_itself_naming_the_failed_check(project: Project) -> None:
    p = project
    before = hashlib.sha256(p.published.read_bytes()).hexdigest()
    p.duplicate_a_row("prices_daily")
    try:
        recheck = p.run("recheck_prices_daily")
        assert [e.passed for e in recheck.get_asset_check_evaluations()] == [False]
        # A click on warehouse/published in the UI: a run of that one asset.
        manual = p.run("*", asset_selection=[PUBLISHED])
        assert not manual.success
        message = " ".join(_failures(manual))
        assert "warehouse/published refused" in message
        assert "raw/prices_daily:gx_suite" in message
        assert "raw/fundamentals" not in message  # only the failing one is named
        assert not manual.get_asset_materialization_events()
        assert hashlib.sha256(p.published.read_bytes()).hexdigest() == before
    finally:
        p.restore("prices_daily")
    recheck = p.run("recheck_prices_daily")
    assert [e.passed for e in recheck.get_asset_check_evaluations()] == [True]
    again = p.run("*", asset_selection=[PUBLISHED])
    assert again.success, _failures(again)
    assert [e.asset_key for e in again.get_asset_materialization_events()] == [PUBLISHED]
