"""Roll-up of the security decomposition by group (`analytics.selloff_rollup`).

Group kinds: 'total' (group_id 'ALL'), 'market', 'is_ai' ('true'/'false'),
'sector_group', 'sector' (missing values grouped as 'unknown') and 'basket'. All but
'basket' partition the securities of a window; a security is in a basket when its
dim_basket_member row is valid at the security's t1 (valid_from/valid_to null = open),
so baskets may overlap and need not cover everything.
"""

from __future__ import annotations

import polars as pl

from selloff.analytics.baskets import basket_membership
from selloff.analytics.tables import (
    AMOUNT_COLUMNS,
    ROLLUP_SCHEMA,
    TOTAL_GROUP_ID,
    UNKNOWN_GROUP_ID,
    conform,
    empty,
    require_columns,
)


def _label(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Utf8).fill_null(UNKNOWN_GROUP_ID)


def rollup(
    decomposition: pl.DataFrame,
    securities: pl.DataFrame,
    basket_members: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Sum the decomposition amounts by window and group.

    Inputs: `decomposition` (selloff_decomposition), `securities` (dim_security:
    security_id, sector, sector_group, is_ai), `basket_members` (dim_basket_member; None =
    no basket rows). Output: `analytics.selloff_rollup`, with n_securities and
    share_of_total = group change_usd / the window's total change_usd (null when 0).
    """
    require_columns(decomposition, "selloff_decomposition",
                    ("window_id", "security_id", "market", "t1_date", *AMOUNT_COLUMNS))
    require_columns(securities, "dim_security", ("security_id", "sector", "sector_group", "is_ai"))
    if decomposition.height == 0:
        return empty(ROLLUP_SCHEMA)

    amounts = [pl.col(c) for c in AMOUNT_COLUMNS]
    d = decomposition.lazy().join(
        securities.lazy()
        .select("security_id", "sector", "sector_group", "is_ai")
        .unique(subset=["security_id"], keep="first"),
        on="security_id",
        how="left",
    )

    def kind(name: str, group_id: pl.Expr, frame: pl.LazyFrame = d) -> pl.LazyFrame:
        return frame.select(
            "window_id",
            pl.lit(name).alias("group_kind"),
            group_id.alias("group_id"),
            *amounts,
        )

    parts = [
        kind("total", pl.lit(TOTAL_GROUP_ID)),
        kind("market", _label("market")),
        kind("is_ai", pl.col("is_ai").cast(pl.Utf8).str.to_lowercase().fill_null(UNKNOWN_GROUP_ID)),
        kind("sector_group", _label("sector_group")),
        kind("sector", _label("sector")),
    ]
    if basket_members is not None and basket_members.height:
        members = basket_membership(decomposition, basket_members).lazy()
        in_baskets = decomposition.lazy().join(members, on=["window_id", "security_id"])
        parts.append(kind("basket", pl.col("basket_id"), in_baskets))

    grouped = (
        pl.concat(parts)
        .group_by("window_id", "group_kind", "group_id")
        .agg(pl.len().cast(pl.Int64).alias("n_securities"), *[a.sum() for a in amounts])
    )
    totals = grouped.filter(pl.col("group_kind") == "total").select(
        "window_id", pl.col("change_usd").alias("_total_change")
    )
    out = (
        grouped.join(totals, on="window_id", how="left")
        .with_columns(
            pl.when(pl.col("_total_change") != 0)
            .then(pl.col("change_usd") / pl.col("_total_change"))
            .otherwise(None)
            .alias("share_of_total")
        )
        .collect()
    )
    order = {k: i for i, k in enumerate(("total", "market", "is_ai", "sector_group", "sector", "basket"))}
    return (
        conform(out, ROLLUP_SCHEMA)
        .with_columns(pl.col("group_kind").replace_strict(order, return_dtype=pl.Int64).alias("_o"))
        .sort("window_id", "_o", "group_id")
        .drop("_o")
    )
