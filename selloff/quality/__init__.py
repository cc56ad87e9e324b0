"""Great Expectations suites for the raw layer (DESIGN §8: GX for raw-layer suites)."""

from selloff.quality.gx_suites import (
    ON_CALENDAR,
    SuiteOutcome,
    build_suite,
    prepare_frame,
    run_suite,
)

__all__ = ["ON_CALENDAR", "SuiteOutcome", "build_suite", "prepare_frame", "run_suite"]
