"""Windows found in the data, from the one engine of moves (selloff.analytics.moves).

For each index and basket of an episode's markets: its worst day and worst calendar week
(the argmin of its `entity_moves` rows, so a claim about a worst week finds this week) and
its peak-to-trough drawdown with the trough in the search period. `measure_moves` builds
an episode's `entity_moves` and `selloff_windows` together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import polars as pl

from selloff.analytics.moves import (
    basket_levels,
    index_levels,
    level_moves,
    security_levels,
    worst_moves,
)
from selloff.analytics.tables import (
    ALL_MARKETS,
    MARKETS,
    MOVES_SCHEMA,
    WINDOWS_SCHEMA,
    conform,
    empty,
    require_columns,
)
from selloff.analytics.windows import (
    BASIS_BASKET_DAY,
    BASIS_BASKET_DRAWDOWN,
    BASIS_BASKET_WEEK,
    BASIS_INDEX_DAY,
    BASIS_INDEX_DRAWDOWN,
    BASIS_INDEX_WEEK,
    SERIES_SCHEMA,
    named_windows_frame,
)
from selloff.episode_model import WindowConfig


def _window_rows(frame: pl.LazyFrame, kind: str, id_prefix: str, basis: str) -> pl.LazyFrame:
    return frame.select(
        pl.concat_str(pl.lit(f"{kind}:{id_prefix}"), pl.col("entity_id")).alias("window_id"),
        pl.col("market"),
        pl.lit(kind).alias("kind"),
        pl.col("start_date"),
        pl.col("end_date"),
        pl.lit(basis).alias("basis"),
        pl.col("entity_id"),
    )


def detect_worst_windows(
    series: pl.DataFrame,
    *,
    search_start: dt.date,
    search_end: dt.date,
    id_prefix: str = "",
    basis_day: str = BASIS_INDEX_DAY,
    basis_week: str = BASIS_INDEX_WEEK,
) -> pl.DataFrame:
    """Worst day and worst calendar week of each entity of a level series.

    The moves are those of `selloff.analytics.moves` (the engine the claims read), so a
    worst week here is the worst week a claim finds: a day is eligible when it lies in
    [search_start, search_end] and the entity has an earlier close; a week when all of its
    sessions in the data lie in the search period and an earlier week has a close. Ties go
    to the earlier date. window_id is `<kind>:<id_prefix><entity_id>`.
    """
    require_columns(series, "level series", tuple(SERIES_SCHEMA))
    levels = series.select(
        *SERIES_SCHEMA, pl.lit(None, pl.Float64).alias("step_usd"),
        pl.lit(None, pl.Float64).alias("step_local"), pl.lit(None, pl.Int64).alias("n_members"),
        pl.lit(None, pl.Utf8).alias("step_basis"))
    moves = level_moves(levels, "entity", [(search_start, search_end)])
    return worst_windows(moves, search_start, search_end, id_prefix, basis_day, basis_week)


def worst_windows(moves: pl.DataFrame, search_start: dt.date, search_end: dt.date,
                  id_prefix: str, basis_day: str, basis_week: str) -> pl.DataFrame:
    """`selloff_windows` rows of the worst day and week of each entity of `moves`."""
    parts = [
        _window_rows(worst_moves(moves, period, start=search_start, end=search_end).lazy(),
                     kind, id_prefix, basis).collect()
        for period, kind, basis in (("day", "worst_day", basis_day),
                                    ("week", "worst_week", basis_week))
    ]
    return conform(pl.concat(parts), WINDOWS_SCHEMA).sort("window_id", "market")


def detect_drawdown_windows(
    series: pl.DataFrame,
    *,
    search_start: dt.date,
    search_end: dt.date,
    lookback_start: dt.date,
    id_prefix: str = "basket:",
    basis: str | None = None,
) -> pl.DataFrame:
    """Peak-to-trough drawdown of each entity, with the trough in the search period.

    The trough is the close in [search_start, search_end] furthest below the running
    maximum since `lookback_start`; the peak is the latest close before it at that maximum.
    Searching the trough in the sell-off period (rather than over all the data) keeps an
    earlier, deeper fall (April 2025) from standing in for this one. `start_date` is the
    entity's next date after the peak, so t0 is the peak close; `end_date` is the trough.
    An entity that closes at a new high throughout has no drawdown and no row.
    """
    require_columns(series, "level series", tuple(SERIES_SCHEMA))
    basis = basis or BASIS_BASKET_DRAWDOWN.format(lookback=lookback_start.isoformat())
    lf = (
        series.lazy()
        .filter(
            pl.col("level").is_not_null()
            & (pl.col("level") > 0)
            & pl.col("trade_date").is_between(lookback_start, search_end)
        )
        .with_columns(
            pl.col("level").cum_max().over("entity_id", order_by="trade_date").alias("peak_level"),
            pl.col("trade_date").shift(-1).over("entity_id", order_by="trade_date").alias("next_date"),
        )
    )
    troughs = (
        lf.filter(pl.col("trade_date") >= search_start)
        .with_columns((pl.col("level") / pl.col("peak_level") - 1.0).alias("drawdown"))
        .filter(pl.col("drawdown") < 0)
        .sort("entity_id", "drawdown", "trade_date")
        .group_by("entity_id", maintain_order=True)
        .first()
        .select("entity_id", "market", pl.col("trade_date").alias("end_date"), "peak_level")
    )
    peaks = (
        lf.join(troughs.select("entity_id", "end_date", "peak_level"), on="entity_id")
        .filter((pl.col("trade_date") < pl.col("end_date")) & (pl.col("level") == pl.col("peak_level_right")))
        .group_by("entity_id")
        .agg(pl.col("next_date").sort_by("trade_date").last().alias("start_date"))
    )
    out = _window_rows(troughs.join(peaks, on="entity_id"), "drawdown", id_prefix, basis).collect()
    return conform(out, WINDOWS_SCHEMA).sort("window_id", "market")


def selloff_windows(
    config: WindowConfig,
    index_levels_daily: pl.DataFrame | None,
    market_cap: pl.DataFrame | None,
    basket_members: pl.DataFrame | None,
    *,
    markets: tuple[str, ...] = MARKETS,
) -> pl.DataFrame:
    """`analytics.selloff_windows` of one episode (without episode_id) from the marts:
    the windows half of `measure_moves`, over the detection period."""
    return measure_moves(config, [(config.search_start, config.search_end)], markets,
                         index_levels_daily, market_cap, basket_members, securities=False)[1]


def episode_windows(config: WindowConfig, moves: pl.DataFrame, index_series: pl.DataFrame,
                    basket_series: pl.DataFrame, markets: tuple[str, ...]) -> pl.DataFrame:
    """One episode's `analytics.selloff_windows` (without episode_id), from its
    `entity_moves` and the level series they were computed on.

    Named windows (one row per market of the episode); the worst day and week of every
    index and basket, read off `moves` (the rows claims read); the peak-to-trough drawdown
    of every basket and index, its trough in the search period.
    """
    parts = [named_windows_frame(config.windows, markets)]
    search = (config.search_start, config.search_end)
    for kind, prefix, day, week in (("index", "", BASIS_INDEX_DAY, BASIS_INDEX_WEEK),
                                    ("basket", "basket:", BASIS_BASKET_DAY, BASIS_BASKET_WEEK)):
        rows = moves.filter(pl.col("entity_kind") == kind)
        if rows.height:
            parts.append(worst_windows(rows, *search, prefix, day, week))
    drawdown = {"search_start": config.search_start, "search_end": config.search_end,
                "lookback_start": config.drawdown_lookback_start}
    if basket_series.height:
        parts.append(detect_drawdown_windows(basket_series.select(SERIES_SCHEMA.keys()),
                                             **drawdown))
    if index_series.height:
        parts.append(detect_drawdown_windows(
            index_series.select(SERIES_SCHEMA.keys()), **drawdown, id_prefix="",
            basis=BASIS_INDEX_DRAWDOWN.format(lookback=config.drawdown_lookback_start)))
    out = pl.concat(parts)
    dup = out.filter(pl.struct("window_id", "market").is_duplicated())
    if dup.height:
        raise ValueError(
            "selloff_windows: duplicate (window_id, market): "
            f"{dup.select('window_id', 'market').unique().rows()[:10]} "
            "(a named window id clashes with a detected one?)"
        )
    return out


def _in_markets(frame: pl.DataFrame, markets: Sequence[str]) -> pl.DataFrame:
    # A basket of several markets ("ALL") belongs to every episode holding one of them.
    return frame.filter(pl.col("market").is_in([*markets, ALL_MARKETS]))


def measure_moves(config: WindowConfig, periods: Sequence[tuple[dt.date, dt.date]],
                  markets: Sequence[str], index_daily: pl.DataFrame | None,
                  market_cap: pl.DataFrame | None, basket_members: pl.DataFrame | None,
                  securities_since: dt.date | None = None,
                  securities: bool = True) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(entity_moves, selloff_windows) of one episode, without episode_id.

    Every index, security and basket of `markets` gets its day and week moves in
    `periods` and its move over each named window of `config`; the worst day and week of
    each index and basket are read off those moves, drawdowns off the level series, and
    each drawdown is added as a window move of its entity. `securities_since` trims the
    securities' history (the basket members keep theirs: a drawdown's peak may be early);
    `securities=False` leaves the securities out (windows need only indexes and baskets).
    """
    periods = list(periods)
    named = [(w.window_id, w.start, w.end) for w in config.windows]
    parts = []
    idx = empty(SERIES_SCHEMA)
    if index_daily is not None and index_daily.height:
        idx = _in_markets(index_levels(index_daily), markets)
        parts.append(level_moves(idx, "index", periods, named))
    baskets = empty(SERIES_SCHEMA)
    if market_cap is not None and market_cap.height:
        recent = (market_cap if securities_since is None
                  else market_cap.filter(pl.col("trade_date") >= securities_since))
        if securities:
            sec = _in_markets(security_levels(recent), markets)
            parts.append(level_moves(sec, "security", periods, named))
        if basket_members is not None and basket_members.height:
            baskets = _in_markets(basket_levels(market_cap, basket_members), markets)
            parts.append(level_moves(baskets, "basket", periods, named))
    moves = (conform(pl.concat(parts, how="vertical_relaxed"), MOVES_SCHEMA) if parts
             else empty(MOVES_SCHEMA))
    found = episode_windows(config, moves, idx, baskets, tuple(markets))
    return pl.concat([moves, drawdown_moves(found, idx, baskets)], how="vertical_relaxed"), found


def drawdown_moves(windows: pl.DataFrame, index_series: pl.DataFrame,
                   basket_series: pl.DataFrame) -> pl.DataFrame:
    """Each detected drawdown as a `window` move of its own entity (window_id the
    drawdown's), so its fall from peak to trough is read like any other move."""
    out = [empty(MOVES_SCHEMA)]
    drawdowns = windows.filter(pl.col("kind") == "drawdown")
    for kind, series in (("index", index_series), ("basket", basket_series)):
        if series.height == 0:
            continue
        for row in drawdowns.filter(pl.col("entity_id").is_in(
                series["entity_id"].unique().to_list())).iter_rows(named=True):
            own = series.filter(pl.col("entity_id") == row["entity_id"])
            out.append(level_moves(own, kind, (), [(row["window_id"], row["start_date"],
                                                     row["end_date"])]))
    return conform(pl.concat(out, how="vertical_relaxed"), MOVES_SCHEMA)


