"""Publication of the build file to the path analysts query read-only."""


import dagster as dg

from assets import WRITER_POOL
from assets.gate import GATED_BY, checks_from_metadata, gate_verdict, upstream_blocking_checks
from selloff.catalog import apply_comments
from selloff.resources import WarehouseResource

PUBLISH_AFTER = [
    dg.AssetKey(["analytics", "selloff_rollup"]),
    dg.AssetKey(["analytics", "claim_verdicts"]),
    dg.AssetKey(["report", "fact_check"]),
    dg.AssetKey(["report", "selloff_report"]),
]
PUBLISHED = dg.AssetKey(["warehouse", "published"])


@dg.asset(
    key=PUBLISHED,
    group_name="publish",
    deps=PUBLISH_AFTER,
    pool=WRITER_POOL,
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"duckdb"},
    description="Checkpoint the build file, copy it beside the published file and rename it "
    "into place atomically. Refuses while any blocking check of anything upstream (raw "
    "included: the whole build file is published) failed at its latest evaluation or has "
    "not run since its asset's latest materialization, so neither a failed or killed run, "
    "nor the automation sensor, nor a click in the UI, nor `selloff run` publishes "
    "unchecked data.",
)
def published_warehouse(context: dg.AssetExecutionContext,
                        warehouse: WarehouseResource) -> dg.MaterializeResult:
    # The run's own plan already skips this step after a failed blocking check in the same
    # run; this reads the instance's record too, because a run that starts here (a manual
    # materialization, a run selecting only this asset) would otherwise publish data whose
    # check failed in an earlier run.
    # The list is fixed when the definitions are assembled, from the whole graph: a run
    # that selects only this asset has a job graph without its parents' checks. Without it
    # (these assets outside build_definitions) the run's own job graph is the best there is.
    listed = context.assets_def.metadata_by_key[PUBLISHED].get(GATED_BY)
    checks = (checks_from_metadata(listed) if listed is not None
              else upstream_blocking_checks(context.job_def.asset_layer.asset_graph, PUBLISHED))
    verdict = gate_verdict(context.instance, checks)
    if not verdict.open:
        raise dg.Failure(
            description="warehouse/published refused, the published file is left as it was: "
            + verdict.message() + ". Fix the data and refresh (the checks run with their "
            "assets), or re-run the failing checks; publication follows once they pass.",
            metadata={"failing_checks": dg.MetadataValue.json(verdict.failing),
                      "unchecked": dg.MetadataValue.json(verdict.unchecked)},
            allow_retries=False)
    # Tables are replaced whole (CREATE OR REPLACE), which drops their comments: the raw
    # and analytics ones are written again here, right before the copy (dbt's models carry
    # theirs from persist_docs).
    with warehouse.connect() as con:
        comments = apply_comments(con)
    path = warehouse.publish()
    n_checks = sum(len(c) for c in checks.values())
    context.log.info(f"gate open: {verdict.checked} of {n_checks} upstream blocking checks on "
                     "record, none failing")
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path)),
                                          "bytes": path.stat().st_size,
                                          "blocking_checks_on_record": verdict.checked,
                                          "comments_written": comments})
