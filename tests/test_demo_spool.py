"""The demo generator's internals: blocks cut into rows the same held or spooled, parts
cut across pieces, and pinned figures that any change to the random draws (or to the
arithmetic on them) would move."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from selloff.sources import demo as demo_module
from selloff.sources.demo import DemoSource, _block, _cut


def _sample_block(n_ids: int = 7, n_days: int = 5) -> demo_module._Block:
    rng = np.random.default_rng(3)
    days = np.arange(np.datetime64("2025-01-06"), np.datetime64("2025-01-06") + n_days)
    ids = [f"CN:{600000 + i:06d}.SH" for i in range(n_ids)]
    return _block("fund_flows_daily", ids, days, {"net_buy_value": rng.standard_normal((n_days, n_ids))},
                  id_name="entity_id", investor_type="small", flow_scope="security", period="day",
                  currency="CNY")


def _expected(block: demo_module._Block) -> pl.DataFrame:
    """The block's long frame written out row by row: id-major, then date."""
    (mat,) = block.mats
    rows = [(sid, day.astype(dt.date), float(mat[t, i]))
            for i, sid in enumerate(block.ids) for t, day in enumerate(block.days)]
    df = pl.DataFrame(rows, schema={"entity_id": pl.Utf8, "trade_date": pl.Date,
                                    "net_buy_value": pl.Float64}, orient="row")
    return demo_module._finish_one("fund_flows_daily", df.with_columns(
        investor_type=pl.lit("small"), flow_scope=pl.lit("security"), period=pl.lit("day"),
        currency=pl.lit("CNY")))


def test_block_rows_held_and_spooled(tmp_path: Path) -> None:
    block = _sample_block()
    whole = _expected(block)
    spooled = block.spool(tmp_path / "b.f64")
    assert spooled.mats == () and spooled.height == whole.height == 35
    # Ranges starting and ending inside an id's days, on its edges, empty and whole.
    for lo, hi in [(0, 35), (0, 0), (3, 4), (4, 11), (5, 10), (12, 35), (34, 35), (17, 17)]:
        for b in (block, spooled):
            assert_frame_equal(b.rows(lo, hi), whole.slice(lo, hi - lo))


def test_block_pieces_are_whole_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_module, "PART_ROWS", 4 * 12)  # 12 rows: two ids of 5 days
    block = _sample_block()
    pieces = list(block.pieces())
    assert [p.height for p in pieces] == [10, 10, 10, 5]
    assert_frame_equal(pl.concat(pieces), _expected(block))


def test_cut_spans_pieces(tmp_path: Path) -> None:
    a, b = _sample_block(3, 4), _sample_block(2, 6)
    small = _expected(_sample_block(1, 3))
    pieces = [a.spool(tmp_path / "a.f64"), small, b]
    whole = pl.concat([_expected(a), small, _expected(b)])
    for lo, hi in [(0, 27), (10, 14), (11, 15), (14, 16), (0, 100), (26, 40)]:
        assert_frame_equal(_cut(pieces, lo, hi), whole.slice(lo, hi - lo))
    empty = _cut([small.slice(0, 0)], 0, 10)
    assert empty.height == 0 and empty.schema == small.schema


def test_pinned_figures() -> None:
    # Figures of the generator before it was made to work in place (main at 70e1511):
    # the same draws in the same order and the same operations give them exactly.
    src = DemoSource(n_securities=200, years=2)
    day = dt.date(2025, 11, 20)
    prices = src.fetch("prices_daily").filter(pl.col("trade_date") == day)
    got = dict(zip(prices["security_id"], prices.select(
        "open", "high", "low", "close", "adj_close", "volume").rows(), strict=True))
    assert got["US:NVDA"] == (176.82, 178.1, 167.5, 168.03, 168.03, 205109960.0)
    assert got["CN:688256.SH"] == (1022.47, 1037.59, 1019.3, 1030.14, 1030.14, 9348900.0)
    assert got["JP:9984"] == (5315.0, 5423.0, 5267.0, 5422.0, 5422.0, 26244600.0)
    # Before the split: as traded at 4x, adjusted back.
    before = src.fetch("prices_daily").filter(
        (pl.col("trade_date") == dt.date(2025, 3, 3)) & (pl.col("security_id") == "JP:9984"))
    assert before.select("open", "close", "adj_close", "volume").row(0) == (
        15462.0, 15380.0, 3845.0, 7015200.0)
    flows = src.fetch("fund_flows_daily").filter(
        (pl.col("trade_date") == day) & (pl.col("entity_id") == "CN:688256.SH"))
    assert dict(flows.select("investor_type", "net_buy_value").rows()) == {
        "main_force": -34003318.0, "super_large": -58928228.0, "large": 24924910.0,
        "medium": 53198374.0, "small": -19195056.0}
    levels = src.fetch("index_levels_daily").filter(pl.col("trade_date") == day)
    assert dict(levels.select("index_id", "close").rows()) == {
        "US:SPX": 5685.03, "US:NDX": 21013.29, "CN:000300.SH": 4466.04,
        "CN:399006.SZ": 2902.87, "CN:000016.SH": 2993.37, "CN:000688.SH": 1311.09,
        "CN:000922.SH": 5593.36, "KR:KOSPI": 3548.77, "JP:N225": 47003.82,
        "TW:TAIEX": 22998.07}
