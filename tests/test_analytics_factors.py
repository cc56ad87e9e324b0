"""Factor attribution (selloff.analytics.factors) on synthetic data with known coefficients."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selloff.analytics.factor_exposures import TERMS, _slopes
from selloff.analytics.factors import compute_factors, ols
from selloff.analytics.tables import (
    BASKET_FACTOR_SPLIT_SCHEMA,
    FACTOR_ATTRIBUTION_SCHEMA,
    SPLIT_COMPONENTS,
)

TRUE = {"intercept": -0.03, "beta": -0.05, "log_pe_z": -0.02, "is_ai": -0.04}
WINDOW_ID = "w1"


def _weekdays(start: dt.date, n: int) -> list[dt.date]:
    out, d = [], start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def _window(start: dt.date, end: dt.date, market: str = "US") -> pl.DataFrame:
    return pl.DataFrame(
        {"window_id": [WINDOW_ID], "market": [market], "kind": ["named"], "start_date": [start],
         "end_date": [end], "basis": ["config"], "entity_id": [None]},
        schema_overrides={"entity_id": pl.Utf8},
    )


def synthetic_market(
    n_sec: int = 300,
    n_pre_days: int = 300,
    seed: int = 7,
    noise: float = 0.002,
    pe_missing: int = 0,
    all_ai: bool = False,
) -> dict:
    """A US market: pre-window daily returns with true betas, then one window session
    whose return is `a + b*beta_hat + c*z + d*ai + noise`, built from the exposures the
    analysis will see (beta_hat over the last 250 index days, z of log P/E at t0)."""
    rng = np.random.default_rng(seed)
    days = _weekdays(dt.date(2024, 6, 3), n_pre_days + 1)
    pre, t1 = days[:-1], days[-1]
    t0 = pre[-1]
    x = rng.normal(0.0, 0.01, n_pre_days)
    x[0] = np.nan  # the first index day has no return
    true_beta = rng.uniform(0.4, 1.8, n_sec)
    y = true_beta[:, None] * np.nan_to_num(x)[None, :] + rng.normal(0, 0.01, (n_sec, n_pre_days))
    y[:, 0] = np.nan
    ids = [f"US:S{i:04d}" for i in range(n_sec)]
    is_ai = np.ones(n_sec, bool) if all_ai else rng.random(n_sec) < 0.3
    pe = np.exp(rng.normal(3.0, 0.5, n_sec))
    pe_valid = np.ones(n_sec, bool)
    pe_valid[:pe_missing] = False

    # The exposures exactly as specified: beta over the last 250 index return days <= t0.
    look = slice(max(1, n_pre_days - 250), n_pre_days)
    xs, ys = x[look], y[:, look]
    beta_hat = np.array([np.polyfit(xs, ys[i], 1)[0] for i in range(n_sec)])
    lp = np.log(pe[pe_valid])
    z = np.full(n_sec, np.nan)
    z[pe_valid] = (lp - lp.mean()) / lp.std(ddof=1) if lp.size > 1 else 0.0
    r = (TRUE["intercept"] + TRUE["beta"] * beta_hat + TRUE["log_pe_z"] * np.nan_to_num(z)
         + TRUE["is_ai"] * is_ai + rng.normal(0, noise, n_sec))

    close = 100.0 * np.exp(np.nancumsum(np.log1p(np.nan_to_num(y)), axis=1))
    close_t1 = close[:, -1] * np.exp(r)
    shares = rng.uniform(1e8, 5e9, n_sec)
    rows = []
    for i, sid in enumerate(ids):
        for j, d in enumerate(pre):
            rows.append((sid, d, close[i, j], y[i, j]))
        rows.append((sid, t1, close_t1[i], close_t1[i] / close[i, -1] - 1.0))
    mc = pl.DataFrame(rows, schema=["security_id", "trade_date", "close", "return_1d"],
                      orient="row")
    share_of = dict(zip(ids, shares, strict=True))
    mc = mc.with_columns(
        pl.lit("US").alias("market"),
        pl.col("security_id").replace_strict(share_of).alias("shares"),
    ).with_columns(
        (pl.col("close") * pl.col("shares")).alias("market_cap_local"),
        (pl.col("close") * pl.col("shares")).alias("market_cap_usd"),
        pl.col("return_1d").fill_nan(None),
    )
    idx = pl.DataFrame({"index_id": "US:SPX", "trade_date": pre + [t1],
                        "return_1d": list(x) + [0.001]}).with_columns(
        pl.col("return_1d").fill_nan(None))
    val = pl.DataFrame({"security_id": ids, "trade_date": [t0] * n_sec,
                        "pe_ttm": np.where(pe_valid, pe, -5.0)})
    sec = pl.DataFrame({"security_id": ids, "market": "US", "is_ai": is_ai,
                        "sector_group": np.where(is_ai, "ai_tech", "other")})
    return {
        "windows": _window(t1, t1), "market_cap": mc, "index_levels": idx, "valuation": val,
        "securities": sec, "ids": ids, "beta_hat": beta_hat, "z": z, "is_ai": is_ai, "r": r,
        "t0": t0, "t1": t1, "shares": shares, "close_t0": close[:, -1], "pe_valid": pe_valid,
    }


def _run(m: dict, baskets: pl.DataFrame | None = None, **kw):
    return compute_factors(m["windows"], m["market_cap"], m["index_levels"], m["valuation"],
                           m["securities"], baskets, **kw)


def _coef(att: pl.DataFrame, column: str = "coefficient") -> dict[str, float | None]:
    return dict(zip(att["term"].to_list(), att[column].to_list(), strict=True))


@pytest.fixture(scope="module")
def market() -> dict:
    return synthetic_market()


@pytest.fixture(scope="module")
def result(market: dict):
    baskets = pl.DataFrame({
        "basket_id": ["AI5"] * 5 + ["MIX"] * 40,
        "security_id": market["ids"][:5] + market["ids"][100:140],
        "valid_from": [None] * 45, "valid_to": [None] * 45,
    })
    return _run(market, baskets)


def test_schemas(result) -> None:
    assert dict(result.attribution.schema) == FACTOR_ATTRIBUTION_SCHEMA
    assert dict(result.basket_split.schema) == BASKET_FACTOR_SPLIT_SCHEMA
    assert result.attribution["term"].to_list() == list(TERMS)


def test_exposures_match_the_specification(market: dict, result) -> None:
    ex = result.exposures.sort("security_id")
    assert ex["t0_date"].unique().to_list() == [market["t0"]]
    assert ex["t1_date"].unique().to_list() == [market["t1"]]
    np.testing.assert_allclose(ex["beta"].to_numpy(), market["beta_hat"], rtol=1e-9)
    assert ex["beta_days"].unique().to_list() == [250]
    np.testing.assert_allclose(ex["log_pe_z"].to_numpy(), market["z"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ex["log_return"].to_numpy(), market["r"], rtol=1e-9, atol=1e-12)


def test_coefficients_equal_numpy_lstsq_and_recover_truth(result) -> None:
    ex = result.exposures.filter(pl.col("in_regression")).sort("security_id")
    x = np.column_stack([np.ones(ex.height), ex["beta"].to_numpy(), ex["log_pe_z"].to_numpy(),
                         ex["is_ai"].cast(pl.Float64).to_numpy()])
    y = ex["log_return"].to_numpy()
    expected, *_ = np.linalg.lstsq(x, y, rcond=None)
    att = result.attribution
    got = _coef(att)
    np.testing.assert_allclose([got[t] for t in TERMS], expected, rtol=1e-10, atol=1e-14)

    # Classical OLS standard errors, written out by hand.
    resid = y - x @ expected
    n, k = x.shape
    se = np.sqrt(np.diag(resid @ resid / (n - k) * np.linalg.inv(x.T @ x)))
    np.testing.assert_allclose([_coef(att, "std_error")[t] for t in TERMS], se, rtol=1e-9)
    np.testing.assert_allclose([_coef(att, "t_stat")[t] for t in TERMS], expected / se, rtol=1e-9)
    r2 = 1 - resid @ resid / ((y - y.mean()) @ (y - y.mean()))
    assert att["r2"].unique().to_list() == pytest.approx([r2])
    assert att["n"].unique().to_list() == [ex.height]
    assert att["beta_days_used"].unique().to_list() == [250]
    assert att["index_id"].unique().to_list() == ["US:SPX"]

    for t in TERMS:  # the true values lie within a few standard errors
        assert abs(got[t] - TRUE[t]) < 5 * _coef(att, "std_error")[t], t
        assert got[t] == pytest.approx(TRUE[t], abs=2e-3), t


def test_basket_split_adds_up_exactly(market: dict, result) -> None:
    split = result.basket_split
    assert split["basket_id"].to_list() == ["AI5", "MIX"]
    total = sum(split[c] for c in SPLIT_COMPONENTS)
    assert (total - split["basket_return"]).abs().max() < 1e-12

    # The basket return is the t0-cap-weighted local log return of its members.
    cap0 = market["close_t0"] * market["shares"]
    sel = slice(100, 140)
    w = cap0[sel] / cap0[sel].sum()
    mix = split.filter(pl.col("basket_id") == "MIX").row(0, named=True)
    assert mix["basket_return"] == pytest.approx(float(w @ market["r"][sel]), rel=1e-10)
    assert mix["n_members"] == 40 and mix["n_used"] == 40
    assert mix["cap_coverage"] == pytest.approx(1.0)
    assert "intercept in market_part" in mix["note"]

    # Each part is the weighted fitted term, the residual part the weighted residuals.
    c = _coef(result.attribution)
    ex = result.exposures.sort("security_id")[sel]
    beta, z, ai = ex["beta"].to_numpy(), ex["log_pe_z"].to_numpy(), ex["is_ai"].to_numpy()
    assert mix["market_part"] == pytest.approx(w @ (c["intercept"] + c["beta"] * beta), rel=1e-10)
    assert mix["valuation_part"] == pytest.approx(w @ (c["log_pe_z"] * z), rel=1e-10)
    assert mix["ai_theme_part"] == pytest.approx(w @ (c["is_ai"] * ai), rel=1e-10)
    fitted = c["intercept"] + c["beta"] * beta + c["log_pe_z"] * z + c["is_ai"] * ai
    resid = ex["log_return"].to_numpy() - fitted
    assert mix["idiosyncratic_part"] == pytest.approx(w @ resid, abs=1e-12)


def test_missing_pe_is_excluded_and_noted() -> None:
    m = synthetic_market(n_sec=60, pe_missing=7, seed=3)
    baskets = pl.DataFrame({"basket_id": ["B"] * 10, "security_id": m["ids"][:10]})
    res = _run(m, baskets)
    att = res.attribution
    assert att["n"][0] == 53
    assert "P/E missing or <= 0 for 7 securities: excluded" in att["note"][0]
    split = res.basket_split.row(0, named=True)
    assert (split["n_members"], split["n_used"]) == (10, 3)
    assert "7 of 10 members excluded" in split["note"]
    assert 0 < split["cap_coverage"] < 1
    assert sum(split[c] for c in SPLIT_COMPONENTS) == pytest.approx(split["basket_return"],
                                                                    abs=1e-12)


def test_no_variation_in_is_ai_drops_the_term() -> None:
    m = synthetic_market(n_sec=50, all_ai=True, seed=5)
    att = _run(m).attribution
    c = _coef(att)
    assert c["is_ai"] is None and c["beta"] is not None
    assert "is_ai dropped: no variation" in att["note"][0]


@pytest.mark.parametrize("n_sec", [1, 3, 4])
def test_too_few_securities_gives_null_coefficients(n_sec: int) -> None:
    m = synthetic_market(n_sec=n_sec, n_pre_days=60, seed=11)
    m["securities"] = m["securities"].with_columns(
        pl.Series("is_ai", [i % 2 == 0 for i in range(n_sec)]))
    res = _run(m, pl.DataFrame({"basket_id": ["B"] * n_sec, "security_id": m["ids"]}))
    att = res.attribution
    assert att.height == 4
    assert att["coefficient"].null_count() == 4 and att["std_error"].null_count() == 4
    assert "too few securities" in att["note"][0]
    split = res.basket_split.row(0, named=True)
    assert split["n_used"] == 0 and split["basket_return"] is None
    assert "no regression for its market" in split["note"]


def test_short_history_uses_all_available_days_and_says_so() -> None:
    m = synthetic_market(n_sec=40, n_pre_days=120, seed=2)
    att = _run(m).attribution
    # 120 index days, the first has no return.
    assert att["beta_days_used"].unique().to_list() == [119]
    assert "beta over 119 of 250 trading days of US:SPX before t0" in att["note"][0]
    assert att["coefficient"].null_count() == 0


def test_missing_index_is_replaced_by_the_cap_weighted_market() -> None:
    m = synthetic_market(n_sec=40, seed=4)
    att = compute_factors(m["windows"], m["market_cap"], None, m["valuation"],
                          m["securities"]).attribution
    c = _coef(att)
    assert c["beta"] is not None and att["n"][0] == 40
    assert set(att["index_id"]) == {"US:MKT_CAPW"}


def test_market_proxy_is_the_cap_weighted_mean_return() -> None:
    import datetime as dt

    from selloff.analytics.factor_exposures import market_proxy_levels

    d0, d1 = dt.date(2025, 11, 3), dt.date(2025, 11, 4)
    mc = pl.DataFrame({
        "security_id": ["US:A", "US:A", "US:B", "US:B", "CN:C.SH", "CN:C.SH"],
        "trade_date": [d0, d1, d0, d1, d0, d1],
        "return_1d": [None, 0.10, None, -0.05, None, 0.5],
        "market_cap_usd": [300.0, 330.0, 100.0, 95.0, 50.0, 75.0],
    })
    proxy = market_proxy_levels(mc, ["US"])
    assert proxy["index_id"].to_list() == ["US:MKT_CAPW"]
    assert proxy["return_1d"].item() == pytest.approx((0.10 * 300 - 0.05 * 100) / 400)


def test_no_index_and_no_usd_caps_drops_beta_without_excluding_securities() -> None:
    m = synthetic_market(n_sec=40, seed=4)
    # No USD caps on the day before any return: no proxy can be built either.
    caps = m["market_cap"].with_columns(pl.lit(None, pl.Float64).alias("market_cap_usd"))
    att = compute_factors(m["windows"], caps, None, m["valuation"], m["securities"]).attribution
    c = _coef(att)
    assert c["beta"] is None and c["log_pe_z"] is not None
    assert att["n"][0] == 40
    assert "beta dropped" in att["note"][0]


def test_market_cap_local_basis_and_custom_index_mapping() -> None:
    m = synthetic_market(n_sec=40, seed=9)
    m["index_levels"] = m["index_levels"].with_columns(pl.lit("US:NDX").alias("index_id"))
    att = _run(m, market_index={"US": "US:NDX"}, return_column="market_cap_local").attribution
    assert att["index_id"].unique().to_list() == ["US:NDX"]
    # Constant share counts: the local market-cap return is the price return.
    base = _run(synthetic_market(n_sec=40, seed=9)).attribution
    np.testing.assert_allclose(att["coefficient"].to_numpy(), base["coefficient"].to_numpy(),
                               rtol=1e-9)


def test_window_without_session_gives_no_rows() -> None:
    m = synthetic_market(n_sec=10, n_pre_days=40, seed=1)
    late = m["t1"] + dt.timedelta(days=30)
    res = compute_factors(_window(late, late), m["market_cap"], m["index_levels"],
                          m["valuation"], m["securities"])
    assert res.attribution.height == 0 and res.basket_split.height == 0


def test_ols_helper_matches_lstsq_on_random_design() -> None:
    rng = np.random.default_rng(0)
    cols = {"beta": rng.normal(size=30), "log_pe_z": rng.normal(size=30),
            "is_ai": (rng.random(30) < 0.5).astype(float)}
    y = rng.normal(size=30)
    fit = ols(y, cols)
    x = np.column_stack([np.ones(30), *cols.values()])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    np.testing.assert_allclose([fit.coefficient[t] for t in TERMS], coef, rtol=1e-12)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_sec=st.integers(6, 40), size=st.integers(1, 6),
       pe_missing=st.integers(0, 3))
def test_basket_split_adds_up_for_any_basket(seed: int, n_sec: int, size: int,
                                             pe_missing: int) -> None:
    m = synthetic_market(n_sec=n_sec, n_pre_days=40, seed=seed, noise=0.05,
                         pe_missing=pe_missing)
    rng = np.random.default_rng(seed)
    picks = rng.choice(n_sec, size=min(size, n_sec), replace=False)
    baskets = pl.DataFrame({"basket_id": "B", "security_id": [m["ids"][i] for i in picks]})
    split = _run(m, baskets).basket_split.row(0, named=True)
    if split["n_used"] == 0:
        assert split["basket_return"] is None
        return
    parts = sum(split[c] for c in SPLIT_COMPONENTS)
    assert abs(parts - split["basket_return"]) < 1e-12


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(2, 400),
       scale=st.sampled_from([1e-4, 1e-2, 1.0, 100.0]), drift=st.floats(-1.0, 1.0))
def test_beta_equals_numpy_polyfit_slope(seed: int, n: int, scale: float, drift: float) -> None:
    # Mean of x within one sd of 0, as for daily returns: normal equations from raw sums
    # lose digits as (mean x / sd x)^2 grows, which returns never come near.
    rng = np.random.default_rng(seed)
    x = scale * (drift + rng.normal(size=n))
    y = rng.uniform(-2, 2) * x + scale * (rng.normal(size=n) + rng.normal())
    beta = _slopes(np.array([n]), np.array([x.sum()]), np.array([y.sum()]),
                   np.array([x @ x]), np.array([x @ y]), min_days=2)[0]
    np.testing.assert_allclose(beta, np.polyfit(x, y, 1)[0], rtol=1e-9, atol=1e-12)


def test_beta_is_nan_without_enough_days_or_variation() -> None:
    x, y = np.array([0.5, 0.5, 0.5]), np.array([0.02, 0.00, 0.01])
    sums = [np.array([v]) for v in (3.0, x.sum(), y.sum(), x @ x, x @ y)]
    assert np.isnan(_slopes(*sums, min_days=2)[0])  # x constant
    x = np.array([0.5, 0.25, 0.5])
    sums = [np.array([v]) for v in (3.0, x.sum(), y.sum(), x @ x, x @ y)]
    assert _slopes(*sums, min_days=3)[0] == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-12)
    assert np.isnan(_slopes(*sums, min_days=4)[0])  # 3 < 4 days
    assert _slopes(*(np.array([]) for _ in range(5)), min_days=2).shape == (0,)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_pre_days=st.integers(25, 330))
def test_exposure_beta_equals_polyfit_over_the_lookback(seed: int, n_pre_days: int) -> None:
    # Histories longer than the 250-day lookback exercise the running sums' subtraction.
    m = synthetic_market(n_sec=8, n_pre_days=n_pre_days, seed=seed)
    ex = _run(m).exposures.sort("security_id")
    np.testing.assert_allclose(ex["beta"].to_numpy(), m["beta_hat"], rtol=1e-9)

