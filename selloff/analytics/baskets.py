"""Basket membership (dim_basket_member) shared by window detection and the roll-up."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import polars as pl

from selloff.analytics.tables import ALL_MARKETS, require_columns
from selloff.markets import market_of_expr

MEMBER_SCHEMA: dict[str, pl.DataType] = {
    "basket_id": pl.Utf8(), "security_id": pl.Utf8(), "valid_from": pl.Date(), "valid_to": pl.Date()}


def normalize_basket_members(basket_members: pl.DataFrame) -> pl.LazyFrame:
    """(basket_id, security_id, valid_from, valid_to) with Date-typed validity.

    Missing validity columns mean "always a member"; all-null columns read from CSV
    arrive typed as Null and are cast so the date comparisons work.
    """
    require_columns(basket_members, "dim_basket_member", ("basket_id", "security_id"))
    cols = basket_members.collect_schema().names()
    return (
        basket_members.lazy()
        .with_columns(
            [
                (pl.col(c) if c in cols else pl.lit(None)).cast(pl.Date).alias(c)
                for c in ("valid_from", "valid_to")
            ]
        )
        .select("basket_id", "security_id", "valid_from", "valid_to")
    )


def valid_on(date: str | pl.Expr) -> pl.Expr:
    """Membership holds on `date`: a column name or a date expression (null bounds are
    open). The one rule of basket validity: detection, roll-up, factors and claims use it."""
    on = pl.col(date) if isinstance(date, str) else date
    return (pl.col("valid_from").is_null() | (pl.col("valid_from") <= on)) & (
        pl.col("valid_to").is_null() | (pl.col("valid_to") >= on)
    )


def members_on(basket_members: pl.DataFrame, basket_id: str, on: dt.date | None) -> list[str]:
    """Sorted security ids of `basket_id` valid on `on` (every member ever when None)."""
    rows = normalize_basket_members(basket_members).filter(pl.col("basket_id") == basket_id)
    if on is not None:
        rows = rows.filter(valid_on(pl.lit(on, pl.Date)))
    return sorted(rows.select("security_id").unique().collect()["security_id"].to_list())


def basket_markets(basket_members: pl.DataFrame) -> pl.DataFrame:
    """(basket_id, market): the members' market, or 'ALL' when they span several."""
    return (
        normalize_basket_members(basket_members)
        .with_columns(market_of_expr("security_id").alias("market"))
        .group_by("basket_id")
        .agg(pl.col("market").unique().sort())
        .with_columns(
            pl.when(pl.col("market").list.len() == 1)
            .then(pl.col("market").list.first())
            .otherwise(pl.lit(ALL_MARKETS))
            .alias("market")
        )
        .sort("basket_id")
        .collect()
    )


def basket_membership(decomposition: pl.DataFrame, basket_members: pl.DataFrame) -> pl.DataFrame:
    """(window_id, security_id, basket_id): memberships valid at each row's t1_date."""
    return (
        decomposition.lazy()
        .select("window_id", "security_id", "t1_date")
        .join(normalize_basket_members(basket_members), on="security_id", how="inner")
        .filter(valid_on("t1_date"))
        .select("window_id", "security_id", "basket_id")
        .unique()
        .sort("window_id", "basket_id", "security_id")
        .collect()
    )


def with_episode_baskets(basket_members: pl.DataFrame | None,
                         baskets: Mapping[str, Sequence[str]]) -> pl.DataFrame:
    """dim_basket_member plus an episode's `baskets` for the basket ids the data lacks
    (the data's own membership, with its validity dates, wins)."""
    base = (normalize_basket_members(basket_members).collect() if basket_members is not None
            else pl.DataFrame(schema=MEMBER_SCHEMA))
    have = set(base["basket_id"].unique().to_list())
    extra = [{"basket_id": b, "security_id": s, "valid_from": None, "valid_to": None}
             for b, members in baskets.items() if b not in have for s in members]
    if not extra:
        return base
    return pl.concat([base, pl.DataFrame(extra, schema=MEMBER_SCHEMA)])
