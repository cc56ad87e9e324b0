"""Great Expectations suites for the raw layer (DESIGN §8: GX for raw-layer suites)."""

from selloff.quality.gx_suites import (
    SuiteOutcome,
    build_suite,
    run_suite,
    run_suite_on_table,
)

__all__ = ["SuiteOutcome", "build_suite", "run_suite", "run_suite_on_table"]
