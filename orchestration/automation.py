"""Declarative automation: marts, analytics and reports follow their inputs, behind the gate
of every upstream blocking check."""

import warnings

import dagster as dg

from assets.gate import GATED_BY, gated_by_metadata, upstream_blocking_checks
from assets.report.publish import PUBLISHED

# Extract assets run on their schedules; everything downstream carries an eager condition
# (set on the analytics assets and, for dbt models, by the translator), and this sensor
# evaluates them.
automation_sensor = dg.AutomationConditionSensorDefinition(
    name="selloff_automation",
    target=dg.AssetSelection.all() - dg.AssetSelection.groups("extract"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
)

GATE_LABEL = "upstream_blocking_checks_passed"


def upstream_checks_passed(checks: dict[dg.AssetKey, list[dg.AssetCheckKey]]) -> dg.AutomationCondition:
    """True while every blocking check of every listed upstream asset passed on that asset's
    latest materialization (or is requested in this very tick: the run itself then stops
    the children if it fails, as `all_deps_blocking_checks_passed` allows)."""
    passed = dg.AutomationCondition.all_checks_match(
        dg.AutomationCondition.check_passed() | dg.AutomationCondition.will_be_requested(),
        blocking_only=True)
    terms = [dg.AutomationCondition.asset_matches(k, passed) for k in checks]
    if not terms:
        return dg.AutomationCondition.all_deps_blocking_checks_passed().with_label(GATE_LABEL)
    cond = terms[0]
    for t in terms[1:]:
        cond = cond & t
    return cond.with_label(GATE_LABEL)


def gate_automation(defs: dg.Definitions) -> dg.Definitions:
    """Every asset with an automation condition also waits for the blocking checks of
    everything upstream of it (transitively).

    `eager()` alone has no check condition, and `all_deps_blocking_checks_passed()` sees
    direct parents only, while the staging views read `raw` and publication copies `raw.*`.
    The gate sits outside eager's `since_last_handled`, so an update that arrived while the
    gate was shut is still pending when the check passes again: automation catches up by
    itself, without a new upstream materialization."""
    graph = defs.resolve_asset_graph()

    def add_gate(spec: dg.AssetSpec) -> dg.AssetSpec:
        checks = upstream_blocking_checks(graph, spec.key)
        if spec.key == PUBLISHED:
            # the publish step's own refusal reads this list (assets/report/publish.py)
            spec = spec.merge_attributes(metadata={GATED_BY: gated_by_metadata(checks)})
        if spec.automation_condition is None:
            return spec
        gate = upstream_checks_passed(checks)
        return spec.replace_attributes(automation_condition=spec.automation_condition & gate)

    with warnings.catch_warnings():
        # "preview" in 1.13; the mapping itself (specs in, specs out) is plain.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return defs.map_resolved_asset_specs(func=add_gate)
