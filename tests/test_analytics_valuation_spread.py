"""Valuation spread (selloff.analytics.valuation_spread) on small hand-built frames."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from selloff.analytics.valuation_spread import VALUATION_SPREAD_SCHEMA, valuation_spread
from selloff.episode_model import Valuation

D = dt.date


def _basket_val(rows: list[tuple[str, dt.date, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"basket_id": pl.Utf8, "trade_date": pl.Date,
                                      "pe_ttm": pl.Float64}, orient="row")


def _index_val(rows: list[tuple[str, dt.date, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"index_id": pl.Utf8, "trade_date": pl.Date,
                                      "pe_ttm": pl.Float64}, orient="row")


# The AI episode's valuation entry (its episode.yaml): the engine itself names no basket.
AI = Valuation(("US_AI_BIG8", "CN_AI"), "CN_DIVIDEND", "CN:000922.SH")

INDEX = _index_val([
    ("CN:000922.SH", D(2025, 11, 3), 7.5),
    ("CN:000922.SH", D(2025, 11, 5), 7.0),
    ("CN:000300.SH", D(2025, 11, 4), 14.0),
])


def test_basket_reference_and_full_sample_percentile() -> None:
    bv = _basket_val([
        ("US_AI_BIG8", D(2025, 11, 3), 40.0),
        ("US_AI_BIG8", D(2025, 11, 4), 36.0),
        ("US_AI_BIG8", D(2025, 11, 5), 44.0),
        ("US_AI_BIG8", D(2025, 11, 6), 40.0),
        ("CN_DIVIDEND", D(2025, 11, 3), 8.0),
        ("CN_DIVIDEND", D(2025, 11, 4), 9.0),
        ("CN_DIVIDEND", D(2025, 11, 6), 8.0),
        ("US_OTHER", D(2025, 11, 3), 99.0),
    ])
    out = valuation_spread(bv, INDEX, AI)
    assert dict(out.schema) == VALUATION_SPREAD_SCHEMA
    assert out["ai_basket_id"].unique().to_list() == ["US_AI_BIG8"]
    assert out["dividend_ref"].unique().to_list() == ["CN_DIVIDEND"]
    # 11-05 has no dividend basket value: the 11-04 one is used (as of).
    assert out["dividend_pe"].to_list() == [8.0, 9.0, 9.0, 8.0]
    assert out["ratio"].to_list() == pytest.approx([5.0, 4.0, 44 / 9, 5.0])
    # Ranks among the four ratios 4, 44/9, 5, 5: ties share the average rank 3.5.
    assert out["ratio_percentile"].to_list() == pytest.approx([2.5 / 3, 0.0, 1 / 3, 2.5 / 3])


def test_index_fallback_when_the_basket_has_no_pe() -> None:
    bv = _basket_val([
        ("CN_AI", D(2025, 11, 3), 80.0),
        ("CN_AI", D(2025, 11, 4), 70.0),
        ("CN_AI", D(2025, 11, 5), 77.0),
        ("CN_AI", D(2025, 11, 20), 60.0),   # reference older than 7 days: no ratio
        ("CN_AI", D(2025, 11, 21), -5.0),   # not a positive P/E: no row
        ("CN_DIVIDEND", D(2025, 11, 3), None),
    ])
    out = valuation_spread(bv, INDEX, Valuation(("CN_AI",), "CN_DIVIDEND", "CN:000922.SH"))
    assert out["trade_date"].to_list() == [D(2025, 11, 3), D(2025, 11, 4), D(2025, 11, 5),
                                           D(2025, 11, 20)]
    assert out["dividend_ref"].to_list() == ["CN:000922.SH"] * 3 + [None]
    assert out["dividend_pe"].to_list() == [7.5, 7.5, 7.0, None]
    assert out["ratio"].to_list()[:3] == pytest.approx([80 / 7.5, 70 / 7.5, 11.0])
    # Ranked among the three days with a ratio: 10.67, 9.33, 11.0.
    assert out["ratio_percentile"].to_list()[:3] == pytest.approx([0.5, 0.0, 1.0])
    assert out["ratio_percentile"][3] is None


def test_missing_inputs() -> None:
    bv = _basket_val([("US_AI_BIG8", D(2025, 11, 3), 40.0)])
    alone = valuation_spread(bv, None, AI)
    assert alone.height == 1 and alone["dividend_ref"].to_list() == [None]
    assert alone["ratio_percentile"].to_list() == [None]
    assert valuation_spread(None, INDEX, AI).height == 0
    assert valuation_spread(_basket_val([]), INDEX, AI).schema == pl.Schema(VALUATION_SPREAD_SCHEMA)


def test_the_engine_has_no_basket_of_its_own() -> None:
    # Without the episode's valuation entry there is nothing to compare: no AI basket is
    # assumed, and neither is a dividend reference.
    bv = _basket_val([("US_AI_BIG8", D(2025, 11, 3), 40.0), ("CN_DIVIDEND", D(2025, 11, 3), 8.0)])
    assert valuation_spread(bv, INDEX, Valuation()).height == 0
    only_index = valuation_spread(bv, INDEX, Valuation(("US_AI_BIG8",), None, "CN:000922.SH"))
    assert only_index["dividend_ref"].to_list() == ["CN:000922.SH"]
