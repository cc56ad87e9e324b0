"""Exposures of the factor model (selloff.analytics.factors): each security's window
return, its beta on the market index over the pre-window lookback, and its P/E at t0; and
the cap-weighted proxy index of a market whose index has no levels. See factors.py for the
model these feed.

Over 400 lines because the beta estimation (lookbacks, running sums, the batched solve) is
one piece whose helpers share the same intermediate frames; split further, each part
would only be read together with the others."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import polars as pl

from selloff.analytics.tables import (
    conform,
    empty,
    require_columns,
)
from selloff.analytics.windows import data_trading_days, window_bounds
from selloff.markets import REGISTRY, market_of_expr

DEFAULT_MARKET_INDEX: dict[str, str] = {m.code: m.default_index for m in REGISTRY}
TERMS: tuple[str, ...] = ("intercept", "beta", "log_pe_z", "is_ai")
REGRESSORS: tuple[str, ...] = TERMS[1:]
BETA_LOOKBACK_DAYS = 250
MIN_BETA_DAYS = 20
RETURN_COLUMNS = ("close", "market_cap_local")

EXPOSURES_SCHEMA: dict[str, pl.DataType] = {
    "window_id": pl.Utf8(),
    "market": pl.Utf8(),
    "security_id": pl.Utf8(),
    "t0_date": pl.Date(),
    "t1_date": pl.Date(),
    "log_return": pl.Float64(),
    "beta": pl.Float64(),
    "beta_days": pl.Int64(),
    "pe_ttm": pl.Float64(),
    "log_pe_z": pl.Float64(),
    "is_ai": pl.Boolean(),
    "market_cap_usd_t0": pl.Float64(),
    "in_regression": pl.Boolean(),
    "exclusion": pl.Utf8(),
}




EXCLUDE_NO_RETURN = "no price at t0 or t1"
EXCLUDE_NO_PE = "P/E missing or <= 0 at t0"
EXCLUDE_NO_BETA = "beta: too few paired daily returns"
EXCLUDE_NO_FIT = "no regression for its market"

# Bounds on the exposures table: the ends of each window per market, with the return.
_ENDS_SCHEMA: dict[str, pl.DataType] = {
    "window_id": pl.Utf8(),
    "market": pl.Utf8(),
    "security_id": pl.Utf8(),
    "t0_date": pl.Date(),
    "t1_date": pl.Date(),
    "log_return": pl.Float64(),
    "market_cap_usd_t0": pl.Float64(),
}


# --------------------------------------------------------------------------- inputs


def _positive(column: str) -> pl.Expr:
    c = pl.col(column)
    return c.is_not_null() & c.is_not_nan() & (c > 0)


def _window_ends(
    windows: pl.DataFrame,
    market_cap: pl.DataFrame,
    trading_days: pl.DataFrame | None,
) -> pl.DataFrame:
    """(window_id, market, t0_date, t1_date) with a session inside the window."""
    days = trading_days if trading_days is not None else data_trading_days(market_cap)
    return window_bounds(windows, days).filter(
        pl.col("t0_date").is_not_null()
        & pl.col("t1_date").is_not_null()
        & (pl.col("t1_date") > pl.col("t0_date"))
    )


def security_window_returns(
    windows: pl.DataFrame,
    market_cap: pl.DataFrame,
    securities: pl.DataFrame,
    *,
    return_column: str = "close",
    trading_days: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Every security of every window's market with its local log return t0 -> t1.

    Inputs: `windows` (selloff_windows), `market_cap` (fct_market_cap_daily: security_id,
    trade_date, `return_column`, market_cap_usd), `securities` (dim_security:
    security_id, market). Output: window_id, market, security_id, t0_date, t1_date,
    log_return (null unless the value is positive at both ends), market_cap_usd_t0.
    Shared by the factor regression and the rotation tables so both use the same ends.
    """
    if return_column not in RETURN_COLUMNS:
        raise ValueError(f"return_column must be one of {RETURN_COLUMNS}, got {return_column!r}")
    require_columns(market_cap, "fct_market_cap_daily",
                    ("security_id", "trade_date", "close", return_column, "market_cap_usd"))
    require_columns(securities, "dim_security", ("security_id", "market"))
    bounds = _window_ends(windows, market_cap, trading_days)
    if bounds.height == 0:
        return empty(_ENDS_SCHEMA)
    values = market_cap.lazy().select(
        "security_id",
        "trade_date",
        pl.col(return_column).cast(pl.Float64).alias("v"),
        pl.col("market_cap_usd").cast(pl.Float64).alias("m"),
    )
    out = (
        securities.lazy()
        .select("security_id", "market")
        .unique(subset=["security_id"], keep="first")
        .join(bounds.lazy(), on="market", how="inner")
        .join(values.rename({"trade_date": "t0_date", "v": "v0", "m": "m0"}),
              on=["security_id", "t0_date"], how="left")
        .join(values.rename({"trade_date": "t1_date", "v": "v1", "m": "m1"}),
              on=["security_id", "t1_date"], how="left")
        .with_columns(
            pl.when(_positive("v0") & _positive("v1"))
            .then((pl.col("v1") / pl.col("v0")).log())
            .otherwise(None)
            .alias("log_return"),
            pl.when(_positive("m0")).then(pl.col("m0")).otherwise(None).alias("market_cap_usd_t0"),
        )
        .collect()
    )
    return conform(out, _ENDS_SCHEMA).sort("window_id", "market", "security_id")


def _lookbacks(
    ends: pl.DataFrame,
    index_levels: pl.DataFrame | None,
    market_index: Mapping[str, str],
    lookback_days: int,
) -> pl.DataFrame:
    """Per (window_id, market): index_id, the first day of the beta lookback and the
    number of index return days in it (up to `lookback_days`, ending at t0)."""
    wm = ends.select("window_id", "market", "t0_date").unique()
    mapping = pl.DataFrame(
        {"market": list(market_index), "index_id": list(market_index.values())},
        schema={"market": pl.Utf8(), "index_id": pl.Utf8()},
    )
    wm = wm.join(mapping, on="market", how="left")
    if index_levels is None or index_levels.height == 0:
        return wm.with_columns(
            pl.lit(None, pl.Date).alias("lookback_start"),
            pl.lit(0, pl.Int64).alias("beta_days_used"),
        )
    idx_days = (
        index_levels.lazy()
        .filter(pl.col("return_1d").is_not_null() & pl.col("return_1d").is_finite())
        .select("index_id", "trade_date")
    )
    found = (
        wm.lazy()
        .join(idx_days, on="index_id", how="inner")
        .filter(pl.col("trade_date") <= pl.col("t0_date"))
        .group_by("window_id", "market")
        .agg(pl.col("trade_date").sort(descending=True).head(lookback_days).alias("_days"))
        .select(
            "window_id",
            "market",
            pl.col("_days").list.min().alias("lookback_start"),
            pl.col("_days").list.len().cast(pl.Int64).alias("beta_days_used"),
        )
        .collect()
    )
    return wm.join(found, on=["window_id", "market"], how="left").with_columns(
        pl.col("beta_days_used").fill_null(0)
    )


def _running_sums(market_cap: pl.DataFrame, index_of: pl.DataFrame,
                  index_levels: pl.DataFrame, finite: pl.Expr,
                  sums: tuple[str, ...]) -> pl.DataFrame:
    """Each security's running n, sum x, sum y, sum xx, sum xy over its days paired with
    its market's index return (x) and its own (y), sorted by date (for as-of lookups)."""
    return (
        market_cap.lazy()
        .select(
            "security_id",
            market_of_expr("security_id", market_cap).alias("market"),
            "trade_date",
            pl.col("return_1d").cast(pl.Float64).alias("y"),
        )
        .join(index_of.lazy(), on="market", how="inner")
        .join(
            index_levels.lazy().select(
                "index_id", "trade_date", pl.col("return_1d").cast(pl.Float64).alias("x")
            ),
            on=["index_id", "trade_date"],
            how="inner",
        )
        .filter(finite)
        # No sort by security here: the running sums order each security's days
        # themselves (order_by), and the as-of lookups need the date order below.
        .with_columns(
            pl.lit(1.0).alias("n"),
            pl.col("x").alias("sx"),
            pl.col("y").alias("sy"),
            (pl.col("x") * pl.col("x")).alias("sxx"),
            (pl.col("x") * pl.col("y")).alias("sxy"),
        )
        .select(
            "security_id",
            "trade_date",
            *[pl.col(s).cum_sum().over("security_id", order_by="trade_date") for s in sums],
        )
        .sort("trade_date")
        .collect()
    )


def _betas(
    ends: pl.DataFrame,
    lookbacks: pl.DataFrame,
    market_cap: pl.DataFrame,
    index_levels: pl.DataFrame | None,
    min_days: int,
    sums_cache: dict | None = None,
) -> pl.DataFrame:
    """(window_id, security_id, beta, beta_days) over each window's lookback.

    `sums_cache` (optional) keeps the running sums between calls on the same
    `market_cap` and `index_levels` (one per episode in the factors asset): they are
    each security's own, over all its days, whichever windows ask, so the episodes
    sharing markets compute them once.

    Why sums and not one `lstsq` per (window, security): polars keeps running sums of
    x, y, xx, xy over each security's paired days in one pass, which turns every window's
    sums into two as-of lookups (at t0 and the day before the lookback starts), so the
    cost does not grow with windows x lookback days (the factors asset runs every day
    over the whole history). The regression itself is solved by numpy from those sums
    (`_slopes`), not by a hand-written formula.
    """
    schema = {"window_id": pl.Utf8(), "security_id": pl.Utf8(),
              "beta": pl.Float64(), "beta_days": pl.Int64()}
    if index_levels is None or index_levels.height == 0:
        return pl.DataFrame(schema=schema)
    require_columns(market_cap, "fct_market_cap_daily", ("security_id", "trade_date", "return_1d"))
    require_columns(index_levels, "fct_index_levels_daily", ("index_id", "trade_date", "return_1d"))
    finite = pl.col("y").is_not_null() & pl.col("y").is_finite() \
        & pl.col("x").is_not_null() & pl.col("x").is_finite()
    index_of = lookbacks.select("market", "index_id").unique().drop_nulls()
    sums = ("n", "sx", "sy", "sxx", "sxy")
    key = tuple(sorted(index_of.iter_rows()))
    paired = None if sums_cache is None else sums_cache.get(key)
    if paired is None:
        paired = _running_sums(market_cap, index_of, index_levels, finite, sums)
        if sums_cache is not None:
            sums_cache[key] = paired
    requests = (
        ends.select("window_id", "market", "security_id", "t0_date")
        .join(lookbacks.select("window_id", "market", "lookback_start"),
              on=["window_id", "market"], how="inner")
        .filter(pl.col("lookback_start").is_not_null())
        .with_columns((pl.col("lookback_start") - dt.timedelta(days=1)).alias("before_start"))
    )
    if requests.height == 0 or paired.height == 0:
        return pl.DataFrame(schema=schema)
    at_end = requests.sort("t0_date").join_asof(
        paired, left_on="t0_date", right_on="trade_date", by="security_id", strategy="backward",
        check_sortedness=False,  # both sides are sorted on the date just above
    )
    at_start = requests.sort("before_start").join_asof(
        paired.rename({s: f"{s}_0" for s in sums}),
        left_on="before_start", right_on="trade_date", by="security_id", strategy="backward",
        check_sortedness=False,
    ).select("window_id", "security_id", *[f"{s}_0" for s in sums])
    d = {s: pl.col(s).fill_null(0.0) - pl.col(f"{s}_0").fill_null(0.0) for s in sums}
    stats = at_end.join(at_start, on=["window_id", "security_id"], how="left").select(
        "window_id", "security_id", **d)
    out = stats.select(
        "window_id",
        "security_id",
        pl.Series("beta", _slopes(*(stats[s].to_numpy() for s in sums), min_days=min_days),
                  dtype=pl.Float64, nan_to_null=True),
        pl.col("n").round(0).cast(pl.Int64).alias("beta_days"),
    )
    return out.select(schema.keys()).cast(schema)  # type: ignore[arg-type]


def _slopes(n: np.ndarray, sx: np.ndarray, sy: np.ndarray, sxx: np.ndarray, sxy: np.ndarray,
            *, min_days: int) -> np.ndarray:
    """OLS slope of y on x and an intercept, one regression per element, from its sums
    (n, sum x, sum y, sum xx, sum xy): the normal equations [[n, sx], [sx, sxx]] (a, b) =
    (sy, sxy), solved by `np.linalg.solve` in one batch. NaN where there are fewer than
    `min_days` pairs or x does not vary (n sxx - sx^2 = n * sum (x - mean x)^2 <= 0)."""
    n, sx, sy, sxx, sxy = (np.asarray(v, dtype=float) for v in (n, sx, sy, sxx, sxy))
    ok = (n >= min_days) & (n * sxx - sx * sx > 0)
    normal = np.stack([np.stack([n, sx], axis=-1), np.stack([sx, sxx], axis=-1)], axis=-2)
    rhs = np.stack([sy, sxy], axis=-1)[..., None]
    beta = np.full(n.shape, np.nan)
    if ok.any():
        beta[ok] = np.linalg.solve(normal[ok], rhs[ok])[:, 1, 0]
    return beta


def factor_exposures(
    windows: pl.DataFrame,
    market_cap: pl.DataFrame,
    index_levels: pl.DataFrame | None,
    valuation: pl.DataFrame | None,
    securities: pl.DataFrame,
    *,
    market_index: Mapping[str, str] | None = None,
    beta_lookback_days: int = BETA_LOOKBACK_DAYS,
    min_beta_days: int = MIN_BETA_DAYS,
    return_column: str = "close",
    trading_days: pl.DataFrame | None = None,
    sums_cache: dict | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The regression inputs of every (window, market, security), and per (window,
    market) the lookback summary (index_id, lookback_start, beta_days_used, beta_used).

    `log_pe_z` is z-scored over the securities that enter the regression; `exclusion`
    names the first missing input of a security left out (null when it is in).
    `sums_cache`: see `_betas` (calls on the same `market_cap` and `index_levels` only).
    """
    market_index = dict(DEFAULT_MARKET_INDEX if market_index is None else market_index)
    require_columns(securities, "dim_security", ("security_id", "market", "is_ai"))
    ends = security_window_returns(windows, market_cap, securities,
                                   return_column=return_column, trading_days=trading_days)
    lookbacks = _lookbacks(ends, index_levels, market_index, beta_lookback_days)
    # Without enough index history the beta term is dropped for that regression rather
    # than excluding every security of the market.
    lookbacks = lookbacks.with_columns(
        (pl.col("beta_days_used") >= min_beta_days).alias("beta_used")
    )
    betas = _betas(ends, lookbacks, market_cap, index_levels, min_beta_days, sums_cache)

    if valuation is not None and valuation.height:
        require_columns(valuation, "fct_valuation_multiples_daily",
                        ("security_id", "trade_date", "pe_ttm"))
        pe = valuation.lazy().select(
            "security_id",
            pl.col("trade_date").alias("t0_date"),
            pl.col("pe_ttm").cast(pl.Float64),
        )
    else:
        pe = pl.LazyFrame(schema={"security_id": pl.Utf8(), "t0_date": pl.Date(),
                                  "pe_ttm": pl.Float64()})
    ai = securities.lazy().select(
        "security_id", pl.col("is_ai").cast(pl.Boolean).fill_null(False)
    ).unique(subset=["security_id"], keep="first")

    in_sample = (
        pl.col("log_return").is_not_null()
        & _positive("pe_ttm")
        & (~pl.col("beta_used") | pl.col("beta").is_not_null())
    )
    ex = (
        ends.lazy()
        .join(betas.lazy(), on=["window_id", "security_id"], how="left")
        .join(pe, on=["security_id", "t0_date"], how="left")
        .join(ai, on="security_id", how="left")
        .join(lookbacks.lazy().select("window_id", "market", "beta_used"),
              on=["window_id", "market"], how="left")
        .with_columns(
            pl.col("beta_used").fill_null(False),
            pl.when(_positive("pe_ttm")).then(pl.col("pe_ttm")).otherwise(None).alias("pe_ttm"),
        )
        .with_columns(
            in_sample.alias("in_regression"),
            pl.when(pl.col("log_return").is_null())
            .then(pl.lit(EXCLUDE_NO_RETURN))
            .when(~_positive("pe_ttm"))
            .then(pl.lit(EXCLUDE_NO_PE))
            .when(pl.col("beta_used") & pl.col("beta").is_null())
            .then(pl.lit(EXCLUDE_NO_BETA))
            .otherwise(None)
            .alias("exclusion"),
        )
        .with_columns(
            pl.when(pl.col("in_regression")).then(pl.col("pe_ttm").log()).alias("_lp")
        )
        .with_columns(
            ((pl.col("_lp") - pl.col("_lp").mean()) / pl.col("_lp").std(ddof=1))
            .over("window_id", "market")
            .alias("log_pe_z")
        )
        # A constant log P/E (or a single security) gives 0/0: there is no valuation
        # exposure to speak of, and the term is dropped from that regression.
        .with_columns(
            pl.when(pl.col("in_regression") & pl.col("log_pe_z").is_nan())
            .then(0.0)
            .otherwise(pl.col("log_pe_z"))
            .alias("log_pe_z")
        )
        .collect()
    )
    exposures = conform(ex, EXPOSURES_SCHEMA).sort("window_id", "market", "security_id")
    return exposures, lookbacks.sort("window_id", "market")


PROXY_SUFFIX = "MKT_CAPW"


def market_proxy_levels(market_cap: pl.DataFrame, markets: list[str]) -> pl.DataFrame:
    """Daily return of each market's cap-weighted portfolio of the securities in the data:
    weights are the previous day's USD market cap (index_id `<MARKET>:MKT_CAPW`).

    A stand-in for a market index the data lacks (the real snapshot has no S&P 500
    levels); it covers only the securities present, which the note of each regression
    shows by naming it.
    """
    schema = {"index_id": pl.Utf8(), "trade_date": pl.Date(), "return_1d": pl.Float64()}
    if not markets or market_cap.height == 0:
        return pl.DataFrame(schema=schema)
    weighted = (
        market_cap.lazy()
        .select("security_id", "trade_date", "return_1d", "market_cap_usd")
        .with_columns(market_of_expr("security_id").alias("market"))
        .filter(pl.col("market").is_in(markets))
        .sort("security_id", "trade_date")
        .with_columns(pl.col("market_cap_usd").shift(1).over("security_id").alias("w"))
        .filter(pl.col("return_1d").is_finite() & (pl.col("w") > 0))
        .group_by("market", "trade_date")
        .agg(((pl.col("return_1d") * pl.col("w")).sum() / pl.col("w").sum()).alias("return_1d"))
        .select((pl.col("market") + f":{PROXY_SUFFIX}").alias("index_id"), "trade_date",
                "return_1d")
        .sort("index_id", "trade_date")
        .collect()
    )
    return weighted.cast(schema)


def with_market_proxies(
    index_levels: pl.DataFrame | None,
    market_cap: pl.DataFrame,
    market_index: Mapping[str, str] | None,
) -> tuple[pl.DataFrame | None, dict[str, str]]:
    """Swap in `market_proxy_levels` for every market whose index has no returns."""
    mapping = dict(DEFAULT_MARKET_INDEX if market_index is None else market_index)
    have: set[str] = set()
    if index_levels is not None and index_levels.height:
        have = set(index_levels.filter(pl.col("return_1d").is_finite())["index_id"].unique())
    missing = sorted(m for m, idx in mapping.items() if idx not in have)
    if not missing or "market_cap_usd" not in market_cap.columns:
        return index_levels, mapping
    proxy = market_proxy_levels(market_cap, missing)
    present = set(proxy["index_id"].unique())
    for market in missing:
        if f"{market}:{PROXY_SUFFIX}" in present:
            mapping[market] = f"{market}:{PROXY_SUFFIX}"
    base = index_levels.select(proxy.columns).cast(dict(proxy.schema)) if index_levels is not None \
        and index_levels.height else proxy.clear()
    return pl.concat([base, proxy]), mapping
