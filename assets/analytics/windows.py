"""Every entity's moves per episode, and the windows named in or found from them."""

import datetime as dt

import dagster as dg
import polars as pl

from assets import WRITER_POOL
from assets.analytics.table_reads import (
    Inputs,
    Select,
    analytics_key,
    analytics_spec,
    episode_plan,
    facts_last_day,
    finish_plan,
    write_planned,
)
from selloff.analytics.baskets import with_episode_baskets
from selloff.analytics.detection import measure_moves
from selloff.analytics.tables import MOVES_SCHEMA, TABLE_SCHEMAS, conform, tag_episode
from selloff.episode import T0_SLACK, Episode
from selloff.markdown import markdown_table
from selloff.resources import EpisodesResource, WarehouseResource

INPUTS = Inputs(marts=("fct_index_levels_daily", "fct_market_cap_daily", "dim_basket_member"))
# T0_SLACK (selloff.episode): a move's t0 is the close before its first day, at most
# this far back; the episode's span (selloff.episode.episode_span) counts it.


def first_move_day(episode: Episode) -> dt.date:
    """The first day any move of the episode (day, week, named window) may start."""
    return min([s for s, _ in episode.search_periods()] + [w.start for w in episode.windows])


def episode_moves(episode: Episode, index_daily: pl.DataFrame | None,
                  market_cap: pl.DataFrame | None,
                  members: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(entity_moves, selloff_windows) of one episode, both tagged with its id.

    `market_cap` holds every security from `first_move_day - T0_SLACK` and the basket
    members from the drawdown lookback (less the slack): a drawdown's peak may lie there.
    """
    moves, found = measure_moves(
        episode.window_config, episode.search_periods(), episode.markets, index_daily,
        market_cap, members, securities_since=first_move_day(episode) - T0_SLACK)
    return tag_episode(moves, episode.episode_id), tag_episode(found, episode.episode_id)


@dg.multi_asset(
    specs=[
        analytics_spec("entity_moves", INPUTS,
                       "Per episode: every security's, basket's and index's move each day and "
                       "calendar week of the search periods and over each named window "
                       "(return as a fraction, market-cap change in USD and local currency, "
                       "price basis). Claims and detected windows read these rows."),
        analytics_spec("selloff_windows", INPUTS,
                       "Per episode: its named windows, and windows found in entity_moves: "
                       "worst day and calendar week per index and basket; each basket's and "
                       "index's peak-to-trough drawdown."),
    ],
    group_name="analytics",
    pool=WRITER_POOL,
)
def selloff_windows_asset(episodes: EpisodesResource, warehouse: WarehouseResource):
    eps = episodes.load()
    # A windowed refresh recomputes only the episodes its days reach; the others' rows
    # stay as they are (selloff.refresh_state).
    plan = episode_plan(warehouse, "selloff_windows", eps, "entity_moves", "selloff_windows",
                        last_read=facts_last_day)
    frames = INPUTS.read(warehouse, {
        "fct_index_levels_daily": Select("marts", "fct_index_levels_daily",
                                         ("index_id", "trade_date", "close")),
        "dim_basket_member": Select("marts", "dim_basket_member")})
    moves, windows = [pl.DataFrame(schema=MOVES_SCHEMA)], []
    for episode in plan.of(eps):
        members = with_episode_baskets(frames.get("dim_basket_member"), episode.baskets)
        first = first_move_day(episode) - T0_SLACK
        lookback = min(first, episode.detection.drawdown_lookback_start - T0_SLACK)
        cap = INPUTS.read(warehouse, {"fct_market_cap_daily": Select(
            "marts", "fct_market_cap_daily",
            ("security_id", "trade_date", "close", "adj_close", "market_cap_usd",
             "market_cap_local"),
            f"trade_date <= DATE '{episode.last_day}' AND (trade_date >= DATE '{first}' OR "
            f"(security_id IN (SELECT id FROM __ids) AND trade_date >= DATE '{lookback}'))")},
            ids=members["security_id"].unique().to_list()).get("fct_market_cap_daily")
        m, w = episode_moves(episode, frames.get("fct_index_levels_daily"), cap, members)
        moves.append(m)
        windows.append(w)
    all_moves = conform(pl.concat(moves, how="vertical_relaxed"), MOVES_SCHEMA)
    all_windows = (pl.concat(windows, how="vertical_relaxed") if windows
                   else pl.DataFrame(schema=TABLE_SCHEMAS["selloff_windows"]))
    n_moves = write_planned(warehouse, plan, "entity_moves", all_moves)
    n_windows = write_planned(warehouse, plan, "selloff_windows", all_windows)
    finish_plan(warehouse, plan, eps)
    counts = all_moves.group_by("episode_id", "entity_kind", "period").len().sort(
        "episode_id", "entity_kind", "period")
    yield dg.MaterializeResult(asset_key=analytics_key("entity_moves"), metadata={
        "dagster/row_count": n_moves, **plan.metadata(), "by kind": dg.MetadataValue.md(markdown_table(counts, 40))})
    detected = all_windows.filter(pl.col("kind") != "named")
    yield dg.MaterializeResult(asset_key=analytics_key("selloff_windows"), metadata={
        "dagster/row_count": n_windows, **plan.metadata(),
        "episodes": ", ".join(f"{e.episode_id} (main {e.main.window_id})" for e in eps),
        "detected": dg.MetadataValue.md(markdown_table(
            detected.select("episode_id", "window_id", "market", "kind", "start_date",
                            "end_date"), 60))})
