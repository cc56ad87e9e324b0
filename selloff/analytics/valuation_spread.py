"""Valuation spread: AI baskets' P/E against the dividend reference, day by day.

For each AI basket (fct_basket_valuation_daily, cap-weighted P/E = sum(mcap) / sum(NI
TTM)) and each of its days: the dividend reference P/E, their ratio, and where the ratio
stands in its own history.

- Dividend reference: the dividend basket (`valuation.dividend_basket` of the episode) from
  fct_basket_valuation_daily when it has any positive P/E; otherwise the dividend index
  (`valuation.dividend_index`) from fct_index_valuation_daily. Both come from the episode
  file (`selloff.episode_model.Valuation`); the engine knows no basket of its own.
  The choice is made once for the whole table, not day by day, so that every ratio in
  a basket's history is on the same basis and its percentile means something.
- Dates: the reference is taken as of the AI basket's day (its latest value on or before
  that date, at most `max_staleness_days` calendar days old), because a US basket trades
  on days the Chinese reference does not, and index valuations are not published daily.
- `ratio_percentile`: FULL-SAMPLE percentile of the day's ratio among all days of that
  basket with a ratio in the input, (average rank - 1) / (n - 1), so the lowest ratio is
  0 and the highest 1 (null when n = 1). It uses later days too: it describes where a day
  stands in the period covered, it is not a signal available on that day.
"""

from __future__ import annotations

import polars as pl

from selloff.analytics.tables import VALUATION_SPREAD_SCHEMA, conform, empty, require_columns
from selloff.episode_model import Valuation

MAX_STALENESS_DAYS = 7


_positive_pe = pl.col("pe_ttm").is_not_null() & pl.col("pe_ttm").is_not_nan() & (pl.col("pe_ttm") > 0)


def dividend_reference(
    basket_valuation: pl.DataFrame | None,
    index_valuation: pl.DataFrame | None,
    *,
    dividend_basket: str | None,
    dividend_index: str | None,
) -> tuple[str | None, pl.DataFrame]:
    """(reference id, its (trade_date, dividend_pe) series); (None, empty) when neither
    the basket nor the index has a positive P/E."""
    series_schema = {"trade_date": pl.Date(), "dividend_pe": pl.Float64()}
    if dividend_basket and basket_valuation is not None and basket_valuation.height:
        s = basket_valuation.filter((pl.col("basket_id") == dividend_basket) & _positive_pe)
        if s.height:
            return dividend_basket, s.select(
                pl.col("trade_date").cast(pl.Date), pl.col("pe_ttm").cast(pl.Float64)
                .alias("dividend_pe")).sort("trade_date")
    if dividend_index and index_valuation is not None and index_valuation.height:
        require_columns(index_valuation, "fct_index_valuation_daily",
                        ("index_id", "trade_date", "pe_ttm"))
        s = index_valuation.filter((pl.col("index_id") == dividend_index) & _positive_pe)
        if s.height:
            return dividend_index, s.select(
                pl.col("trade_date").cast(pl.Date), pl.col("pe_ttm").cast(pl.Float64)
                .alias("dividend_pe")).sort("trade_date")
    return None, pl.DataFrame(schema=series_schema)


def valuation_spread(
    basket_valuation: pl.DataFrame | None,
    index_valuation: pl.DataFrame | None,
    valuation: Valuation,
    *,
    max_staleness_days: int = MAX_STALENESS_DAYS,
) -> pl.DataFrame:
    """The `analytics.valuation_spread` table (VALUATION_SPREAD_SCHEMA).

    Inputs: `basket_valuation` (fct_basket_valuation_daily: basket_id, trade_date,
    pe_ttm), `index_valuation` (fct_index_valuation_daily: index_id, trade_date, pe_ttm;
    only needed when the dividend basket has no P/E). One row per AI basket day with a
    positive P/E; without a dividend reference the rows keep `ai_pe` and leave the rest
    null (`dividend_ref` null).
    """
    if basket_valuation is None or basket_valuation.height == 0:
        return empty(VALUATION_SPREAD_SCHEMA)
    require_columns(basket_valuation, "fct_basket_valuation_daily",
                    ("basket_id", "trade_date", "pe_ttm"))
    ai = (
        basket_valuation.filter(pl.col("basket_id").is_in(list(valuation.ai_baskets)) & _positive_pe)
        .select(
            pl.col("trade_date").cast(pl.Date),
            pl.col("basket_id").alias("ai_basket_id"),
            pl.col("pe_ttm").cast(pl.Float64).alias("ai_pe"),
        )
        .sort("trade_date")
    )
    if ai.height == 0:
        return empty(VALUATION_SPREAD_SCHEMA)
    ref_id, ref = dividend_reference(basket_valuation, index_valuation,
                                     dividend_basket=valuation.dividend_basket,
                                     dividend_index=valuation.dividend_index)
    out = (
        ai.join_asof(ref, on="trade_date", strategy="backward",
                     tolerance=f"{int(max_staleness_days)}d")
        .with_columns(
            pl.when(pl.col("dividend_pe").is_not_null())
            .then(pl.lit(ref_id, pl.Utf8))
            .otherwise(None)
            .alias("dividend_ref"),
            (pl.col("ai_pe") / pl.col("dividend_pe")).alias("ratio"),
        )
        .with_columns(
            pl.col("ratio").count().over("ai_basket_id").alias("_n"),
            pl.col("ratio").rank("average").over("ai_basket_id").alias("_rank"),
        )
        .with_columns(
            pl.when(pl.col("_n") > 1)
            .then((pl.col("_rank") - 1) / (pl.col("_n") - 1))
            .otherwise(None)
            .alias("ratio_percentile")
        )
    )
    return conform(out, VALUATION_SPREAD_SCHEMA).sort("ai_basket_id", "trade_date")
