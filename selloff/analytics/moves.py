"""Every entity's moves in an episode: the one engine behind detected windows and claims.

`analytics.entity_moves` holds, for every security, basket and index of an episode's
markets, each day's and each calendar week's move in the episode's search periods, and its
move over every named window. The worst day and week in `selloff_windows` are the argmin
of these rows (`worst_moves`), and a claim about a worst day, a worst week or a named
window is a lookup of the same rows, so the two can never pick different weeks.

Unit convention (every analytics table): a return is a fraction (-0.0708 is -7.08 %);
an amount is in full currency units. Only claim verdicts show percent, converted once in
`selloff.claims.lookups`.

A move from close t0 to close t1 of one entity's *level series* (sessions in its data):

    return = level_t1 / level_t0 - 1
    change = sum over the sessions t in (t0, t1] of step_t

- security: level is the price chained on daily returns r_t = adj_t / adj_{t-1} where both
  days have an adjusted close, else close_t / close_{t-1}, anchored at the last close (so a raw-close stretch, like the
  real snapshot's US prices before 2025-02-28, is kept and a split inside an adjusted
  stretch is not mistaken for a fall); `basis` says which closes a move used. step_t is
  the market-cap change M_t - M_{t-1} (USD and local), null when either cap is missing.
- basket: level is the chain-linked USD cap of `windows.basket_level_series`; step_t is
  sum(M_i,t) - sum(M_i,prev) over the members with a cap at both ends of the step, so a
  member dropping in or out never shows as a move; with full coverage, change equals the
  basket cap at t1 minus the cap at t0.
- index: level is the close; no change.

Periods: a *day* is one session t1 whose previous session is t0; it is in a search period
when t1 is. A *week* is a calendar week (Mon-Sun): t0 the last close before its first
session, t1 its last session; it is in a search period when all its sessions are (a week
straddling either end is left out, since part of its move falls outside). A named *window*
runs from the entity's last close before `start` to its last close on or before `end`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import polars as pl

from selloff.analytics.baskets import basket_markets, normalize_basket_members, valid_on
from selloff.analytics.tables import MOVES_SCHEMA, conform, empty, require_columns
from selloff.markets import market_of_expr

# A level series: one entity's sessions, with the level, the step of money between
# consecutive sessions, and the price basis of each step (securities only).
LEVEL_SCHEMA: dict[str, pl.DataType] = {
    "entity_id": pl.Utf8(),
    "market": pl.Utf8(),
    "trade_date": pl.Date(),
    "level": pl.Float64(),
    "step_usd": pl.Float64(),
    "step_local": pl.Float64(),
    "n_members": pl.Int64(),
    "step_basis": pl.Utf8(),
}

ADJ, RAW, MIXED = "adj_close", "close", "adj_close where both ends have one, else close"


def security_levels(market_cap: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """`fct_market_cap_daily` (security_id, trade_date, close, adj_close, market_cap_usd,
    market_cap_local) -> level series of each security (see the module docstring). Without
    a cap column the steps are null: the prices alone give the returns (claims use that)."""
    require_columns(market_cap, "fct_market_cap_daily", ("security_id", "trade_date", "close"))
    names = market_cap.collect_schema().names()

    def optional(column: str) -> pl.Expr:
        return pl.col(column) if column in names else pl.lit(None, pl.Float64)

    adj, usd, local = optional("adj_close"), optional("market_cap_usd"), optional("market_cap_local")
    lf = (
        market_cap.lazy()
        .filter(pl.col("close").is_not_null() & (pl.col("close") > 0))
        .select("security_id", "trade_date", pl.col("close").cast(pl.Float64),
                adj.cast(pl.Float64).alias("adj_close"),
                usd.cast(pl.Float64).alias("market_cap_usd"),
                local.cast(pl.Float64).alias("mcap_local"))
        .sort("security_id", "trade_date")
    )
    prev = {c: pl.col(c).shift(1).over("security_id", order_by="trade_date")
            for c in ("market_cap_usd", "mcap_local")}
    out = (
        chained_close(lf)
        .with_columns(
            (pl.col("market_cap_usd") - prev["market_cap_usd"]).alias("step_usd"),
            (pl.col("mcap_local") - prev["mcap_local"]).alias("step_local"),
        )
        .select(pl.col("security_id").alias("entity_id"), market_of_expr("security_id").alias("market"),
                "trade_date", "level", "step_usd", "step_local",
                pl.lit(1, pl.Int64).alias("n_members"), "step_basis")
        .collect()
    )
    return conform(out, LEVEL_SCHEMA)


def chained_close(frame: pl.LazyFrame, by: str = "security_id") -> pl.LazyFrame:
    """`frame` (by, trade_date, close, adj_close; sorted) with `level`, the close chained on

        r_t = adj_t / adj_{t-1} if both days have an adjusted close, else close_t / close_{t-1}

    anchored at the last close (a back-adjusted price, whatever day the history starts),
    and `step_basis`, the closes each day's return used. The one definition of a
    security's return: moves, and the claims that read prices directly, use it."""
    prev = {c: pl.col(c).shift(1).over(by, order_by="trade_date") for c in ("close", "adj_close")}
    both_adj = pl.col("adj_close").is_not_null() & prev["adj_close"].is_not_null()
    return (
        frame.with_columns(
            pl.when(prev["close"].is_null()).then(None)
            .when(both_adj).then(pl.col("adj_close") / prev["adj_close"])
            .otherwise(pl.col("close") / prev["close"]).alias("ratio"),
            pl.when(prev["close"].is_null()).then(None)
            .when(both_adj).then(pl.lit(ADJ)).otherwise(pl.lit(RAW)).alias("step_basis"),
        )
        .with_columns(pl.col("ratio").fill_null(1.0).cum_prod()
                      .over(by, order_by="trade_date").alias("chain"))
        .with_columns((pl.col("chain") * (pl.col("close") / pl.col("chain")).last()
                       .over(by, order_by="trade_date")).alias("level"))
        .drop("ratio", "chain")
    )


def index_levels(index_levels_daily: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """`fct_index_levels_daily` -> level series of each index (its close)."""
    require_columns(index_levels_daily, "fct_index_levels_daily", ("index_id", "trade_date", "close"))
    out = (
        index_levels_daily.lazy()
        .filter(pl.col("close").is_not_null() & (pl.col("close") > 0))
        .select(pl.col("index_id").alias("entity_id"), market_of_expr("index_id").alias("market"),
                "trade_date", pl.col("close").cast(pl.Float64).alias("level"),
                pl.lit(None, pl.Float64).alias("step_usd"),
                pl.lit(None, pl.Float64).alias("step_local"),
                pl.lit(None, pl.Int64).alias("n_members"), pl.lit(None, pl.Utf8).alias("step_basis"))
        .unique(["entity_id", "trade_date"], keep="last")
        .sort("entity_id", "trade_date")
        .collect()
    )
    return conform(out, LEVEL_SCHEMA)


def basket_levels(market_cap: pl.DataFrame | pl.LazyFrame,
                  basket_members: pl.DataFrame) -> pl.DataFrame:
    """Chain-linked USD market cap of each basket and its money step per session.

    The level moves from each date to the next by sum(M_i,t) / sum(M_i,prev) over the
    members valid on t with a cap on t and an earlier cap (M_i,prev, the member's own last
    value), the running product anchored so the last date's level is that day's cap;
    step_usd is the numerator minus the denominator. A member's move across a gap in its own data (a
    holiday of its market in a mixed basket) thus lands on the day its data resumes.
    n_members counts the members with a cap that day.
    """
    require_columns(market_cap, "fct_market_cap_daily",
                    ("security_id", "trade_date", "market_cap_usd"))
    # Order codes of the security ids (ranks among the members, so the same order as
    # the ids): the sort below compares integers, not millions of id strings, in the same
    # order. It keeps basket_id, which the group-by after it names: grouping on the
    # sort's leading keys sums each group in the sorted order whatever order the rows
    # came in (grouped on other keys, the sums' last bits follow the input's order).
    members = normalize_basket_members(basket_members).with_columns(
        pl.col("security_id").rank("dense").alias("__security_order"))
    caps = (
        market_cap.lazy()
        .select("security_id", "trade_date", pl.col("market_cap_usd").cast(pl.Float64))
        .filter(pl.col("market_cap_usd").is_not_null() & (pl.col("market_cap_usd") > 0))
        .join(members.select("security_id").unique(), on="security_id", how="semi")
        .with_columns(pl.col("market_cap_usd").shift(1).over("security_id", order_by="trade_date")
                      .alias("prev_mcap"))
    )
    linked = pl.col("prev_mcap").is_not_null()
    steps = (
        members.join(caps, on="security_id", how="inner")
        .filter(valid_on("trade_date"))
        # A fixed order within each group: float sums then do not vary from run to run.
        .sort("basket_id", "trade_date", "__security_order")
        .group_by("basket_id", "trade_date", maintain_order=True)
        .agg(
            pl.len().cast(pl.Int64).alias("n_members"),
            pl.col("market_cap_usd").sum().alias("cap"),
            pl.col("market_cap_usd").filter(linked).sum().alias("num"),
            pl.col("prev_mcap").filter(linked).sum().alias("den"),
            # Summed member by member: the difference of two sums of caps would lose the
            # step's digits to cancellation (a 1e8 step of a 1e12 basket).
            (pl.col("market_cap_usd") - pl.col("prev_mcap")).filter(linked).sum().alias("step"),
        )
        .sort("basket_id", "trade_date")
        .with_columns(first=pl.int_range(pl.len()).over("basket_id", order_by="trade_date") == 0)
        .with_columns(
            # The first date is the base: its step would reach before the basket's history.
            pl.when(pl.col("first") | (pl.col("den") <= 0)).then(1.0)
            .otherwise(pl.col("num") / pl.col("den")).alias("factor"),
            pl.when(pl.col("first")).then(None).otherwise(pl.col("step")).alias("step_usd"),
        )
        .with_columns(pl.col("factor").cum_prod().over("basket_id", order_by="trade_date")
                      .alias("chain"))
        # Anchored at the last date's cap: the level is the basket's USD cap, chain-linked
        # back from its last day, whatever day its history starts.
        .with_columns((pl.col("chain") * (pl.col("cap") / pl.col("chain")).last()
                       .over("basket_id", order_by="trade_date")).alias("level"))
        .join(basket_markets(basket_members).lazy(), on="basket_id", how="left")
        .select(pl.col("basket_id").alias("entity_id"), "market", "trade_date", "level",
                "step_usd", pl.lit(None, pl.Float64).alias("step_local"), "n_members",
                pl.lit(None, pl.Utf8).alias("step_basis"))
        .sort("entity_id", "trade_date")
        .collect()
    )
    return conform(steps, LEVEL_SCHEMA)


def _basis(col: str = "step_basis") -> pl.Expr:
    uniq = pl.col(col).drop_nulls().unique()
    return (pl.when(uniq.len() == 0).then(pl.lit(None, pl.Utf8))
            .when(uniq.len() == 1).then(uniq.first()).otherwise(pl.lit(MIXED)))


def _sum_or_null(col: str) -> pl.Expr:
    # A move's money change is only known when every step of it is.
    return pl.when(pl.col(col).null_count() == 0).then(pl.col(col).sum()).otherwise(None)


def level_moves(levels: pl.DataFrame, entity_kind: str,
                periods: Iterable[tuple[dt.date, dt.date]],
                windows: Sequence[tuple[str, dt.date, dt.date]] = ()) -> pl.DataFrame:
    """Day, week and named-window moves of every entity of a level series.

    `periods` are the search periods (the union of the days they cover is used, and a
    week must lie inside one of them); `windows` are (window_id, start, end). Rows in
    `MOVES_SCHEMA` without episode_id (the caller adds it).
    """
    require_columns(levels, "level series", tuple(LEVEL_SCHEMA))
    periods = list(periods)
    if levels.height == 0 or not (periods or windows):
        return empty(MOVES_SCHEMA)
    lf = (
        levels.lazy()
        .sort("entity_id", "trade_date")
        .with_columns(pl.col("trade_date").shift(1).over("entity_id", order_by="trade_date")
                      .alias("prev_date"),
                      pl.col("level").shift(1).over("entity_id", order_by="trade_date")
                      .alias("prev_level"))
    )
    in_any = pl.lit(False)
    for start, end in periods:
        in_any = in_any | pl.col("trade_date").is_between(start, end)
    day_rows = lf.filter(in_any & pl.col("prev_date").is_not_null()).select(
        "entity_id", "market", pl.lit("day").alias("period"), pl.lit(None, pl.Utf8).alias("window_id"),
        pl.col("trade_date").alias("start_date"), pl.col("trade_date").alias("end_date"),
        pl.col("prev_date").alias("t0_date"), pl.col("trade_date").alias("t1_date"),
        pl.col("prev_level").alias("level_t0"), pl.col("level").alias("level_t1"),
        pl.col("step_usd").alias("change_usd"), pl.col("step_local").alias("change_local"),
        "n_members", pl.col("step_basis").alias("basis"),
    )
    weeks = (
        lf.with_columns(pl.col("trade_date").dt.truncate("1w").alias("week"))
        .group_by("entity_id", "market", "week")
        .agg(
            pl.col("trade_date").min().alias("start_date"),
            pl.col("trade_date").max().alias("end_date"),
            pl.col("level").sort_by("trade_date").last().alias("level_t1"),
            pl.col("n_members").sort_by("trade_date").last(),
            _sum_or_null("step_usd").alias("change_usd"),
            _sum_or_null("step_local").alias("change_local"),
            _basis().alias("basis"),
        )
        .with_columns(
            pl.col("end_date").shift(1).over("entity_id", order_by="week").alias("t0_date"),
            pl.col("level_t1").shift(1).over("entity_id", order_by="week").alias("level_t0"),
        )
    )
    inside = pl.lit(False)
    for start, end in periods:
        inside = inside | ((pl.col("start_date") >= start) & (pl.col("end_date") <= end))
    week_rows = weeks.filter(inside & pl.col("t0_date").is_not_null()).select(
        "entity_id", "market", pl.lit("week").alias("period"), pl.lit(None, pl.Utf8).alias("window_id"),
        "start_date", "end_date", "t0_date", pl.col("end_date").alias("t1_date"),
        "level_t0", "level_t1", "change_usd", "change_local", "n_members", "basis",
    )
    parts = [day_rows, week_rows] if periods else []
    if windows:
        spans = pl.DataFrame({"window_id": [w[0] for w in windows],
                              "w_start": [w[1] for w in windows],
                              "w_end": [w[2] for w in windows]},
                             schema={"window_id": pl.Utf8, "w_start": pl.Date, "w_end": pl.Date})
        joined = lf.join(spans.lazy(), how="cross")
        t0 = (joined.filter(pl.col("trade_date") < pl.col("w_start"))
              .group_by("entity_id", "window_id")
              .agg(pl.col("trade_date").max().alias("t0_date"),
                   pl.col("level").sort_by("trade_date").last().alias("level_t0")))
        inner = joined.join(t0, on=["entity_id", "window_id"]).filter(
            (pl.col("trade_date") > pl.col("t0_date")) & (pl.col("trade_date") <= pl.col("w_end")))
        moved = (inner.group_by("entity_id", "window_id")
                 .agg(pl.col("trade_date").max().alias("t1_date"),
                      pl.col("level").sort_by("trade_date").last().alias("level_t1"),
                      pl.col("n_members").sort_by("trade_date").last(),
                      _sum_or_null("step_usd").alias("change_usd"),
                      _sum_or_null("step_local").alias("change_local"),
                      _basis().alias("basis")))
        window_rows = (
            t0.join(spans.lazy(), on="window_id")
            .join(moved, on=["entity_id", "window_id"], how="left")
            .join(lf.select("entity_id", "market").unique(), on="entity_id")
            # No session inside the window: the entity did not move (t1 = t0).
            .with_columns(pl.col("t1_date").fill_null(pl.col("t0_date")),
                          pl.col("level_t1").fill_null(pl.col("level_t0")))
            .select("entity_id", "market", pl.lit("window").alias("period"), "window_id",
                    pl.col("w_start").alias("start_date"), pl.col("w_end").alias("end_date"),
                    "t0_date", "t1_date", "level_t0", "level_t1", "change_usd", "change_local",
                    "n_members", "basis")
        )
        parts.append(window_rows)
    out = (pl.concat(parts, how="vertical_relaxed")
           .with_columns(pl.lit(entity_kind).alias("entity_kind"),
                         pl.lit(None, pl.Utf8).alias("episode_id"),
                         (pl.col("level_t1") / pl.col("level_t0") - 1.0).alias("return"))
           .collect())
    return conform(out, MOVES_SCHEMA).sort("entity_kind", "entity_id", "period", "t1_date",
                                           "window_id", nulls_last=True)


def worst_moves(moves: pl.DataFrame, period: str, rank_by: str = "return",
                start: dt.date | None = None, end: dt.date | None = None) -> pl.DataFrame:
    """Each entity's worst `period` move ('day' or 'week') by `rank_by` (ascending; ties
    go to the earlier move), among moves inside [start, end] when given (a week counts
    when all its sessions are inside, as in `level_moves`)."""
    rows = moves.filter((pl.col("period") == period) & pl.col(rank_by).is_not_null()
                        & pl.col(rank_by).is_not_nan())
    if start is not None:
        rows = rows.filter(pl.col("start_date") >= start)
    if end is not None:
        rows = rows.filter(pl.col("end_date") <= end)
    keys = [c for c in ("episode_id", "entity_kind", "entity_id") if c in rows.columns]
    return (rows.sort([*keys, rank_by, "start_date"])
            .group_by(keys, maintain_order=True).first())
