"""Decomposition maths (DESIGN §5): hand-computed cases, property tests, the frame API."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selloff.analytics import decompose, decompose_amounts
from selloff.analytics.tables import DECOMPOSITION_SCHEMA, EXCLUDED_SCHEMA
from selloff.markets import market_of

D = dt.date


def one(p0: float, p1: float, s0: float, s1: float, x0: float, x1: float,
        ni0: float | None = None, ni1: float | None = None) -> dict[str, float]:
    frame = pl.DataFrame(
        {
            "close_0": [p0], "close_1": [p1], "shares_0": [s0], "shares_1": [s1],
            "usd_per_unit_0": [x0], "usd_per_unit_1": [x1],
            "net_income_ttm_0": [ni0], "net_income_ttm_1": [ni1],
        },
        schema_overrides={"net_income_ttm_0": pl.Float64, "net_income_ttm_1": pl.Float64},
    )
    return decompose_amounts(frame).row(0, named=True)


def tol(row: dict[str, float]) -> float:
    return 1e-9 * max(1.0, abs(row["change_usd"]), abs(row["mcap_usd_start"]))


# --------------------------------------------------------------------------- level 1 by hand


def test_price_only_move_is_all_price() -> None:
    r = one(100, 80, 10, 10, 1, 1)
    assert r["mcap_usd_start"] == 1000 and r["mcap_usd_end"] == 800
    assert r["change_usd"] == pytest.approx(-200)
    assert r["price_usd"] == pytest.approx(-200, abs=1e-9)
    assert r["shares_usd"] == 0 and r["fx_usd"] == 0


def test_all_three_move() -> None:
    # M0 = 100*10*0.5 = 500, M1 = 110*12*0.4 = 528, L = ln(1.056) = 0.0544882;
    # c_k = 28 * a_k / L with a = ln 1.1, ln 1.2, ln 0.8.
    r = one(100, 110, 10, 12, 0.5, 0.4)
    assert r["change_usd"] == pytest.approx(28)
    assert r["price_usd"] == pytest.approx(48.977315, abs=1e-6)
    assert r["shares_usd"] == pytest.approx(93.690101, abs=1e-6)
    assert r["fx_usd"] == pytest.approx(-114.667417, abs=1e-6)
    assert r["price_usd"] + r["shares_usd"] + r["fx_usd"] == pytest.approx(28, abs=1e-9)


def test_no_change_gives_zeros() -> None:
    r = one(100, 100, 10, 10, 0.7, 0.7, 5, 5)
    assert [r[k] for k in ("change_usd", "price_usd", "shares_usd", "fx_usd",
                           "rerating_usd", "earnings_usd", "no_earnings_basis_usd")] == [0.0] * 7


def test_offsetting_moves_with_l_zero_are_all_zero() -> None:
    # Price halves, the currency doubles: L = ln 0.5 + ln 2 = 0 exactly, so by DESIGN §5
    # every component is zero (not +-M0 ln 2).
    r = one(100, 50, 10, 10, 1, 2, 5, 5)
    assert r["change_usd"] == 0
    assert r["price_usd"] == r["shares_usd"] == r["fx_usd"] == 0
    assert r["rerating_usd"] == r["earnings_usd"] == r["no_earnings_basis_usd"] == 0


def test_tiny_change_is_stable() -> None:
    # ln(M1/M0) ~ 1e-11: (M1 - M0) / L would divide rounding errors; the log mean doesn't.
    r = one(100, 100 * (1 + 1e-11), 1e9, 1e9, 1, 1)
    assert r["price_usd"] == pytest.approx(r["change_usd"], rel=1e-4)
    assert abs(r["price_usd"] - r["change_usd"]) <= tol(r)


# --------------------------------------------------------------------------- level 2 by hand


def test_loss_maker_goes_to_no_earnings_basis() -> None:
    r = one(100, 80, 10, 11, 1, 0.9, ni0=-5, ni1=10)
    local = r["price_usd"] + r["shares_usd"]
    assert r["no_earnings_basis_usd"] == pytest.approx(local, abs=1e-9)
    assert r["rerating_usd"] == 0 and r["earnings_usd"] == 0


def test_missing_net_income_goes_to_no_earnings_basis() -> None:
    r = one(100, 80, 10, 10, 1, 1, ni0=None, ni1=10)
    assert r["no_earnings_basis_usd"] == pytest.approx(-200)


def test_pure_rerating() -> None:
    # P*S 1000 -> 800, NI 50 -> 50: PE 20 -> 16, all of the -200 is re-rating.
    r = one(100, 80, 10, 10, 1, 1, ni0=50, ni1=50)
    assert r["rerating_usd"] == pytest.approx(-200)
    assert r["earnings_usd"] == 0 and r["no_earnings_basis_usd"] == 0


def test_pure_earnings() -> None:
    # NI 50 -> 40 with P*S 1000 -> 800: PE stays 20, the fall is all earnings.
    r = one(100, 80, 10, 10, 1, 1, ni0=50, ni1=40)
    assert r["earnings_usd"] == pytest.approx(-200)
    assert r["rerating_usd"] == pytest.approx(0, abs=1e-9)


def test_rerating_against_earnings_by_hand() -> None:
    # P 100 -> 80, NI doubles: PE 20 -> 8. a_local = ln 0.8, a_E = ln 2, a_R = ln 0.4.
    # rerating = -200 ln 0.4 / ln 0.8 = -821.2567, earnings = -200 ln 2 / ln 0.8 = 621.2567.
    r = one(100, 80, 10, 10, 1, 1, ni0=50, ni1=100)
    assert r["rerating_usd"] == pytest.approx(-821.256744, abs=1e-6)
    assert r["earnings_usd"] == pytest.approx(621.256744, abs=1e-6)
    assert r["rerating_usd"] + r["earnings_usd"] == pytest.approx(-200, abs=1e-9)


def test_level2_splits_local_part_only() -> None:
    # FX moves too: level 2 splits price + shares, fx stays outside it.
    r = one(100, 80, 10, 10, 1, 0.9, ni0=50, ni1=50)
    assert r["fx_usd"] < 0
    assert r["rerating_usd"] == pytest.approx(r["price_usd"], abs=1e-9)
    assert r["rerating_usd"] + r["earnings_usd"] + r["no_earnings_basis_usd"] == pytest.approx(
        r["price_usd"] + r["shares_usd"], abs=1e-9
    )


def test_rerating_offsets_earnings_when_local_flat() -> None:
    # P*S unchanged (a_R + a_E = 0) but FX moves; NI up 25 %, PE down 20 %.
    r = one(100, 100, 10, 10, 1, 0.9, ni0=40, ni1=50)
    assert r["price_usd"] == 0 and r["shares_usd"] == 0
    assert r["earnings_usd"] == pytest.approx(-r["rerating_usd"], abs=1e-9)
    assert r["earnings_usd"] > 0


# --------------------------------------------------------------------------- properties

positive = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)
shares = st.floats(min_value=1e3, max_value=1e11, allow_nan=False, allow_infinity=False)
fx = st.floats(min_value=1e-4, max_value=10.0, allow_nan=False, allow_infinity=False)
net_income = st.one_of(
    st.none(),
    st.floats(min_value=-1e11, max_value=1e11, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=300, deadline=None)
@given(positive, positive, shares, shares, fx, fx)
def test_level1_components_add_up(p0, p1, s0, s1, x0, x1) -> None:
    r = one(p0, p1, s0, s1, x0, x1)
    assert r["change_usd"] == pytest.approx(p1 * s1 * x1 - p0 * s0 * x0, rel=1e-12, abs=1e-6)
    assert abs(r["price_usd"] + r["shares_usd"] + r["fx_usd"] - r["change_usd"]) <= tol(r)


@settings(max_examples=300, deadline=None)
@given(positive, positive, shares, shares, fx, fx, net_income, net_income)
def test_level2_identity(p0, p1, s0, s1, x0, x1, ni0, ni1) -> None:
    r = one(p0, p1, s0, s1, x0, x1, ni0, ni1)
    local = r["price_usd"] + r["shares_usd"]
    total = r["rerating_usd"] + r["earnings_usd"] + r["no_earnings_basis_usd"]
    assert abs(total - local) <= tol(r)
    has_earnings = ni0 is not None and ni1 is not None and ni0 > 0 and ni1 > 0
    if not has_earnings:
        assert r["rerating_usd"] == 0 and r["earnings_usd"] == 0
    else:
        assert r["no_earnings_basis_usd"] == 0


@settings(max_examples=200, deadline=None)
@given(positive, positive, shares, fx)
def test_single_factor_takes_the_whole_change(p0, p1, s, x) -> None:
    r = one(p0, p1, s, s, x, x)
    assert r["shares_usd"] == 0 and r["fx_usd"] == 0
    assert abs(r["price_usd"] - r["change_usd"]) <= tol(r)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(positive, positive, shares, shares, fx, fx, net_income, net_income),
                min_size=1, max_size=50))
def test_identities_hold_row_by_row_in_a_batch(rows) -> None:
    cols = ["close_0", "close_1", "shares_0", "shares_1", "usd_per_unit_0", "usd_per_unit_1",
            "net_income_ttm_0", "net_income_ttm_1"]
    frame = pl.DataFrame(rows, schema={c: pl.Float64 for c in cols}, orient="row")
    out = decompose_amounts(frame)
    scale = np.maximum(1.0, np.maximum(out["change_usd"].abs().to_numpy(),
                                       out["mcap_usd_start"].to_numpy()))
    l1 = (out["price_usd"] + out["shares_usd"] + out["fx_usd"] - out["change_usd"]).abs()
    l2 = (out["rerating_usd"] + out["earnings_usd"] + out["no_earnings_basis_usd"]
          - out["price_usd"] - out["shares_usd"]).abs()
    assert (l1.to_numpy() <= 1e-9 * scale).all()
    assert (l2.to_numpy() <= 1e-9 * scale).all()


# --------------------------------------------------------------------------- frame API

US_DAYS = [D(2025, 11, 24), D(2025, 11, 25), D(2025, 11, 26), D(2025, 11, 28)]  # 27th: holiday
JP_DAYS = [D(2025, 11, 21), D(2025, 11, 25), D(2025, 11, 26), D(2025, 11, 27), D(2025, 11, 28)]


def _mcap_rows(security_id: str, days: list[dt.date], closes: list[float],
               shares: float | None, fx: float | None) -> list[dict]:
    return [
        {"security_id": security_id, "trade_date": d, "close": c, "shares": shares,
         "usd_per_unit": fx}
        for d, c in zip(days, closes, strict=True)
    ]


@pytest.fixture
def inputs() -> dict[str, pl.DataFrame]:
    rows = (
        _mcap_rows("US:AAA", US_DAYS, [100, 90, 95, 80], 10.0, 1.0)
        + _mcap_rows("US:NOSH", US_DAYS, [10, 10, 10, 10], None, 1.0)
        + _mcap_rows("US:GAP", US_DAYS[:2], [10, 11], 5.0, 1.0)        # no price at t1
        + _mcap_rows("JP:1111", JP_DAYS, [1000, 990, 980, 970, 900], 1e6, 0.0065)
        + _mcap_rows("JP:NOFX", JP_DAYS, [1000] * 5, 1e6, None)
    )
    market_cap = pl.DataFrame(rows, schema={"security_id": pl.Utf8, "trade_date": pl.Date,
                                            "close": pl.Float64, "shares": pl.Float64,
                                            "usd_per_unit": pl.Float64})
    valuation = pl.DataFrame(
        {"security_id": ["US:AAA"] * 2, "trade_date": [D(2025, 11, 26), D(2025, 11, 28)],
         "net_income_ttm": [50.0, 50.0]}
    )
    securities = pl.DataFrame(
        {"security_id": ["US:AAA", "US:NOSH", "US:GAP", "JP:1111", "JP:NOFX"],
         "market": ["US", "US", "US", "JP", "JP"]}
    )
    windows = pl.DataFrame(
        {
            "window_id": ["w"] * 2 + ["holiday"] * 2 + ["mixed"],
            "market": ["US", "JP", "US", "JP", "ALL"],
            "kind": "named",
            "start_date": [D(2025, 11, 27), D(2025, 11, 27), D(2025, 11, 27), D(2025, 11, 24),
                           D(2025, 11, 25)],
            "end_date": [D(2025, 11, 28), D(2025, 11, 28), D(2025, 11, 27), D(2025, 11, 24),
                         D(2025, 11, 28)],
            "basis": "config",
            "entity_id": None,
        },
        schema_overrides={"entity_id": pl.Utf8},
    )
    return {"market_cap": market_cap, "valuation": valuation, "securities": securities,
            "windows": windows}


def test_decompose_frame(inputs) -> None:
    res = decompose(inputs["windows"], inputs["market_cap"], inputs["valuation"],
                    inputs["securities"])
    assert res.frame.schema == pl.Schema(DECOMPOSITION_SCHEMA)
    assert res.excluded.schema == pl.Schema(EXCLUDED_SCHEMA)
    f = {(r["window_id"], r["security_id"]): r for r in res.frame.iter_rows(named=True)}

    # US: the 27th is Thanksgiving, so t0 = the 26th and t1 = the 28th.
    aaa = f[("w", "US:AAA")]
    assert (aaa["t0_date"], aaa["t1_date"]) == (D(2025, 11, 26), D(2025, 11, 28))
    assert aaa["change_usd"] == pytest.approx(-150)
    assert aaa["price_usd"] == pytest.approx(-150)
    assert aaa["rerating_usd"] == pytest.approx(-150)  # NI flat: all re-rating
    # JP trades on the 27th: t0 = the 26th, t1 = the 28th.
    jp = f[("w", "JP:1111")]
    assert (jp["t0_date"], jp["t1_date"]) == (D(2025, 11, 26), D(2025, 11, 28))
    assert jp["change_usd"] == pytest.approx((900 - 980) * 1e6 * 0.0065)
    assert jp["no_earnings_basis_usd"] == pytest.approx(jp["price_usd"])

    # A US window on a holiday only has no session: no rows; in JP 24 Nov is a holiday too.
    assert not any(k[0] == "holiday" for k in f)
    # market 'ALL' applies to every market with its own t0.
    assert f[("mixed", "US:AAA")]["t0_date"] == D(2025, 11, 24)
    assert f[("mixed", "JP:1111")]["t0_date"] == D(2025, 11, 21)

    reasons = {(r["window_id"], r["security_id"]): r["reason"]
               for r in res.excluded.iter_rows(named=True)}
    assert reasons[("w", "US:NOSH")] == "no share count"
    assert reasons[("w", "US:GAP")] == "no price"
    assert reasons[("w", "JP:NOFX")] == "no FX"
    assert res.exclusion_totals() == {"no FX": 2, "no price": 2, "no share count": 2}
    counts = res.exclusion_counts().filter(pl.col("window_id") == "w")
    assert counts["n_securities"].sum() == 3


def test_decompose_without_valuation(inputs) -> None:
    res = decompose(inputs["windows"], inputs["market_cap"], None, inputs["securities"])
    assert (res.frame["rerating_usd"] == 0).all()
    assert (res.frame["no_earnings_basis_usd"]
            - res.frame["price_usd"] - res.frame["shares_usd"]).abs().max() < 1e-9


def test_decompose_with_calendar_trading_days(inputs) -> None:
    # A calendar without 26 Nov for JP moves t0 of a window starting on the 27th to the 25th.
    days = pl.DataFrame({"market": ["JP"] * 4,
                         "trade_date": [D(2025, 11, 21), D(2025, 11, 25), D(2025, 11, 27),
                                        D(2025, 11, 28)]})
    res = decompose(inputs["windows"], inputs["market_cap"], None, inputs["securities"],
                    trading_days=days)
    row = res.frame.filter(pl.col("window_id") == "w", pl.col("security_id") == "JP:1111")
    assert row["t0_date"].item() == D(2025, 11, 25)
    assert row["change_usd"].item() == pytest.approx((900 - 990) * 1e6 * 0.0065)
    assert res.frame.filter(pl.col("market") == "US").height == 0


def test_duplicate_market_cap_rows_are_rejected(inputs) -> None:
    mc = pl.concat([inputs["market_cap"], inputs["market_cap"].head(1)])
    with pytest.raises(ValueError, match="fct_market_cap_daily"):
        decompose(inputs["windows"], mc, None, inputs["securities"])


def test_missing_column_is_named(inputs) -> None:
    with pytest.raises(ValueError, match="usd_per_unit"):
        decompose(inputs["windows"], inputs["market_cap"].drop("usd_per_unit"), None,
                  inputs["securities"])


def test_5000_securities_100_windows_add_up() -> None:
    rng = np.random.default_rng(7)
    n_sec = 5000
    days = pl.date_range(D(2025, 7, 1), D(2025, 12, 31), "1d", eager=True)
    days = days.filter(days.dt.weekday() <= 5)
    ids = [f"{('US', 'CN', 'KR', 'JP')[i % 4]}:{i:05d}" for i in range(n_sec)]
    n = len(days)
    market_cap = pl.DataFrame(
        {
            "security_id": np.repeat(ids, n),
            "trade_date": pl.Series(np.tile(days.to_numpy(), n_sec)).cast(pl.Date),
            "close": np.exp(rng.normal(0, 0.02, n * n_sec).cumsum() % 3) * 50,
            "shares": np.repeat(rng.uniform(1e6, 1e9, n_sec), n),
            "usd_per_unit": rng.uniform(0.001, 1.0, n * n_sec),
        }
    )
    valuation = market_cap.select(
        "security_id", "trade_date",
        pl.Series("net_income_ttm", rng.normal(1e7, 1e7, n * n_sec)),
    )
    securities = pl.DataFrame({"security_id": ids, "market": [market_of(i) for i in ids]})
    starts = rng.integers(10, n - 20, 100)
    windows = pl.DataFrame(
        {
            "window_id": [f"w{i}" for i in range(100)],
            "market": "ALL",
            "kind": "named",
            "start_date": [days[int(s)] for s in starts],
            "end_date": [days[int(s) + int(rng.integers(0, 15))] for s in starts],
            "basis": "config",
            "entity_id": None,
        },
        schema_overrides={"entity_id": pl.Utf8},
    )
    res = decompose(windows, market_cap, valuation, securities)
    assert res.frame.height == 100 * n_sec
    err = (res.frame["price_usd"] + res.frame["shares_usd"] + res.frame["fx_usd"]
           - res.frame["change_usd"]).abs() / res.frame["mcap_usd_start"]
    assert err.max() < 1e-9
    assert math.isfinite(res.frame["rerating_usd"].sum())
