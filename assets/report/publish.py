"""Publication of the build file to the path analysts query read-only."""


import dagster as dg

from assets import WRITER_POOL
from selloff.catalog import apply_comments
from selloff.resources import WarehouseResource

PUBLISH_AFTER = [
    dg.AssetKey(["analytics", "selloff_rollup"]),
    dg.AssetKey(["analytics", "claim_verdicts"]),
    dg.AssetKey(["report", "fact_check"]),
    dg.AssetKey(["report", "selloff_report"]),
]


@dg.asset(
    key=["warehouse", "published"],
    group_name="publish",
    deps=PUBLISH_AFTER,
    pool=WRITER_POOL,
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"duckdb"},
    description="Checkpoint the build file, copy it beside the published file and rename it "
    "into place atomically. Runs only when every upstream blocking check passed, so a failed "
    "or killed run never touches the published file.",
)
def published_warehouse(warehouse: WarehouseResource) -> dg.MaterializeResult:
    # Tables are replaced whole (CREATE OR REPLACE), which drops their comments: the raw
    # and analytics ones are written again here, right before the copy (dbt's models carry
    # theirs from persist_docs).
    with warehouse.connect() as con:
        comments = apply_comments(con)
    path = warehouse.publish()
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path)),
                                          "bytes": path.stat().st_size,
                                          "comments_written": comments})
