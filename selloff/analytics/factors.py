"""Factor attribution of window returns (DESIGN §5, "Beyond the identity").

Per window and market, a cross-sectional OLS regression of each security's local log
return over the window on three pre-window exposures plus an intercept:

    r_i = a + b * beta_i + c * z_i + d * is_ai_i + e_i

- `r_i = ln(v_t1 / v_t0)` with `v` = `close` (default) or `market_cap_local` of
  fct_market_cap_daily, at exactly t0 and t1 of the window in the security's market
  (`selloff.analytics.windows.window_bounds`: t0 = last close strictly before the window
  starts, t1 = last close on or before its end).
- `beta_i`: OLS slope of the security's daily `return_1d` on the market index's
  `return_1d` (fct_index_levels_daily) over the index's last `beta_lookback_days` (250)
  return days up to and including t0, or as many as exist: that count is the
  regression's `beta_days_used`, and a note says when it is short of the target. A
  security needs `min_beta_days` paired days (both returns present) for a beta.
- `z_i`: log of `pe_ttm` at t0 (fct_valuation_multiples_daily, positive only),
  z-scored (mean 0, sample std 1) over the securities in that regression.
- `is_ai_i`: dim_security.is_ai as 0/1.

Securities lacking any of these are excluded, counted in the regression's note and named
with the reason in the exposures frame. A regressor with no variation in the sample
(all AI, or a single P/E) is dropped with a note; with n <= parameters the regression
returns null coefficients and a note instead of failing. Standard errors are classical
OLS: sqrt(diag(s^2 (X'X)^-1)), s^2 = RSS / (n - k).

The basket split turns the regression into an attribution of a basket's cap-weighted
return (weights = market_cap_usd at t0 over the members used, membership valid at t1 as
in the roll-up): market = sum w_i (a + b beta_i) (the intercept is the return common to
every security of the market, so it belongs to the market part), valuation =
sum w_i c z_i, ai_theme = sum w_i d is_ai_i, idiosyncratic = the rest (= sum w_i e_i).
The four add up to the basket's cap-weighted local log return by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from selloff.analytics.baskets import normalize_basket_members, valid_on
from selloff.analytics.factor_exposures import (
    BETA_LOOKBACK_DAYS,
    EXCLUDE_NO_BETA,
    EXCLUDE_NO_FIT,
    EXCLUDE_NO_PE,
    EXCLUDE_NO_RETURN,
    EXPOSURES_SCHEMA,
    MIN_BETA_DAYS,
    REGRESSORS,
    TERMS,
    factor_exposures,
    with_market_proxies,
)
from selloff.analytics.tables import (
    ALL_MARKETS,
    BASKET_FACTOR_SPLIT_SCHEMA,
    FACTOR_ATTRIBUTION_SCHEMA,
    SPLIT_COMPONENTS,
    conform,
    empty,
    require_columns,
)


@dataclass(frozen=True)
class FactorResult:
    """`exposures` (one row per window, market, security: the regression inputs and
    why a security was left out), `attribution` (analytics factor_attribution) and
    `basket_split` (analytics basket_factor_split)."""

    exposures: pl.DataFrame
    attribution: pl.DataFrame
    basket_split: pl.DataFrame


# --------------------------------------------------------------------------- regression


@dataclass(frozen=True)
class OLSFit:
    """One regression: coefficient, std error, t by term (None when not estimated)."""

    terms: tuple[str, ...]
    coefficient: dict[str, float | None]
    std_error: dict[str, float | None]
    t_stat: dict[str, float | None]
    r2: float | None
    n: int
    notes: tuple[str, ...]


def ols(y: np.ndarray, columns: Mapping[str, np.ndarray], *, all_terms: tuple[str, ...] = TERMS
        ) -> OLSFit:
    """OLS of y on an intercept and `columns` (name -> values), via `np.linalg.lstsq`.

    A column with no variation is dropped (noted); with n <= number of parameters or a
    rank-deficient design every coefficient is None. Terms of `all_terms` not estimated
    come back as None so each regression always reports the same terms.
    """
    n = int(y.shape[0])
    notes: list[str] = []
    none: dict[str, float | None] = {t: None for t in all_terms}
    k_full = 1 + len(columns)
    if n <= k_full:
        # Checked before dropping constant columns: with so few securities every column
        # looks constant, and "no variation" notes would hide the real reason.
        notes.append(f"too few securities: n={n} <= {k_full} parameters, no estimate")
        return OLSFit(("intercept", *columns), dict(none), dict(none), dict(none), None, n,
                      tuple(notes))
    names = ["intercept"]
    cols = [np.ones(n)]
    for name, values in columns.items():
        v = np.asarray(values, dtype=float)
        if n == 0 or np.ptp(v) == 0.0:
            notes.append(f"{name} dropped: no variation")
            continue
        names.append(name)
        cols.append(v)
    k = len(names)
    if n <= k:
        notes.append(f"too few securities: n={n} <= {k} parameters, no estimate")
        return OLSFit(tuple(names), dict(none), dict(none), dict(none), None, n, tuple(notes))
    x = np.column_stack(cols)
    coef, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    if rank < k:
        notes.append(f"collinear regressors (rank {rank} < {k}), no estimate")
        return OLSFit(tuple(names), dict(none), dict(none), dict(none), None, n, tuple(notes))
    resid = y - x @ coef
    rss = float(resid @ resid)
    s2 = rss / (n - k)
    se = np.sqrt(np.diag(s2 * np.linalg.inv(x.T @ x)))
    tss = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - rss / tss if tss > 0 else None
    c, s, t = dict(none), dict(none), dict(none)
    for i, name in enumerate(names):
        c[name] = float(coef[i])
        s[name] = float(se[i])
        t[name] = float(coef[i] / se[i]) if se[i] > 0 else None
    return OLSFit(tuple(names), c, s, t, r2, n, tuple(notes))


def factor_attribution(
    exposures: pl.DataFrame,
    lookbacks: pl.DataFrame,
    *,
    beta_lookback_days: int = BETA_LOOKBACK_DAYS,
    min_beta_days: int = MIN_BETA_DAYS,
) -> pl.DataFrame:
    """One regression per (window_id, market) of `exposures`; four rows each (TERMS).

    Output: analytics factor_attribution (FACTOR_ATTRIBUTION_SCHEMA). `n` counts the
    securities in the regression, `r2` and `note` repeat on each term row.
    """
    require_columns(exposures, "factor exposures", tuple(EXPOSURES_SCHEMA))
    if exposures.height == 0:
        return empty(FACTOR_ATTRIBUTION_SCHEMA)
    look = {
        (r["window_id"], r["market"]): r
        for r in lookbacks.iter_rows(named=True)
    }
    excluded_counts = (
        exposures.filter(~pl.col("in_regression"))
        .group_by("window_id", "market", "exclusion")
        .len()
    )
    excl: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for w, m, reason, count in excluded_counts.sort("exclusion").iter_rows():
        excl.setdefault((w, m), []).append((reason, count))

    rows: list[dict] = []
    groups = exposures.partition_by("window_id", "market", as_dict=True, maintain_order=True)
    for (window_id, market), g in groups.items():
        lb = look.get((window_id, market), {})
        beta_used = bool(lb.get("beta_used", False))
        days = int(lb.get("beta_days_used") or 0)
        notes: list[str] = []
        index_id = lb.get("index_id")
        if index_id is None:
            notes.append(f"beta dropped: no market index mapped for {market}")
        elif days == 0:
            notes.append(f"beta dropped: no returns of {index_id} up to t0 in the index levels")
        elif not beta_used:
            notes.append(f"beta dropped: {days} return days of {index_id} up to t0 "
                         f"(< {min_beta_days})")
        elif days < beta_lookback_days:
            notes.append(f"beta over {days} of {beta_lookback_days} trading days of "
                         f"{index_id} before t0 (all available)")
        for reason, count in excl.get((window_id, market), []):
            label = {
                EXCLUDE_NO_RETURN: "no price at t0 or t1",
                EXCLUDE_NO_PE: "P/E missing or <= 0",
                EXCLUDE_NO_BETA: f"beta missing (< {min_beta_days} paired days)",
            }.get(reason, reason)
            notes.append(f"{label} for {count} securities: excluded")
        s = g.filter(pl.col("in_regression"))
        y = s["log_return"].to_numpy()
        cols: dict[str, np.ndarray] = {}
        if beta_used:
            cols["beta"] = s["beta"].to_numpy()
        cols["log_pe_z"] = s["log_pe_z"].to_numpy()
        cols["is_ai"] = s["is_ai"].cast(pl.Float64).to_numpy()
        fit = ols(y, cols)
        notes.extend(fit.notes)
        note = "; ".join(notes) if notes else None
        t0, t1 = g["t0_date"][0], g["t1_date"][0]
        for term in TERMS:
            rows.append({
                "window_id": window_id, "market": market, "index_id": index_id,
                "t0_date": t0, "t1_date": t1, "term": term,
                "coefficient": fit.coefficient[term], "std_error": fit.std_error[term],
                "t_stat": fit.t_stat[term], "r2": fit.r2, "n": fit.n,
                "beta_days_used": days, "note": note,
            })
    return pl.DataFrame(rows, schema=FACTOR_ATTRIBUTION_SCHEMA).sort(
        "window_id", "market", pl.col("term").replace_strict(
            {t: i for i, t in enumerate(TERMS)}, return_dtype=pl.Int64)
    )


# --------------------------------------------------------------------------- baskets


def basket_factor_split(
    exposures: pl.DataFrame,
    attribution: pl.DataFrame,
    basket_members: pl.DataFrame,
) -> pl.DataFrame:
    """Split each basket's cap-weighted local log return per window into market,
    valuation, AI-theme and idiosyncratic parts (module docstring).

    Inputs: `exposures` and `attribution` from this module, `basket_members`
    (dim_basket_member). Members used: in their market's regression, the regression
    estimated, and a USD market cap at t0. `cap_coverage` = their share of the t0 USD
    market cap of the members that have one; `n_members` counts the members valid at t1
    in markets the window covers. A basket spanning markets uses each member's own
    market's coefficients; its `market` is then 'ALL'.
    """
    require_columns(exposures, "factor exposures", tuple(EXPOSURES_SCHEMA))
    require_columns(attribution, "factor_attribution", ("window_id", "market", "term", "coefficient"))
    if exposures.height == 0 or basket_members.height == 0:
        return empty(BASKET_FACTOR_SPLIT_SCHEMA)
    coefs = (
        attribution.group_by("window_id", "market")
        .agg(
            *[pl.col("coefficient").filter(pl.col("term") == t).first().alias(f"c_{t}")
              for t in TERMS]
        )
        # The intercept is null only when the regression was not estimated; a dropped
        # regressor contributes nothing (its exposure is constant, absorbed by the intercept).
        .with_columns(
            pl.col("c_intercept").is_not_null().alias("fitted"),
            *[pl.col(f"c_{t}").fill_null(0.0) for t in REGRESSORS],
        )
    )
    members = normalize_basket_members(basket_members)
    m = (
        exposures.lazy()
        .join(members, on="security_id", how="inner")
        .filter(valid_on("t1_date"))
        .join(coefs.lazy(), on=["window_id", "market"], how="left")
        .with_columns(pl.col("fitted").fill_null(False))
        .with_columns(
            (pl.col("in_regression") & pl.col("fitted")
             & pl.col("market_cap_usd_t0").is_not_null()).alias("used"),
            pl.when(~pl.col("in_regression"))
            .then(pl.col("exclusion"))
            .when(~pl.col("fitted"))
            .then(pl.lit(EXCLUDE_NO_FIT))
            .when(pl.col("market_cap_usd_t0").is_null())
            .then(pl.lit("no USD market cap at t0"))
            .otherwise(None)
            .alias("why"),
        )
        .with_columns(
            pl.when(pl.col("used"))
            .then(pl.col("market_cap_usd_t0") / pl.col("market_cap_usd_t0").filter(pl.col("used")).sum())
            .otherwise(0.0)
            .over("window_id", "basket_id")
            .alias("w"),
        )
        .with_columns(
            pl.when(pl.col("used")).then(pl.col(c)).otherwise(0.0).alias(c)
            for c in ("log_return", "beta", "log_pe_z")
        )
        .with_columns(
            (pl.col("w") * pl.col("log_return")).alias("_r"),
            (pl.col("w") * (pl.col("c_intercept").fill_null(0.0)
                            + pl.col("c_beta") * pl.col("beta").fill_null(0.0))).alias("_m"),
            (pl.col("w") * pl.col("c_log_pe_z") * pl.col("log_pe_z").fill_null(0.0)).alias("_v"),
            (pl.col("w") * pl.col("c_is_ai") * pl.col("is_ai").cast(pl.Float64)).alias("_a"),
        )
        .collect()
    )
    reasons = (
        m.filter(pl.col("why").is_not_null())
        .group_by("window_id", "basket_id", "why")
        .len()
        .sort("why")
        .group_by("window_id", "basket_id")
        .agg(pl.format("{} ({})", "why", "len").str.join(", ").alias("_why"))
    )
    out = (
        m.group_by("window_id", "basket_id")
        .agg(
            pl.col("market").unique().sort().alias("_markets"),
            pl.len().cast(pl.Int64).alias("n_members"),
            pl.col("used").sum().cast(pl.Int64).alias("n_used"),
            pl.col("market_cap_usd_t0").filter(pl.col("used")).sum().alias("_cap_used"),
            pl.col("market_cap_usd_t0").sum().alias("_cap_all"),
            pl.col("_r").sum().alias("basket_return"),
            pl.col("_m").sum().alias("market_part"),
            pl.col("_v").sum().alias("valuation_part"),
            pl.col("_a").sum().alias("ai_theme_part"),
        )
        .join(reasons, on=["window_id", "basket_id"], how="left")
        .with_columns(
            pl.when(pl.col("_markets").list.len() == 1)
            .then(pl.col("_markets").list.first())
            .otherwise(pl.lit(ALL_MARKETS))
            .alias("market"),
            pl.when(pl.col("_cap_all") > 0)
            .then(pl.col("_cap_used") / pl.col("_cap_all"))
            .otherwise(None)
            .alias("cap_coverage"),
            # The residual part is what the fitted parts leave of the basket return, so
            # the four add up to it exactly (it equals sum w_i e_i up to rounding).
            (pl.col("basket_return") - pl.col("market_part") - pl.col("valuation_part")
             - pl.col("ai_theme_part")).alias("idiosyncratic_part"),
        )
    )
    none_used = pl.col("n_used") == 0
    out = out.with_columns(
        *[pl.when(none_used).then(None).otherwise(pl.col(c)).alias(c)
          for c in ("basket_return", *SPLIT_COMPONENTS)],
        pl.concat_str(
            pl.lit("intercept in market_part"),
            pl.when(pl.col("_why").is_not_null())
            .then(pl.format("; {} of {} members excluded: {}",
                            pl.col("n_members") - pl.col("n_used"), "n_members", "_why"))
            .otherwise(pl.lit("")),
        ).alias("note"),
    )
    return conform(out, BASKET_FACTOR_SPLIT_SCHEMA).sort("window_id", "basket_id")


# --------------------------------------------------------------------------- all at once


def compute_factors(
    windows: pl.DataFrame,
    market_cap: pl.DataFrame,
    index_levels: pl.DataFrame | None,
    valuation: pl.DataFrame | None,
    securities: pl.DataFrame,
    basket_members: pl.DataFrame | None = None,
    *,
    market_index: Mapping[str, str] | None = None,
    beta_lookback_days: int = BETA_LOOKBACK_DAYS,
    min_beta_days: int = MIN_BETA_DAYS,
    return_column: str = "close",
    trading_days: pl.DataFrame | None = None,
    sums_cache: dict | None = None,
) -> FactorResult:
    """Exposures, regressions and basket split in one call.

    Inputs: `windows` (selloff_windows), `market_cap` (fct_market_cap_daily: security_id,
    trade_date, close, market_cap_local, market_cap_usd, return_1d), `index_levels`
    (fct_index_levels_daily: index_id, trade_date, return_1d; None = no beta term),
    `valuation` (fct_valuation_multiples_daily: security_id, trade_date, pe_ttm; None =
    every security lacks a P/E, so every regression reports too few securities),
    `securities` (dim_security: security_id, market, is_ai), `basket_members`
    (dim_basket_member; None = empty split). `market_index` maps market -> index_id
    (default DEFAULT_MARKET_INDEX). A market whose index has no returns in
    `index_levels` gets a proxy instead, `<MARKET>:MKT_CAPW` (`market_proxy_levels`), so
    its beta term is not lost; the regression note names the index used. `sums_cache`
    (a dict, empty at first) lets calls on the same `market_cap` and `index_levels`
    (each episode of one run) share the betas' running sums.
    """
    index_levels, market_index = with_market_proxies(index_levels, market_cap, market_index)
    exposures, lookbacks = factor_exposures(
        windows, market_cap, index_levels, valuation, securities,
        market_index=market_index, beta_lookback_days=beta_lookback_days,
        min_beta_days=min_beta_days, return_column=return_column, trading_days=trading_days,
        sums_cache=sums_cache,
    )
    attribution = factor_attribution(exposures, lookbacks, beta_lookback_days=beta_lookback_days,
                                     min_beta_days=min_beta_days)
    split = (
        basket_factor_split(exposures, attribution, basket_members)
        if basket_members is not None
        else empty(BASKET_FACTOR_SPLIT_SCHEMA)
    )
    return FactorResult(exposures, attribution, split)
