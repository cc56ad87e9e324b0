"""Sell-off windows: named ones from an episode (selloff.episode), others found in the data.

A window is a pair of dates `[start_date, end_date]` per market. Its decomposition runs
from t0, the last close strictly before `start_date` in that market, to t1, the last close
on or before `end_date` (`window_bounds`). The detected windows follow the conventions of
`../shared/seed/CLAIMS.md`: a day is close to close; a week is an ISO calendar week
(Mon-Sun), from the last close of the previous week to the last close of the week, with
`start_date`/`end_date` its first/last session in the data so that t0 is that previous
close. A drawdown runs from the peak close (t0) to the trough close (t1).

Every detector works on a *level series* `(entity_id, market, trade_date, level)`: an
index's close (`index_level_series`) or a chain-linked basket market cap
(`basket_level_series`), so indexes and baskets are searched by the same code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from selloff.analytics.baskets import basket_markets, normalize_basket_members, valid_on
from selloff.analytics.moves import (
    basket_levels,
    index_levels,
    level_moves,
    security_levels,
    worst_moves,
)
from selloff.analytics.schemas import (
    ALL_MARKETS,
    BOUNDS_SCHEMA,
    MARKETS,
    MOVES_SCHEMA,
    WINDOWS_SCHEMA,
    conform,
    empty,
    require_columns,
)
from selloff.markets import market_of_expr

SERIES_SCHEMA: dict[str, pl.DataType] = {
    "entity_id": pl.Utf8(),
    "market": pl.Utf8(),
    "trade_date": pl.Date(),
    "level": pl.Float64(),
}

BASIS_INDEX_DAY = "index return, close to close"
BASIS_INDEX_WEEK = "index return, last close of previous week to last close of week"
BASIS_BASKET_DAY = (
    "basket market cap USD, close to close, over members with a market cap at both ends"
)
BASIS_BASKET_WEEK = (
    "basket market cap USD, last close of previous week to last close of week, chain-linked "
    "over members with a market cap at both ends of each day"
)
BASIS_BASKET_DRAWDOWN = (
    "basket market cap USD, peak close (t0) to trough close, peak since {lookback}, "
    "chain-linked over members with a market cap at both ends of each day"
)
BASIS_INDEX_DRAWDOWN = "index close, peak close (t0) to trough close, peak since {lookback}"
BASIS_NAMED = "config"


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class NamedWindow:
    window_id: str
    start: dt.date
    end: dt.date
    main: bool = False
    description: str = ""


@dataclass(frozen=True)
class WindowConfig:
    """An episode's named windows plus where windows are detected (selloff.episode)."""

    windows: tuple[NamedWindow, ...]
    search_start: dt.date
    search_end: dt.date
    drawdown_lookback_start: dt.date

    @property
    def main(self) -> NamedWindow:
        return next(w for w in self.windows if w.main)


DEFAULT_SEARCH_START = dt.date(2025, 10, 27)
DEFAULT_SEARCH_END = dt.date(2025, 11, 28)
DEFAULT_DRAWDOWN_LOOKBACK_START = dt.date(2025, 1, 1)


def named_windows_frame(
    windows: list[NamedWindow] | tuple[NamedWindow, ...],
    markets: tuple[str, ...] = MARKETS,
) -> pl.DataFrame:
    """One row per named window and market: kind 'named', basis 'config', no entity."""
    rows = [
        {
            "window_id": w.window_id,
            "market": m,
            "kind": "named",
            "start_date": w.start,
            "end_date": w.end,
            "basis": BASIS_NAMED,
            "entity_id": None,
        }
        for w in windows
        for m in markets
    ]
    return pl.DataFrame(rows, schema=WINDOWS_SCHEMA) if rows else empty(WINDOWS_SCHEMA)


# --------------------------------------------------------------------------- level series


def index_level_series(index_levels: pl.DataFrame) -> pl.DataFrame:
    """`fct_index_levels_daily` -> level series of each index (its close)."""
    require_columns(index_levels, "fct_index_levels_daily", ("index_id", "trade_date", "close"))
    out = (
        index_levels.lazy()
        .filter(pl.col("close").is_not_null() & (pl.col("close") > 0))
        .select(
            pl.col("index_id").alias("entity_id"),
            market_of_expr("index_id", index_levels).alias("market"),
            pl.col("trade_date"),
            pl.col("close").cast(pl.Float64).alias("level"),
        )
        .sort("entity_id", "trade_date")
        .collect()
    )
    return conform(out, SERIES_SCHEMA)


def basket_level_series(market_cap: pl.DataFrame, basket_members: pl.DataFrame) -> pl.DataFrame:
    """Chain-linked USD market cap of each basket, as a level series.

    Members lack data on some days (holidays of their own market in a mixed basket, a
    missing share count or FX rate, a suspension). Summing whatever members have a value
    would make the sum jump when one drops in or out. So the basket moves from each of
    its dates to the next by the ratio `sum(M_i,t) / sum(M_i,prev)` over the members that
    are valid on t, have `market_cap_usd` on t, and have an earlier value (`M_i,prev`, the
    member's own last value before t); the level is the running product of these steps
    (first date = 1). A member's move across a gap in its data thus lands on the day its
    data resumes, which is when its market traded.

    Columns: entity_id (= basket_id), market (see `basket_markets`), trade_date, level,
    market_cap_usd (plain sum over valid members with a value that day), n_members.
    """
    require_columns(market_cap, "fct_market_cap_daily",
                    ("security_id", "trade_date", "market_cap_usd"))
    members = normalize_basket_members(basket_members)
    caps = (
        market_cap.lazy()
        .select("security_id", "trade_date", pl.col("market_cap_usd").cast(pl.Float64))
        .filter(pl.col("market_cap_usd").is_not_null() & (pl.col("market_cap_usd") > 0))
        .join(members.select("security_id").unique(), on="security_id", how="semi")
        .with_columns(
            pl.col("market_cap_usd")
            .shift(1)
            .over("security_id", order_by="trade_date")
            .alias("prev_mcap")
        )
    )
    steps = (
        members.join(caps, on="security_id", how="inner")
        .filter(valid_on("trade_date"))
        .group_by("basket_id", "trade_date")
        .agg(
            pl.col("market_cap_usd").sum(),
            pl.len().cast(pl.Int64).alias("n_members"),
            pl.col("market_cap_usd").filter(pl.col("prev_mcap").is_not_null()).sum().alias("num"),
            pl.col("prev_mcap").filter(pl.col("prev_mcap").is_not_null()).sum().alias("den"),
        )
        .with_columns(
            pl.when(pl.col("den") > 0)
            .then(pl.col("num") / pl.col("den"))
            .otherwise(1.0)
            .alias("factor")
        )
    )
    # The first date of each basket is the base (level 1): its step, if any, reaches back
    # before the basket's own history.
    out = (
        steps.sort("basket_id", "trade_date")
        .with_columns(
            pl.when(pl.int_range(pl.len()).over("basket_id", order_by="trade_date") == 0)
            .then(1.0)
            .otherwise(pl.col("factor"))
            .alias("factor")
        )
        .with_columns(
            pl.col("factor").cum_prod().over("basket_id", order_by="trade_date").alias("level")
        )
        .join(basket_markets(basket_members).lazy(), on="basket_id", how="left")
        .select(
            pl.col("basket_id").alias("entity_id"),
            "market",
            "trade_date",
            "level",
            "market_cap_usd",
            "n_members",
        )
        .sort("entity_id", "trade_date")
        .collect()
    )
    return out


# --------------------------------------------------------------------------- detection


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
    search_start: dt.date = DEFAULT_SEARCH_START,
    search_end: dt.date = DEFAULT_SEARCH_END,
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
    search_start: dt.date = DEFAULT_SEARCH_START,
    search_end: dt.date = DEFAULT_SEARCH_END,
    lookback_start: dt.date = DEFAULT_DRAWDOWN_LOOKBACK_START,
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
    index_levels: pl.DataFrame | None,
    market_cap: pl.DataFrame | None,
    basket_members: pl.DataFrame | None,
    *,
    markets: tuple[str, ...] = MARKETS,
) -> pl.DataFrame:
    """The whole `analytics.selloff_windows` table.

    Named windows (one row per market), then for each index of `fct_index_levels_daily`
    its worst day and week, and for each basket of `dim_basket_member` (market cap from
    `fct_market_cap_daily`) its worst day, worst week and drawdown. A missing input
    (None or empty) just contributes no detected windows.
    """
    parts = [named_windows_frame(config.windows, markets)]
    search = {"search_start": config.search_start, "search_end": config.search_end}
    if index_levels is not None and index_levels.height:
        parts.append(detect_worst_windows(index_level_series(index_levels), **search))
    if (market_cap is not None and market_cap.height
            and basket_members is not None and basket_members.height):
        baskets = basket_level_series(market_cap, basket_members).select(SERIES_SCHEMA.keys())
        parts.append(
            detect_worst_windows(baskets, **search, id_prefix="basket:",
                                 basis_day=BASIS_BASKET_DAY, basis_week=BASIS_BASKET_WEEK)
        )
        parts.append(
            detect_drawdown_windows(baskets, **search,
                                    lookback_start=config.drawdown_lookback_start)
        )
    out = pl.concat(parts)
    dup = out.filter(pl.struct("window_id", "market").is_duplicated())
    if dup.height:
        raise ValueError(
            "selloff_windows: duplicate (window_id, market): "
            f"{dup.select('window_id', 'market').unique().rows()[:10]} "
            "(a named window id clashes with a detected one?)"
        )
    return out


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
                  securities_since: dt.date | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(entity_moves, selloff_windows) of one episode, without episode_id.

    Every index, security and basket of `markets` gets its day and week moves in
    `periods` and its move over each named window of `config`; the worst day and week of
    each index and basket are read off those moves, drawdowns off the level series, and
    each drawdown is added as a window move of its entity. `securities_since` trims the
    securities' history (the basket members keep theirs: a drawdown's peak may be early).
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


# --------------------------------------------------------------------------- t0 / t1


def data_trading_days(market_cap: pl.DataFrame) -> pl.DataFrame:
    """(market, trade_date): the days on which some security of the market has a close."""
    require_columns(market_cap, "fct_market_cap_daily", ("security_id", "trade_date", "close"))
    return (
        market_cap.lazy()
        .filter(pl.col("close").is_not_null())
        .select(market_of_expr("security_id", market_cap).alias("market"), "trade_date")
        .unique()
        .sort("market", "trade_date")
        .collect()
    )


def calendar_trading_days(
    markets: tuple[str, ...], start: dt.date, end: dt.date
) -> pl.DataFrame:
    """(market, trade_date) from the exchange calendars (`selloff.calendars`)."""
    # Imported here: exchange_calendars is slow to import and only this helper needs it.
    from selloff.calendars import trading_days

    frames = [
        pl.DataFrame({"market": m, "trade_date": trading_days(m, start, end)},
                     schema={"market": pl.Utf8(), "trade_date": pl.Date()})
        for m in markets
    ]
    return pl.concat(frames) if frames else pl.DataFrame(schema={"market": pl.Utf8(),
                                                                  "trade_date": pl.Date()})


def window_bounds(windows: pl.DataFrame, trading_days: pl.DataFrame) -> pl.DataFrame:
    """(window_id, market, t0_date, t1_date) for every window row and market.

    t0 = last trading day strictly before start_date, t1 = last trading day on or before
    end_date, both in that market's `trading_days` (market, trade_date). A window with
    market 'ALL' gets one row per market of `trading_days`. t0/t1 are null when no such
    day exists; t1 == t0 when the market has no session inside the window.
    """
    require_columns(windows, "selloff_windows", ("window_id", "market", "start_date", "end_date"))
    require_columns(trading_days, "trading days", ("market", "trade_date"))
    days = trading_days.lazy().select("market", pl.col("trade_date").cast(pl.Date)).unique()
    w = windows.lazy().select("window_id", "market", "start_date", "end_date")
    every_market = days.select("market").unique()
    expanded = pl.concat(
        [
            w.filter(pl.col("market") != ALL_MARKETS),
            w.filter(pl.col("market") == ALL_MARKETS).drop("market").join(every_market, how="cross")
            .select("window_id", "market", "start_date", "end_date"),
        ]
    ).unique(subset=["window_id", "market"], keep="first", maintain_order=True)
    joined = expanded.join(days, on="market", how="inner")
    t0 = (
        joined.filter(pl.col("trade_date") < pl.col("start_date"))
        .group_by("window_id", "market")
        .agg(pl.col("trade_date").max().alias("t0_date"))
    )
    t1 = (
        joined.filter(pl.col("trade_date") <= pl.col("end_date"))
        .group_by("window_id", "market")
        .agg(pl.col("trade_date").max().alias("t1_date"))
    )
    out = (
        expanded.join(t0, on=["window_id", "market"], how="left")
        .join(t1, on=["window_id", "market"], how="left")
        .sort("window_id", "market")
        .collect()
    )
    return conform(out, BOUNDS_SCHEMA) if out.height else empty(BOUNDS_SCHEMA)


def window_t0(start_date: dt.date, market: str, trading_days: pl.DataFrame) -> dt.date | None:
    """Last trading day of `market` strictly before `start_date`, or None."""
    return (
        trading_days.filter((pl.col("market") == market) & (pl.col("trade_date") < start_date))
        .select(pl.col("trade_date").max())
        .item()
    )


def window_t1(end_date: dt.date, market: str, trading_days: pl.DataFrame) -> dt.date | None:
    """Last trading day of `market` on or before `end_date`, or None."""
    return (
        trading_days.filter((pl.col("market") == market) & (pl.col("trade_date") <= end_date))
        .select(pl.col("trade_date").max())
        .item()
    )
