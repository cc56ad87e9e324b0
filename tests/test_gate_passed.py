"""`gate.passed_on_latest`: which checks' latest result a windowed refresh may carry over
(orchestration/dbt.py carried_check_results) — exactly those the gate lets through as
passed on the asset's current materialization."""

from __future__ import annotations

import dagster as dg

from assets import gate

KEY = dg.AssetKey(["marts", "thing"])
CHECK = dg.AssetCheckKey(KEY, "rows_ok")


def _defs(outcome: dict[str, bool]) -> list:
    @dg.asset(key=KEY)
    def thing() -> None:
        return None

    @dg.asset_check(asset=KEY, name="rows_ok", blocking=True)
    def rows_ok() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=outcome["passed"])

    return [thing, rows_ok]


def test_only_a_pass_on_the_latest_materialization_counts() -> None:
    outcome = {"passed": True}
    assets = _defs(outcome)
    with dg.DagsterInstance.ephemeral() as instance:
        assert gate.passed_on_latest(instance, {KEY: [CHECK]}) == {}  # never evaluated
        ok = dg.materialize(assets, instance=instance)
        record = gate.passed_on_latest(instance, {KEY: [CHECK]})[CHECK]
        assert record.run_id == ok.run_id
        # Materialized again without its check: the pass was on data since replaced.
        dg.materialize(assets, instance=instance,
                       selection=dg.AssetSelection.assets(KEY).without_checks())
        assert gate.passed_on_latest(instance, {KEY: [CHECK]}) == {}
        assert gate.gate_verdict(instance, {KEY: [CHECK]}).unchecked
        outcome["passed"] = False
        dg.materialize(assets, instance=instance, raise_on_error=False)
        assert gate.passed_on_latest(instance, {KEY: [CHECK]}) == {}
        assert gate.gate_verdict(instance, {KEY: [CHECK]}).failing
        outcome["passed"] = True
        dg.materialize(assets, instance=instance)
        assert CHECK in gate.passed_on_latest(instance, {KEY: [CHECK]})
        assert gate.gate_verdict(instance, {KEY: [CHECK]}).open
