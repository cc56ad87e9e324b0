"""Rotation tables (selloff.analytics.rotation) on small hand-built frames."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from selloff.analytics.rotation import ROTATION_SCHEMA, rotation

D = dt.date
T_PREV, T0, T_MID, T1, T_AFTER = D(2025, 10, 30), D(2025, 10, 31), D(2025, 11, 3), D(2025, 11, 4), D(2025, 11, 5)

# security: (sector_group, close t0, close t1, market cap USD t0, P/E at t0)
US = {
    "US:A": ("ai_tech", 100.0, 80.0, 400.0, 60.0),
    "US:B": ("ai_tech", 50.0, 45.0, 100.0, None),   # a loss-maker: no P/E
    "US:C": ("banks", 10.0, 11.0, 200.0, 8.0),
    "US:D": ("banks", 20.0, 21.0, 300.0, 6.0),
    "US:E": ("consumer", 30.0, 30.0, 100.0, 20.0),
    "US:F": ("coal", 5.0, 5.5, 50.0, 5.0),
    "US:G": ("utilities", 40.0, 38.0, 150.0, 15.0),
    "US:H": ("other", 10.0, 9.0, 100.0, 30.0),
    "US:I": ("ai_tech", 10.0, 7.0, 100.0, 90.0),
    "US:J": ("energy_materials", 10.0, 10.5, 100.0, 10.0),
    "US:K": ("other", 10.0, None, 100.0, 12.0),     # no close at t1: left out
}
KR = {  # three securities: too few for quintiles
    "KR:1": ("ai_tech", 1000.0, 900.0, 50.0, 40.0),
    "KR:2": ("banks", 500.0, 510.0, 20.0, 5.0),
    "KR:3": ("other", 100.0, 100.0, 10.0, None),
}


def _frames() -> dict[str, pl.DataFrame]:
    sec_rows, mc_rows, val_rows = [], [], []
    for market, table in (("US", US), ("KR", KR)):
        for sid, (group, c0, c1, m0, pe) in table.items():
            sec_rows.append((sid, market, group, group == "ai_tech"))
            mc_rows += [(sid, market, T_PREV, c0, m0), (sid, market, T0, c0, m0)]
            if c1 is not None:
                mc_rows.append((sid, market, T1, c1, m0 * c1 / c0))
            mc_rows.append((sid, market, T_MID, (c0 + (c1 or c0)) / 2, m0))
            val_rows.append((sid, T0, pe))
    return {
        "securities": pl.DataFrame(sec_rows, schema=["security_id", "market", "sector_group",
                                                     "is_ai"], orient="row"),
        "market_cap": pl.DataFrame(mc_rows, schema=["security_id", "market", "trade_date",
                                                    "close", "market_cap_usd"], orient="row"),
        "valuation": pl.DataFrame(val_rows, schema={"security_id": pl.Utf8, "trade_date": pl.Date,
                                                    "pe_ttm": pl.Float64}, orient="row"),
        "windows": pl.DataFrame({"window_id": ["w"], "market": ["ALL"], "kind": ["named"],
                                 "start_date": [T_MID], "end_date": [T1],
                                 "basis": ["config"], "entity_id": [None]},
                                schema_overrides={"entity_id": pl.Utf8}),
        "fund_flows": pl.DataFrame(
            [
                ("security", "US:A", T0, "foreign", "day", -999.0),  # before the window
                ("security", "US:A", T_MID, "foreign", "day", -10.0),
                ("security", "US:A", T1, "foreign", "day", -5.0),
                ("security", "US:I", T1, "foreign", "day", -1.0),
                ("security", "US:A", T1, "individual", "day", 7.0),
                ("security", "US:C", T1, "foreign", "day", 4.0),
                ("security", "US:A", T_AFTER, "foreign", "day", -999.0),  # after it
                ("market", "KR:KOSPI", T_MID, "foreign", "day", -100.0),
                ("market", "KR:KOSPI", T1, "foreign", "day", -50.0),
                ("market", "KR:KOSPI", T1, "individual", "day", 120.0),
                ("market", "KR:KOSDAQ", T1, "foreign", "day", -5.0),
                ("market", "KR:KOSPI", T1, "pension", "day", None),  # no FX: left out
                ("market", "JP:TSE", T1, "foreign", "week", 1e9),  # no JP securities
            ],
            schema=["flow_scope", "entity_id", "trade_date", "investor_type", "period",
                    "net_buy_usd"],
            orient="row",
        ),
    }


def _cw(table: dict, names: list[str]) -> float:
    caps = {s: table[s][3] for s in names}
    return sum(caps[s] * (table[s][2] / table[s][1] - 1) for s in names) / sum(caps.values())


@pytest.fixture(scope="module")
def rot() -> pl.DataFrame:
    f = _frames()
    return rotation(f["windows"], f["market_cap"], f["valuation"], f["securities"],
                    f["fund_flows"])


def _row(rot: pl.DataFrame, market: str, dimension: str, bucket: str,
         investor_type: str | None = None) -> dict:
    r = rot.filter((pl.col("market") == market) & (pl.col("dimension") == dimension)
                   & (pl.col("bucket") == bucket))
    r = r.filter(pl.col("investor_type").is_null() if investor_type is None
                 else pl.col("investor_type") == investor_type)
    assert r.height == 1, (market, dimension, bucket, investor_type, r)
    return r.row(0, named=True)


def test_schema(rot: pl.DataFrame) -> None:
    assert dict(rot.schema) == ROTATION_SCHEMA
    assert set(rot["dimension"]) == {"sector_group", "pe_quintile", "spread", "investor_type"}


def test_sector_group_returns_are_cap_weighted(rot: pl.DataFrame) -> None:
    ai = _row(rot, "US", "sector_group", "ai_tech")
    assert ai["n_securities"] == 3
    assert ai["cap_weighted_return"] == pytest.approx(_cw(US, ["US:A", "US:B", "US:I"]))
    banks = _row(rot, "US", "sector_group", "banks")
    assert banks["cap_weighted_return"] == pytest.approx(_cw(US, ["US:C", "US:D"]))
    other = _row(rot, "US", "sector_group", "other")  # US:K has no t1 price
    assert other["n_securities"] == 1
    assert other["net_flow_usd"] is None


def test_pe_quintiles_and_spread(rot: pl.DataFrame) -> None:
    # 9 US securities with a return and P/E > 0, sorted by P/E:
    # F 5, D 6, C 8, J 10, G 15, E 20, H 30, A 60, I 90 -> quintile = floor(i*5/9)+1
    expected = {"Q1": ["US:F", "US:D"], "Q2": ["US:C", "US:J"], "Q3": ["US:G", "US:E"],
                "Q4": ["US:H", "US:A"], "Q5": ["US:I"]}
    for q, names in expected.items():
        r = _row(rot, "US", "pe_quintile", q)
        assert r["n_securities"] == len(names), q
        assert r["cap_weighted_return"] == pytest.approx(_cw(US, names)), q
    assert _row(rot, "US", "pe_quintile", "Q1")["note"] == "P/E at t0 5.0 to 6.0"
    no_pe = _row(rot, "US", "pe_quintile", "no_pe")
    assert no_pe["n_securities"] == 1
    spread = _row(rot, "US", "spread", "Q1-Q5")
    assert spread["cap_weighted_return"] == pytest.approx(
        _cw(US, expected["Q1"]) - _cw(US, expected["Q5"]))
    assert spread["cap_weighted_return"] > 0  # "high to low": cheap stocks held up
    assert spread["n_securities"] == 3


def test_too_few_pe_for_quintiles(rot: pl.DataFrame) -> None:
    r = _row(rot, "KR", "pe_quintile", "not_formed")
    assert r["n_securities"] == 2
    assert "quintiles not formed" in r["note"]
    kr = rot.filter((pl.col("market") == "KR") & (pl.col("dimension") == "pe_quintile"))
    assert sorted(kr["bucket"]) == ["no_pe", "not_formed"]
    assert rot.filter((pl.col("market") == "KR") & (pl.col("dimension") == "spread")).height == 0


def test_security_flows_by_bucket_and_investor_type(rot: pl.DataFrame) -> None:
    foreign = _row(rot, "US", "sector_group", "ai_tech", "foreign")
    assert foreign["net_flow_usd"] == pytest.approx(-16.0)  # -10 - 5 - 1, not the days outside
    assert foreign["n_securities"] == 2
    assert foreign["cap_weighted_return"] is None
    assert _row(rot, "US", "sector_group", "ai_tech", "individual")["net_flow_usd"] == 7.0
    assert _row(rot, "US", "sector_group", "banks", "foreign")["net_flow_usd"] == 4.0
    assert _row(rot, "US", "pe_quintile", "Q4", "foreign")["net_flow_usd"] == pytest.approx(-15.0)
    assert _row(rot, "US", "pe_quintile", "Q5", "foreign")["net_flow_usd"] == pytest.approx(-1.0)


def test_market_flows_by_investor_type(rot: pl.DataFrame) -> None:
    foreign = _row(rot, "KR", "investor_type", "foreign", "foreign")
    assert foreign["net_flow_usd"] == pytest.approx(-155.0)
    assert "KR:KOSDAQ, KR:KOSPI" in foreign["note"]
    assert _row(rot, "KR", "investor_type", "individual", "individual")["net_flow_usd"] == 120.0
    pension = _row(rot, "KR", "investor_type", "pension", "pension")
    assert pension["net_flow_usd"] == 0.0
    assert "1 figures without a USD value left out" in pension["note"]
    # JP has no securities, hence no window bounds: its flows are not placed in a window.
    assert rot.filter(pl.col("market") == "JP").height == 0


def test_weekly_flows_are_noted() -> None:
    f = _frames()
    weekly = f["fund_flows"].with_columns(pl.lit("week").alias("period"))
    rot = rotation(f["windows"], f["market_cap"], f["valuation"], f["securities"], weekly)
    assert "weekly figures" in _row(rot, "KR", "investor_type", "foreign", "foreign")["note"]


def test_missing_inputs() -> None:
    f = _frames()
    rot = rotation(f["windows"], f["market_cap"], None, f["securities"], None)
    assert set(rot["dimension"]) == {"sector_group", "pe_quintile"}
    assert _row(rot, "US", "pe_quintile", "no_pe")["n_securities"] == 10
    late = f["windows"].with_columns(pl.lit(D(2026, 1, 5)).alias("start_date"),
                                     pl.lit(D(2026, 1, 9)).alias("end_date"))
    empty = rotation(late, f["market_cap"], f["valuation"], f["securities"], f["fund_flows"])
    assert empty.height == 0 and dict(empty.schema) == ROTATION_SCHEMA


def test_security_flows_in_overlapping_windows() -> None:
    """Two windows sharing days: each security's flows count in every window holding
    their day, once per (bucket, investor type), nulls left out, weekly figures noted.
    Expected sums come from a plain loop over the flow rows."""
    f = _frames()
    windows = pl.concat([
        f["windows"],
        f["windows"].with_columns(pl.lit("wide").alias("window_id"),
                                  pl.lit(T0).alias("start_date")),
    ])
    extra = pl.DataFrame(
        [("security", "US:A", T_MID, "individual", "week", 3.0),
         ("security", "US:C", T_MID, "foreign", "day", None),
         ("security", "US:D", T1, "foreign", "day", None)],
        schema=f["fund_flows"].schema, orient="row")
    flows = pl.concat([f["fund_flows"].select(extra.columns), extra])
    rot = rotation(windows, f["market_cap"], f["valuation"], f["securities"], flows)
    # t0 is the last close before a window's start, t1 the last close on or before its end.
    bounds = {"w": (T0, T1), "wide": (T_PREV, T1)}
    expected: dict[tuple[str, str, str], tuple[float, set[str], int]] = {}
    for scope, sid, day, typ, period, usd in flows.iter_rows():
        if scope != "security" or usd is None or not sid.startswith("US:"):
            continue
        for wid, (t0, t1) in bounds.items():
            if t0 < day <= t1:
                key = (wid, US[sid][0], typ)
                total, ids, weekly = expected.get(key, (0.0, set(), 0))
                expected[key] = (total + usd, ids | {sid}, weekly + (period == "week"))
    got = rot.filter((pl.col("dimension") == "sector_group") & pl.col("investor_type").is_not_null())
    assert got.height == len(expected)
    for (wid, group, typ), (total, ids, weekly) in expected.items():
        r = got.filter((pl.col("window_id") == wid) & (pl.col("bucket") == group)
                       & (pl.col("investor_type") == typ)).row(0, named=True)
        assert r["net_flow_usd"] == pytest.approx(total) and r["n_securities"] == len(ids)
        assert (r["note"] or "").startswith(f"includes {weekly} weekly") == (weekly > 0)
    # The T0 figure lies in the wide window only.
    assert expected[("wide", "ai_tech", "foreign")][0] == -1015.0
