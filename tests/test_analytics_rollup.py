"""Roll-up by group and the reconciliation check."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selloff.analytics import decompose_amounts, reconcile, rollup
from selloff.analytics.tables import AMOUNT_COLUMNS, DECOMPOSITION_SCHEMA, ROLLUP_SCHEMA
from selloff.markets import market_of

D = dt.date
T0, T1 = D(2025, 11, 21), D(2025, 11, 28)


def decomposition(rows: list[dict]) -> pl.DataFrame:
    """Decomposition rows from end values, through the real maths."""
    frame = pl.DataFrame(
        rows,
        schema={"window_id": pl.Utf8, "security_id": pl.Utf8, "market": pl.Utf8,
                "t0_date": pl.Date, "t1_date": pl.Date,
                "close_0": pl.Float64, "close_1": pl.Float64, "shares_0": pl.Float64,
                "shares_1": pl.Float64, "usd_per_unit_0": pl.Float64,
                "usd_per_unit_1": pl.Float64, "net_income_ttm_0": pl.Float64,
                "net_income_ttm_1": pl.Float64},
    )
    return decompose_amounts(frame).select(list(DECOMPOSITION_SCHEMA))


def row(window: str, sid: str, p0: float, p1: float, s0: float = 10, s1: float = 10,
        x0: float = 1, x1: float = 1, ni0: float | None = 5, ni1: float | None = 5,
        t1: dt.date = T1) -> dict:
    return {"window_id": window, "security_id": sid, "market": market_of(sid),
            "t0_date": T0, "t1_date": t1, "close_0": p0, "close_1": p1, "shares_0": s0,
            "shares_1": s1, "usd_per_unit_0": x0, "usd_per_unit_1": x1,
            "net_income_ttm_0": ni0, "net_income_ttm_1": ni1}


SECURITIES = pl.DataFrame({
    "security_id": ["US:NVDA", "US:KO", "KR:005930", "KR:000660"],
    "sector": ["Information Technology", "Consumer Staples", "Information Technology", None],
    "sector_group": ["ai_tech", "consumer", "ai_tech", "ai_tech"],
    "is_ai": [True, False, True, True],
})
MEMBERS = pl.DataFrame(
    {
        "basket_id": ["AI", "AI", "AI", "AI", "DIV"],
        "security_id": ["US:NVDA", "KR:005930", "KR:000660", "US:KO", "US:KO"],
        "valid_from": [None, None, D(2025, 12, 1), None, None],  # 000660 joins after t1
        "valid_to": [None, None, None, D(2025, 11, 27), None],   # KO left before t1
    },
    schema_overrides={"valid_from": pl.Date, "valid_to": pl.Date},
)


@pytest.fixture
def decomp() -> pl.DataFrame:
    return decomposition([
        row("w", "US:NVDA", 100, 80, ni0=5, ni1=6),            # -200
        row("w", "US:KO", 50, 55, ni0=-1, ni1=2),               # +50
        row("w", "KR:005930", 10, 9, x0=0.001, x1=0.0009),      # -0.019
        row("w", "KR:000660", 20, 20),                          # 0
        row("flat", "US:KO", 50, 50),                           # total change 0
    ])


def test_rollup_groups(decomp: pl.DataFrame) -> None:
    r = rollup(decomp, SECURITIES, MEMBERS)
    assert r.schema == pl.Schema(ROLLUP_SCHEMA)
    assert r.select("window_id", "group_kind", "group_id").is_unique().all()
    g = {(x["window_id"], x["group_kind"], x["group_id"]): x for x in r.iter_rows(named=True)}

    total = g[("w", "total", "ALL")]
    assert total["n_securities"] == 4
    assert total["change_usd"] == pytest.approx(-200 + 50 - 0.019)
    assert total["share_of_total"] == pytest.approx(1.0)
    assert g[("w", "market", "US")]["change_usd"] == pytest.approx(-150)
    assert g[("w", "market", "KR")]["n_securities"] == 2
    assert g[("w", "is_ai", "true")]["n_securities"] == 3
    assert g[("w", "is_ai", "false")]["change_usd"] == pytest.approx(50)
    assert g[("w", "sector", "unknown")]["n_securities"] == 1
    assert g[("w", "sector_group", "ai_tech")]["n_securities"] == 3
    # Basket membership at t1: NVDA and 005930 (000660 joins later, KO has left).
    ai = g[("w", "basket", "AI")]
    assert ai["n_securities"] == 2
    assert ai["change_usd"] == pytest.approx(-200.019)
    assert ai["share_of_total"] == pytest.approx(-200.019 / (-150.019))
    assert g[("w", "basket", "DIV")]["n_securities"] == 1
    # Amount columns add up within a group.
    us = g[("w", "market", "US")]
    assert us["rerating_usd"] + us["earnings_usd"] + us["no_earnings_basis_usd"] == pytest.approx(
        us["price_usd"] + us["shares_usd"])
    assert us["no_earnings_basis_usd"] == pytest.approx(50)  # KO had a loss at t0
    # A window whose total change is 0 has no shares of it.
    assert g[("flat", "total", "ALL")]["share_of_total"] is None

    assert reconcile(decomp, r, MEMBERS).ok


def test_rollup_without_baskets_and_empty(decomp: pl.DataFrame) -> None:
    r = rollup(decomp, SECURITIES, None)
    assert "basket" not in set(r["group_kind"])
    empty = rollup(decomp.clear(), SECURITIES, MEMBERS)
    assert empty.height == 0 and empty.schema == pl.Schema(ROLLUP_SCHEMA)
    res = reconcile(decomp.clear(), empty, MEMBERS)
    assert res.ok and res.metrics["n_security_rows"] == 0


def test_reconcile_metrics(decomp: pl.DataFrame) -> None:
    res = reconcile(decomp, rollup(decomp, SECURITIES, MEMBERS), MEMBERS)
    assert res.failures == []
    for key in ("max_rel_error_level1", "max_rel_error_level2", "max_rel_error_groups",
                "max_rel_error_baskets"):
        assert 0 <= res.metrics[key] < 1e-12
    assert res.metrics["n_security_rows"] == 5 and res.metrics["n_windows"] == 2
    assert res.metrics["n_failures"] == 0


def test_reconcile_catches_broken_security_identity(decomp: pl.DataFrame) -> None:
    bad = decomp.with_columns(
        pl.when(pl.col("security_id") == "US:NVDA").then(pl.col("price_usd") + 1)
        .otherwise(pl.col("price_usd")).alias("price_usd")
    )
    res = reconcile(bad, rollup(bad, SECURITIES, MEMBERS), MEMBERS)
    assert not res.ok
    assert any("level 1" in f and "US:NVDA" in f for f in res.failures)
    assert any("level 2" in f and "US:NVDA" in f for f in res.failures)
    assert res.metrics["max_rel_error_level1"] > 1e-9


def test_reconcile_catches_null_amount(decomp: pl.DataFrame) -> None:
    bad = decomp.with_columns(pl.lit(None, pl.Float64).alias("fx_usd"))
    res = reconcile(bad, rollup(decomp, SECURITIES, MEMBERS), MEMBERS)
    assert any("null" in f for f in res.failures)


def test_reconcile_catches_group_and_basket_errors(decomp: pl.DataFrame) -> None:
    r = rollup(decomp, SECURITIES, MEMBERS)
    broken = r.with_columns(
        pl.when((pl.col("group_kind") == "market") & (pl.col("group_id") == "KR"))
        .then(pl.col("change_usd") * 2).otherwise(pl.col("change_usd")).alias("change_usd")
    )
    res = reconcile(decomp, broken, MEMBERS)
    assert any("group kind market" in f and "change_usd" in f for f in res.failures)

    no_div = r.filter(~((pl.col("group_kind") == "basket") & (pl.col("group_id") == "DIV")))
    res = reconcile(decomp, no_div, MEMBERS)
    assert any("basket" in f and "DIV" in f and "missing" in f for f in res.failures)

    wrong_basket = r.with_columns(
        pl.when(pl.col("group_kind") == "basket").then(pl.col("n_securities") + 1)
        .otherwise(pl.col("n_securities")).alias("n_securities")
    )
    res = reconcile(decomp, wrong_basket, MEMBERS)
    assert any("n_securities" in f for f in res.failures)

    bad_share = r.with_columns(pl.lit(0.5).alias("share_of_total"))
    assert any("share_of_total" in f for f in reconcile(decomp, bad_share, MEMBERS).failures)


def test_reconcile_lists_at_most_max_listed(decomp: pl.DataFrame) -> None:
    bad = decomp.with_columns((pl.col("fx_usd") + 1e6).alias("fx_usd"))
    res = reconcile(bad, rollup(bad, SECURITIES, MEMBERS), MEMBERS, max_listed=2)
    level1 = [f for f in res.failures if f.startswith("level 1")]
    assert len(level1) == 2
    assert any("3 more level-1" in f for f in res.failures)


# --------------------------------------------------------------------------- property

price = st.floats(min_value=0.01, max_value=1e4, allow_nan=False)
fx = st.floats(min_value=1e-4, max_value=2.0, allow_nan=False)
ni = st.one_of(st.none(), st.floats(min_value=-1e9, max_value=1e9, allow_nan=False))


@st.composite
def universes(draw):
    n = draw(st.integers(min_value=1, max_value=30))
    markets = ["US", "CN", "KR", "JP"]
    rows, secs, members = [], [], []
    for i in range(n):
        sid = f"{draw(st.sampled_from(markets))}:{i}"
        secs.append({"security_id": sid,
                     "sector": draw(st.sampled_from(["IT", "Banks", "Coal", None])),
                     "sector_group": draw(st.sampled_from(["ai_tech", "banks", "other"])),
                     "is_ai": draw(st.booleans())})
        for basket in draw(st.sets(st.sampled_from(["B1", "B2", "B3"]))):
            members.append({"basket_id": basket, "security_id": sid,
                            "valid_from": draw(st.sampled_from([None, D(2025, 11, 1),
                                                                D(2025, 12, 1)])),
                            "valid_to": None})
        for window in draw(st.sets(st.sampled_from(["w1", "w2"]), min_size=1)):
            rows.append(row(window, sid, draw(price), draw(price),
                            draw(st.floats(1e3, 1e10)), draw(st.floats(1e3, 1e10)),
                            draw(fx), draw(fx), draw(ni), draw(ni)))
    members_frame = pl.DataFrame(
        members, schema={"basket_id": pl.Utf8, "security_id": pl.Utf8,
                         "valid_from": pl.Date, "valid_to": pl.Date})
    return decomposition(rows), pl.DataFrame(secs), members_frame


@settings(max_examples=60, deadline=None)
@given(universes())
def test_group_sums_equal_security_sums(universe) -> None:
    decomp, securities, members = universe
    r = rollup(decomp, securities, members)
    assert reconcile(decomp, r, members).failures == []
    per_window = decomp.group_by("window_id").agg(pl.len().alias("n"),
                                                  *[pl.col(c).sum() for c in AMOUNT_COLUMNS])
    for kind in ("total", "market", "is_ai", "sector", "sector_group"):
        sums = (r.filter(pl.col("group_kind") == kind).group_by("window_id")
                .agg(pl.col("n_securities").sum().alias("n"),
                     *[pl.col(c).sum() for c in AMOUNT_COLUMNS]))
        joined = per_window.join(sums, on="window_id", suffix="_g")
        assert joined.height == per_window.height
        assert (joined["n"] == joined["n_g"]).all()
        for c in AMOUNT_COLUMNS:
            # Sums over securities in another order differ by rounding relative to the
            # size of the whole window (start or end cap), as in reconcile.
            scale = joined.select(pl.max_horizontal(pl.lit(1.0), pl.col("mcap_usd_start").abs(),
                                                    pl.col("mcap_usd_end").abs()).alias("scale"))["scale"]
            assert ((joined[c] - joined[f"{c}_g"]).abs() <= 1e-9 * scale).all(), (kind, c)
