"""The engine of moves (selloff.analytics.moves): identities on random series, the price
basis across a split, and the worst-move rule."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selloff.analytics.moves import (
    ADJ,
    RAW,
    basket_levels,
    level_moves,
    security_levels,
    worst_moves,
)

D = dt.date
DAYS = [D(2025, 4, 1) + dt.timedelta(days=i) for i in range(40)]
SESSIONS = [d for d in DAYS if d.weekday() < 5]
PERIOD = (D(2025, 4, 7), D(2025, 5, 9))


def caps(closes: list[float], shares: list[float], adj: list[float | None] | None = None,
         sid: str = "US:A") -> pl.DataFrame:
    n = len(closes)
    return pl.DataFrame({
        "security_id": [sid] * n, "trade_date": SESSIONS[:n], "close": closes,
        "adj_close": adj if adj is not None else closes,
        "market_cap_usd": [c * s for c, s in zip(closes, shares, strict=True)],
        "market_cap_local": [c * s for c, s in zip(closes, shares, strict=True)]},
        schema_overrides={"adj_close": pl.Float64})


prices = st.lists(st.floats(min_value=1.0, max_value=1000.0), min_size=len(SESSIONS),
                  max_size=len(SESSIONS))


@settings(max_examples=30, deadline=None)
@given(prices, prices)
def test_weeks_compound_their_days_and_add_their_changes(closes: list[float],
                                                         shares: list[float]) -> None:
    moves = level_moves(security_levels(caps(closes, shares)), "security", [PERIOD])
    days = moves.filter(pl.col("period") == "day")
    for week in moves.filter(pl.col("period") == "week").iter_rows(named=True):
        inside = days.filter((pl.col("t1_date") > week["t0_date"])
                             & (pl.col("t1_date") <= week["t1_date"]))
        assert math.prod(1 + r for r in inside["return"]) - 1 == pytest.approx(
            week["return"], rel=1e-9, abs=1e-12)
        assert inside["change_usd"].sum() == pytest.approx(week["change_usd"], rel=1e-9,
                                                           abs=1e-6)
        # and the change is the cap at t1 minus the cap at t0
        cap = dict(zip(SESSIONS, (c * s for c, s in zip(closes, shares, strict=True)),
                       strict=False))
        assert week["change_usd"] == pytest.approx(cap[week["t1_date"]] - cap[week["t0_date"]],
                                                   rel=1e-9, abs=1e-6)


@settings(max_examples=30, deadline=None)
@given(prices, prices)
def test_a_one_member_basket_moves_like_its_member(closes: list[float],
                                                   shares: list[float]) -> None:
    frame = caps(closes, shares)
    members = pl.DataFrame({"basket_id": ["B"], "security_id": ["US:A"]})
    basket = level_moves(basket_levels(frame, members), "basket", [PERIOD])
    alone = frame.with_columns(close=pl.col("market_cap_usd"), adj_close=pl.col("market_cap_usd"))
    single = level_moves(security_levels(alone), "security", [PERIOD])
    key = ["period", "t1_date"]
    a, b = basket.sort(key), single.sort(key)
    assert a.select(key).equals(b.select(key))
    for x, y in zip(a["return"], b["return"], strict=True):
        assert x == pytest.approx(y, rel=1e-9, abs=1e-12)


def test_split_inside_an_adjusted_stretch_is_no_fall() -> None:
    # A 2:1 split on the 4th session: the raw close halves, the adjusted close does not.
    closes = [100.0, 102.0, 104.0, 52.5, 53.0, 54.0, 55.0, 56.0]
    adj = [50.0, 51.0, 52.0, 52.5, 53.0, 54.0, 55.0, 56.0]
    levels = security_levels(caps(closes, [1.0] * 8, adj))
    assert set(levels["step_basis"].drop_nulls()) == {ADJ}
    assert levels["level"].to_list() == pytest.approx(adj)  # anchored at the last close
    # Without adjusted closes before the 3rd session, those steps use raw closes.
    mixed = security_levels(caps(closes, [1.0] * 8, [None, None, 52.0, *adj[3:]]))
    assert mixed["step_basis"].to_list()[1:4] == [RAW, RAW, ADJ]


def test_worst_moves_ties_go_to_the_earlier_move() -> None:
    moves = pl.DataFrame({
        "entity_kind": ["index"] * 3, "entity_id": ["X"] * 3, "period": ["day"] * 3,
        "start_date": [D(2025, 4, 2), D(2025, 4, 1), D(2025, 4, 3)],
        "end_date": [D(2025, 4, 2), D(2025, 4, 1), D(2025, 4, 3)],
        "return": [-0.05, -0.05, -0.01]})
    worst = worst_moves(moves, "day")
    assert worst["start_date"].item() == D(2025, 4, 1)
    assert worst_moves(moves, "day", start=D(2025, 4, 2))["start_date"].item() == D(2025, 4, 2)
