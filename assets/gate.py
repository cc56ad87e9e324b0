"""The publication gate: which blocking checks guard an asset, and which of them fail now.

The guard is every blocking check of every asset upstream of it, not only of its direct
parents: the staging models are views that read `raw` directly, and publication copies
the whole build file, `raw.*` included. The automation conditions (orchestration/
automation.py) and the publish step's own refusal (assets/report/publish.py) both read
this one list, so the two cannot disagree about what gates publication.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)


def upstream_blocking_checks(graph: AssetGraph, key: dg.AssetKey) -> dict[dg.AssetKey, list[dg.AssetCheckKey]]:
    """Blocking checks of every asset upstream of `key` (transitively, `key` excluded),
    grouped by the asset they check; assets without blocking checks are left out."""
    out: dict[dg.AssetKey, list[dg.AssetCheckKey]] = {}
    for parent in sorted(graph.get_ancestor_asset_keys(key), key=lambda k: k.to_user_string()):
        if not graph.has(parent):
            continue
        blocking = sorted((ck for ck in graph.get(parent).check_keys
                           if graph.get_check_spec(ck).blocking),
                          key=lambda ck: ck.to_user_string())
        if blocking:
            out[parent] = blocking
    return out


# Metadata key under which the gated asset's spec lists the checks that gate it: set when
# the definitions are assembled (orchestration/automation.py), from the whole graph, so a
# run that selects only the gated asset still knows every check upstream of it, and the
# UI shows the list on the asset.
GATED_BY = "selloff/gated_by"


def gated_by_metadata(checks: dict[dg.AssetKey, list[dg.AssetCheckKey]]) -> dg.MetadataValue:
    return dg.MetadataValue.json([{"asset": list(ck.asset_key.path), "check": ck.name}
                                  for cks in checks.values() for ck in cks])


def checks_from_metadata(value: object) -> dict[dg.AssetKey, list[dg.AssetCheckKey]]:
    entries = value.value if isinstance(value, dg.JsonMetadataValue) else value
    out: dict[dg.AssetKey, list[dg.AssetCheckKey]] = {}
    for entry in entries or []:
        key = dg.AssetKey(entry["asset"])
        out.setdefault(key, []).append(dg.AssetCheckKey(key, entry["check"]))
    return out


@dataclass(frozen=True)
class GateVerdict:
    """What the latest recorded evaluations say about a set of blocking checks."""

    failing: list[str]  # `asset:check: description` of each check whose latest result failed
    unchecked: list[str]  # checks not evaluated since their asset's latest materialization
    checked: int  # checks with a completed evaluation on record

    @property
    def open(self) -> bool:
        return not self.failing and not self.unchecked

    def message(self) -> str:
        parts = []
        if self.failing:
            parts.append(f"{len(self.failing)} blocking check(s) failed at their latest "
                         "evaluation: " + "; ".join(self.failing))
        if self.unchecked:
            parts.append(f"{len(self.unchecked)} blocking check(s) not evaluated since their "
                         "asset's latest materialization: " + "; ".join(self.unchecked))
        return ". ".join(parts)


def gate_verdict(instance: dg.DagsterInstance,
                 checks: dict[dg.AssetKey, list[dg.AssetCheckKey]]) -> GateVerdict:
    """Read the latest evaluation of each check from the instance (the run history the UI,
    the daemon and `selloff run` share), against its asset's latest materialization.

    An asset this instance never saw materialized (a fresh instance on an existing build
    file) has nothing on record to refuse on; an asset materialized after its check last
    ran has data no check has looked at, and that gates like a failure."""
    failing: list[str] = []
    unchecked: list[str] = []
    checked = 0
    for asset, ck, state, record in _latest_evaluations(instance, checks):
        name = f"{asset.to_user_string()}:{ck.name}"
        if state == "never":
            continue
        if state == "none":
            unchecked.append(name)
            continue
        checked += 1
        if state == "stale":
            unchecked.append(name)
        elif state == "failed":
            evaluation = record.event.dagster_event.asset_check_evaluation_data
            detail = (evaluation.description or "").strip()
            failing.append(name + (f" ({detail[:200]})" if detail else "")
                           + f" in run {record.run_id[:8]}")
    return GateVerdict(failing=failing, unchecked=unchecked, checked=checked)


def passed_on_latest(instance: dg.DagsterInstance,
                     checks: dict[dg.AssetKey, list[dg.AssetCheckKey]]
                     ) -> dict[dg.AssetCheckKey, AssetCheckExecutionRecord]:
    """The checks whose latest evaluation passed on their asset's latest materialization
    (what `gate_verdict` lets through, a warning that failed excepted), with that record."""
    return {ck: record for _, ck, state, record in _latest_evaluations(instance, checks)
            if state == "passed"}


def _latest_evaluations(instance: dg.DagsterInstance,
                        checks: dict[dg.AssetKey, list[dg.AssetCheckKey]]
                        ) -> Iterator[tuple[dg.AssetKey, dg.AssetCheckKey, str, Any]]:
    """(asset, check, state, latest completed record) for each check. States: never (no
    evaluation, asset never materialized here), none (no evaluation, asset materialized),
    stale (evaluated before the latest materialization), failed (blocking failure),
    warned (a failed warning: never blocks), passed, other (e.g. skipped)."""
    keys = [ck for cks in checks.values() for ck in cks]
    storage = instance.event_log_storage
    summaries = storage.get_asset_check_summary_records(keys)
    latest_ids = storage.get_latest_materialization_storage_ids(list(checks))
    latest_events = instance.get_latest_materialization_events(list(checks))
    for asset, cks in checks.items():
        mat_id, mat = latest_ids.get(asset), latest_events.get(asset)
        for ck in cks:
            summary = summaries.get(ck)
            record = summary.last_completed_check_execution_record if summary else None
            if record is None or record.event is None or record.event.dagster_event is None:
                yield asset, ck, ("never" if mat_id is None else "none"), record
                continue
            evaluation = record.event.dagster_event.asset_check_evaluation_data
            if _before(evaluation, record.event.timestamp, mat_id, mat):
                state = "stale"
            elif record.status == AssetCheckExecutionRecordStatus.FAILED:
                # a warning never blocks, in a run or here
                state = "warned" if evaluation.severity == dg.AssetCheckSeverity.WARN else "failed"
            elif (record.status == AssetCheckExecutionRecordStatus.SUCCEEDED
                  and evaluation is not None and evaluation.passed):
                state = "passed"
            else:
                state = "other"  # e.g. skipped: nothing to refuse on, nothing to carry
            yield asset, ck, state, record


def _before(evaluation, evaluated_at: float, mat_id: int | None, mat) -> bool:
    """Did this evaluation look at data older than the asset's latest materialization?"""
    if mat_id is None:
        return False
    # A check that names the materialization it evaluated says so exactly (its own event
    # may be stored before or after that materialization's); otherwise compare times.
    target = evaluation.target_materialization_data
    if target is not None:
        return target.storage_id < mat_id
    return mat is not None and evaluated_at < mat.timestamp
