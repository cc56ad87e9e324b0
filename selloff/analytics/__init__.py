"""Pure polars maths of the analytics layer (no Dagster): windows, decomposition, roll-up
and their reconciliation. The assets in `assets/analytics/` call these functions."""

from selloff.analytics.decomposition import DecompositionResult, decompose, decompose_amounts
from selloff.analytics.detection import (
    detect_drawdown_windows,
    detect_worst_windows,
    measure_moves,
    selloff_windows,
)
from selloff.analytics.reconcile import ReconciliationResult, reconcile
from selloff.analytics.rollup import rollup
from selloff.analytics.windows import (
    basket_level_series,
    calendar_trading_days,
    data_trading_days,
    index_level_series,
    named_windows_frame,
    window_bounds,
    window_t0,
    window_t1,
)

__all__ = [
    "DecompositionResult",
    "ReconciliationResult",
    "basket_level_series",
    "calendar_trading_days",
    "data_trading_days",
    "decompose",
    "decompose_amounts",
    "detect_drawdown_windows",
    "detect_worst_windows",
    "index_level_series",
    "measure_moves",
    "named_windows_frame",
    "reconcile",
    "rollup",
    "selloff_windows",
    "window_bounds",
    "window_t0",
    "window_t1",
]
