"""Discovery's market aggregates kept between runs (assets/analytics/discovery.py,
AggregateStore): the candidates and events found with kept aggregates equal a full
recompute, exactly; a market whose rows changed is computed again, the others are not."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from assets.analytics.discovery import AggregateStore, market_inputs
from selloff.analytics.discovery import discover
from selloff.resources import WarehouseResource
from tests.test_discovery import _synthetic

MEMBERS = pl.DataFrame({"basket_id": ["US_AB", "US_AB", "KR_C"],
                        "security_id": ["US:AAA", "US:BBB", "KR:CCC"]})


def _two_markets() -> tuple[pl.DataFrame, pl.DataFrame]:
    index, caps, _ = _synthetic()
    us = caps.filter(pl.col("security_id") == "US:AAA")
    kr = [us.with_columns(pl.lit(sid).alias("security_id"), pl.col("market_cap_usd") * k)
          for sid, k in (("KR:CCC", 0.3), ("KR:DDD", 0.7))]
    return index, pl.concat([caps, *kr]).select("security_id", "trade_date", "market_cap_usd")


def _same(a: tuple[pl.DataFrame, pl.DataFrame], b: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    assert a[0].height > 0
    for x, y in zip(a, b, strict=True):
        assert_frame_equal(x, y)  # exact: no tolerance


def test_kept_aggregates_find_what_a_full_recompute_finds(tmp_path: Path) -> None:
    warehouse = WarehouseResource(path=str(tmp_path / "warehouse" / "selloff.duckdb"))
    index, caps = _two_markets()
    warehouse.write("marts", "fct_market_cap_daily", caps)
    ids = MEMBERS["security_id"].to_list()
    store = AggregateStore(tmp_path / "aggregates")
    full = discover(index, caps, MEMBERS)

    got, aggregates, recomputed = market_inputs(warehouse, ids, store)
    assert recomputed == ["KR", "US"]
    _same(full, discover(index, got, MEMBERS, aggregates=aggregates))

    # Nothing changed: both kept, only the members' rows read.
    got, aggregates, recomputed = market_inputs(warehouse, ids, store)
    assert recomputed == []
    assert set(got["KR"]["security_id"].unique()) == {"KR:CCC"}
    _same(full, discover(index, got, MEMBERS, aggregates=aggregates))

    # One market's last day changes: that market alone is computed again.
    last = caps["trade_date"].max()
    moved = caps.with_columns(
        pl.when(pl.col("security_id").str.starts_with("KR:") & (pl.col("trade_date") == last))
        .then(pl.col("market_cap_usd") * 0.9).otherwise(pl.col("market_cap_usd"))
        .alias("market_cap_usd"))
    warehouse.write("marts", "fct_market_cap_daily", moved)
    got, aggregates, recomputed = market_inputs(warehouse, ids, store)
    assert recomputed == ["KR"]
    _same(discover(index, moved, MEMBERS), discover(index, got, MEMBERS, aggregates=aggregates))


def test_another_code_version_recomputes_every_aggregate(tmp_path: Path) -> None:
    warehouse = WarehouseResource(path=str(tmp_path / "warehouse" / "selloff.duckdb"))
    index, caps = _two_markets()
    warehouse.write("marts", "fct_market_cap_daily", caps)
    store = AggregateStore(tmp_path / "aggregates")
    market_inputs(warehouse, [], store)
    store.code = "another"
    assert market_inputs(warehouse, [], store)[2] == ["KR", "US"]
    # A torn data file is not trusted either.
    next((tmp_path / "aggregates").glob("*.parquet")).write_bytes(b"torn")
    again = AggregateStore(tmp_path / "aggregates")
    again.code = "another"
    _, aggregates, recomputed = market_inputs(warehouse, [], again)
    assert len(recomputed) == 1
    _same(discover(index, caps, None), discover(index, {}, None, aggregates=aggregates))
