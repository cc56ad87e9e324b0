"""Exact decomposition of each security's USD market-cap change over a window (DESIGN §5).

Level 1. With `M = P * S * X` (close, shares, USD per unit of local currency) and
`a_P = ln(P1/P0)`, `a_S = ln(S1/S0)`, `a_X = ln(X1/X0)`, `L = a_P + a_S + a_X = ln(M1/M0)`,
each component gets `c_k = (M1 - M0) * a_k / L` (log-linear allocation), so
`price_usd + shares_usd + fx_usd == M1 - M0`. All are zero when L is 0 (|L| < 1e-12).

Level 2 splits the local part `price_usd + shares_usd` (log change `a_P + a_S`) when
net income TTM is positive at both ends: `ln(PE1/PE0)` (re-rating) + `ln(NI1/NI0)`
(earnings), with PE = P*S / NI, using the same weight `(M1 - M0) / L`. Since
`a_R = a_P + a_S - a_E` by construction, re-rating + earnings equals the local part even
when `a_R + a_E` is 0 (the two then offset). Otherwise (a loss, or no TTM figure at an
end) the whole local part goes to `no_earnings_basis_usd`.

`(M1 - M0) / L` is the logarithmic mean of M0 and M1; it is computed as
`M0 * expm1(L) / L`, which stays accurate when L is small, where `(M1 - M0) / L` would
divide two rounding errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from selloff.analytics.tables import (
    DECOMPOSITION_SCHEMA,
    EXCLUDED_SCHEMA,
    conform,
    require_columns,
)
from selloff.analytics.windows import data_trading_days, window_bounds

# Below this |ln(M1/M0)| the change counts as zero and every component is 0 (DESIGN §5).
ZERO_LOG_CHANGE = 1e-12

AMOUNT_INPUTS: tuple[str, ...] = (
    "close_0", "shares_0", "usd_per_unit_0",
    "close_1", "shares_1", "usd_per_unit_1",
    "net_income_ttm_0", "net_income_ttm_1",
)


def _log_ratio(end: str, start: str) -> pl.Expr:
    return (pl.col(end) / pl.col(start)).log()


def decompose_amounts(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
    """Add the decomposition amounts to a frame of end values, one row per security.

    Needs `close_0, shares_0, usd_per_unit_0, close_1, shares_1, usd_per_unit_1` (> 0)
    and `net_income_ttm_0, net_income_ttm_1` (any sign, may be null). Adds
    `mcap_usd_start, mcap_usd_end, change_usd, price_usd, shares_usd, fx_usd,
    rerating_usd, earnings_usd, no_earnings_basis_usd`. Vectorized: no per-row Python.
    """
    require_columns(frame, "decomposition input", AMOUNT_INPUTS)
    a_p, a_s, a_x = (
        _log_ratio("close_1", "close_0"),
        _log_ratio("shares_1", "shares_0"),
        _log_ratio("usd_per_unit_1", "usd_per_unit_0"),
    )
    has_earnings = (
        pl.col("net_income_ttm_0").is_not_null()
        & pl.col("net_income_ttm_1").is_not_null()
        & (pl.col("net_income_ttm_0") > 0)
        & (pl.col("net_income_ttm_1") > 0)
    )
    moved = pl.col("_L").abs() >= ZERO_LOG_CHANGE

    def amount(log_change: pl.Expr) -> pl.Expr:
        return pl.when(moved).then(pl.col("_w") * log_change).otherwise(0.0)

    return (
        frame.with_columns(
            (pl.col("close_0") * pl.col("shares_0") * pl.col("usd_per_unit_0")).alias("mcap_usd_start"),
            (pl.col("close_1") * pl.col("shares_1") * pl.col("usd_per_unit_1")).alias("mcap_usd_end"),
            a_p.alias("_a_p"),
            a_s.alias("_a_s"),
            a_x.alias("_a_x"),
            pl.when(has_earnings)
            # A difference of logs, not the log of the ratio: NI may be tiny at one end
            # and the ratio overflow; a_R = a_local - a_E keeps the identity either way.
            .then(pl.col("net_income_ttm_1").log() - pl.col("net_income_ttm_0").log())
            .otherwise(None)
            .alias("_a_e"),
            has_earnings.alias("_has_earnings"),
        )
        .with_columns(
            (pl.col("_a_p") + pl.col("_a_s") + pl.col("_a_x")).alias("_L"),
            (pl.col("mcap_usd_end") - pl.col("mcap_usd_start")).alias("change_usd"),
        )
        .with_columns(
            # Logarithmic mean of M0 and M1, i.e. (M1 - M0) / L, without the cancellation.
            pl.when(moved)
            .then(pl.col("mcap_usd_start") * np.expm1(pl.col("_L")) / pl.col("_L"))
            .otherwise(0.0)
            .alias("_w")
        )
        .with_columns(
            amount(pl.col("_a_p")).alias("price_usd"),
            amount(pl.col("_a_s")).alias("shares_usd"),
            amount(pl.col("_a_x")).alias("fx_usd"),
            pl.when(pl.col("_has_earnings"))
            .then(amount(pl.col("_a_p") + pl.col("_a_s") - pl.col("_a_e")))
            .otherwise(0.0)
            .alias("rerating_usd"),
            pl.when(pl.col("_has_earnings"))
            .then(amount(pl.col("_a_e")))
            .otherwise(0.0)
            .alias("earnings_usd"),
        )
        .with_columns(
            pl.when(pl.col("_has_earnings"))
            .then(0.0)
            .otherwise(pl.col("price_usd") + pl.col("shares_usd"))
            .alias("no_earnings_basis_usd")
        )
        .drop("_a_p", "_a_s", "_a_x", "_a_e", "_has_earnings", "_L", "_w")
    )


@dataclass(frozen=True)
class DecompositionResult:
    """`frame`: the `analytics.selloff_decomposition` rows.

    `excluded`: (window_id, security_id, market, t0_date, t1_date, reason) for each
    security of a window's market left out, reason one of 'no price', 'no share count',
    'no FX' (the first that applies; a value is missing when null or not positive at t0
    or t1).
    """

    frame: pl.DataFrame
    excluded: pl.DataFrame

    def exclusion_counts(self) -> pl.DataFrame:
        """(window_id, reason, n_securities), for the asset's metadata."""
        return (
            self.excluded.group_by("window_id", "reason")
            .agg(pl.len().cast(pl.Int64).alias("n_securities"))
            .sort("window_id", "reason")
        )

    def exclusion_totals(self) -> dict[str, int]:
        """{reason: number of (window, security) pairs left out}."""
        counts = self.excluded.group_by("reason").len().sort("reason")
        return dict(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True))


def _ends(market_cap: pl.LazyFrame, valuation: pl.LazyFrame | None, suffix: str) -> pl.LazyFrame:
    ends = market_cap.select(
        "security_id",
        pl.col("trade_date").alias(f"t{suffix}_date"),
        pl.col("close").cast(pl.Float64).alias(f"close_{suffix}"),
        pl.col("shares").cast(pl.Float64).alias(f"shares_{suffix}"),
        pl.col("usd_per_unit").cast(pl.Float64).alias(f"usd_per_unit_{suffix}"),
    )
    if valuation is None:
        return ends.with_columns(pl.lit(None, pl.Float64).alias(f"net_income_ttm_{suffix}"))
    ni = valuation.select(
        "security_id",
        pl.col("trade_date").alias(f"t{suffix}_date"),
        pl.col("net_income_ttm").cast(pl.Float64).alias(f"net_income_ttm_{suffix}"),
    )
    return ends.join(ni, on=["security_id", f"t{suffix}_date"], how="left")


def _missing(column: str) -> pl.Expr:
    return pl.col(column).is_null() | (pl.col(column) <= 0) | pl.col(column).is_nan()


def _check_unique(frame: pl.DataFrame, name: str) -> None:
    dup = frame.select("security_id", "trade_date").filter(
        pl.struct("security_id", "trade_date").is_duplicated()
    )
    if dup.height:
        raise ValueError(
            f"{name}: (security_id, trade_date) must be unique; duplicates e.g. {dup.rows()[:5]}"
        )


def decompose(
    windows: pl.DataFrame,
    market_cap: pl.DataFrame,
    valuation: pl.DataFrame | None,
    securities: pl.DataFrame,
    *,
    trading_days: pl.DataFrame | None = None,
) -> DecompositionResult:
    """Decompose every security of every window (`analytics.selloff_decomposition`).

    Inputs: `windows` (selloff_windows), `market_cap` (fct_market_cap_daily: security_id,
    trade_date, close, shares, usd_per_unit), `valuation` (fct_valuation_multiples_daily:
    security_id, trade_date, net_income_ttm; None = no earnings data, all goes to
    no_earnings_basis), `securities` (dim_security: security_id, market).

    t0/t1 are per market (`window_bounds`): by default over the days on which the market
    has any close in `market_cap` (`data_trading_days`); pass `trading_days` (market,
    trade_date), e.g. from dim_trading_calendar, to use the exchange calendar instead.
    A (window, market) without a session inside the window (t1 == t0) or without a close
    before it has no rows. Each security of the market is either decomposed or listed in
    `excluded` with the reason.
    """
    require_columns(market_cap, "fct_market_cap_daily",
                    ("security_id", "trade_date", "close", "shares", "usd_per_unit"))
    require_columns(securities, "dim_security", ("security_id", "market"))
    if valuation is not None:
        require_columns(valuation, "fct_valuation_multiples_daily",
                        ("security_id", "trade_date", "net_income_ttm"))
        _check_unique(valuation, "fct_valuation_multiples_daily")
    _check_unique(market_cap, "fct_market_cap_daily")

    days = trading_days if trading_days is not None else data_trading_days(market_cap)
    bounds = window_bounds(windows, days).filter(
        pl.col("t0_date").is_not_null()
        & pl.col("t1_date").is_not_null()
        & (pl.col("t1_date") > pl.col("t0_date"))
    )
    mc = market_cap.lazy()
    val = valuation.lazy() if valuation is not None else None
    pairs = (
        securities.lazy()
        .select("security_id", "market")
        .unique(subset=["security_id"], keep="first")
        .join(bounds.lazy(), on="market", how="inner")
        .join(_ends(mc, val, "0"), on=["security_id", "t0_date"], how="left")
        .join(_ends(mc, val, "1"), on=["security_id", "t1_date"], how="left")
        .with_columns(
            pl.when(_missing("close_0") | _missing("close_1"))
            .then(pl.lit("no price"))
            .when(_missing("shares_0") | _missing("shares_1"))
            .then(pl.lit("no share count"))
            .when(_missing("usd_per_unit_0") | _missing("usd_per_unit_1"))
            .then(pl.lit("no FX"))
            .otherwise(None)
            .alias("reason")
        )
        .collect()
    )
    included = decompose_amounts(pairs.lazy().filter(pl.col("reason").is_null())).collect()
    frame = conform(included, DECOMPOSITION_SCHEMA).sort("window_id", "security_id")
    excluded = conform(pairs.filter(pl.col("reason").is_not_null()), EXCLUDED_SCHEMA).sort(
        "window_id", "security_id"
    )
    return DecompositionResult(frame, excluded)
