"""Great Expectations expectation classes of the project (imported lazily, with GX).

A module of its own, holding nothing but GX: GX registers every expectation class for the
process's life, so the class, its methods and their module globals outlive the
interpreter's last collection. Defined inside `gx_suites`, those globals were that
module's, which hold DuckDB; nanobind then found DuckDB's objects alive at exit and printed
its "leaked" lines (issue 25).
"""

from __future__ import annotations

from typing import Any

import great_expectations.expectations as gxe
from great_expectations.expectations.metrics.query_metric_provider import MAX_RESULT_RECORDS


class UnexpectedRowsOnceExpectation(gxe.UnexpectedRowsExpectation):
    """GX's `UnexpectedRowsExpectation` with its query run once.

    GX's own asks two metrics of the query: its first rows (`unexpected_rows_query.table`,
    at most `MAX_RESULT_RECORDS`) and their count (`unexpected_rows_query.row_count`, the
    query wrapped in COUNT(*)), so DuckDB computes the key's GROUP BY over 10 M fund-flow
    rows twice. GX documents `_validate` as the method to override. This one asks for the
    rows alone: fewer than the limit came back exactly when they are all of them, and the
    count is then theirs; at the limit (a failure either way) the count is left to the
    failure's description (`gx_suites._describe_failure` counts the rows itself). Success
    is the same: the query returns no row.
    """

    metric_dependencies = ("unexpected_rows_query.table",)

    def _validate(self, metrics: dict, runtime_configuration: dict | None = None,
                  execution_engine: Any = None) -> dict:
        rows = metrics["unexpected_rows_query.table"]
        complete = len(rows) < MAX_RESULT_RECORDS
        return {"success": not rows,
                "result": {"observed_value": len(rows) if complete else None}}
