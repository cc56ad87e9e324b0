"""Great Expectations suites for the raw layer (DESIGN §8: GX for raw-layer suites)."""

from selloff.quality.gx_suites import (
    BATCH_ROWS,
    SuiteOutcome,
    build_suite,
    run_suite,
    run_suite_on_table,
)

__all__ = ["BATCH_ROWS", "SuiteOutcome", "build_suite", "run_suite", "run_suite_on_table"]
