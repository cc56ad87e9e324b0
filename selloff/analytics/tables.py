"""The analytics tables: column names and types of every one (docs/ARCHITECTURE.md,
"Analytics"), without episode_id, which `tag_episode` puts first.

Every function of the package returns frames in exactly these schemas, also when empty,
so the assets can land them without guessing types from data.
"""

from __future__ import annotations

import polars as pl

from selloff.contracts import MARKETS as CONTRACT_MARKETS

# Markets a named window is laid over; a detected window on a mixed basket uses ALL_MARKETS.
MARKETS: tuple[str, ...] = CONTRACT_MARKETS
ALL_MARKETS = "ALL"

WINDOW_KINDS = ("named", "worst_day", "worst_week", "drawdown")

WINDOWS_SCHEMA: dict[str, pl.DataType] = {
    "window_id": pl.Utf8(),
    "market": pl.Utf8(),
    "kind": pl.Utf8(),
    "start_date": pl.Date(),
    "end_date": pl.Date(),
    "basis": pl.Utf8(),
    "entity_id": pl.Utf8(),
}

BOUNDS_SCHEMA: dict[str, pl.DataType] = {
    "window_id": pl.Utf8(),
    "market": pl.Utf8(),
    "t0_date": pl.Date(),
    "t1_date": pl.Date(),
}

# The additive money columns: each is a sum over securities in the roll-up.
AMOUNT_COLUMNS: tuple[str, ...] = (
    "mcap_usd_start",
    "mcap_usd_end",
    "change_usd",
    "price_usd",
    "shares_usd",
    "fx_usd",
    "rerating_usd",
    "earnings_usd",
    "no_earnings_basis_usd",
)

DECOMPOSITION_SCHEMA: dict[str, pl.DataType] = {
    "window_id": pl.Utf8(),
    "security_id": pl.Utf8(),
    "market": pl.Utf8(),
    "t0_date": pl.Date(),
    "t1_date": pl.Date(),
    **{c: pl.Float64() for c in AMOUNT_COLUMNS},
}

EXCLUDED_SCHEMA: dict[str, pl.DataType] = {
    "window_id": pl.Utf8(),
    "security_id": pl.Utf8(),
    "market": pl.Utf8(),
    "t0_date": pl.Date(),
    "t1_date": pl.Date(),
    "reason": pl.Utf8(),
}

# Reasons a security is left out of a window, in the order they are tested.
EXCLUSION_REASONS: tuple[str, ...] = ("no price", "no share count", "no FX")

GROUP_KINDS: tuple[str, ...] = ("total", "market", "is_ai", "sector_group", "sector", "basket")
# Kinds whose groups partition the securities of a window (every security in exactly one).
PARTITION_GROUP_KINDS: tuple[str, ...] = ("total", "market", "is_ai", "sector_group", "sector")
TOTAL_GROUP_ID = "ALL"
UNKNOWN_GROUP_ID = "unknown"

ROLLUP_SCHEMA: dict[str, pl.DataType] = {
    "window_id": pl.Utf8(),
    "group_kind": pl.Utf8(),
    "group_id": pl.Utf8(),
    "n_securities": pl.Int64(),
    **{c: pl.Float64() for c in AMOUNT_COLUMNS},
    "share_of_total": pl.Float64(),
}


# analytics.entity_moves (selloff.analytics.moves): returns are fractions, amounts full units.
MOVE_PERIODS: tuple[str, ...] = ("day", "week", "window")
ENTITY_KINDS: tuple[str, ...] = ("security", "basket", "index")
MOVES_SCHEMA: dict[str, pl.DataType] = {
    "episode_id": pl.Utf8(),
    "entity_kind": pl.Utf8(),
    "entity_id": pl.Utf8(),
    "market": pl.Utf8(),
    "period": pl.Utf8(),
    "window_id": pl.Utf8(),
    "start_date": pl.Date(),
    "end_date": pl.Date(),
    "t0_date": pl.Date(),
    "t1_date": pl.Date(),
    "level_t0": pl.Float64(),
    "level_t1": pl.Float64(),
    "return": pl.Float64(),
    "change_usd": pl.Float64(),
    "change_local": pl.Float64(),
    "n_members": pl.Int64(),
    "basis": pl.Utf8(),
}

SPLIT_COMPONENTS: tuple[str, ...] = (
    "market_part",
    "valuation_part",
    "ai_theme_part",
    "idiosyncratic_part",
)

FACTOR_ATTRIBUTION_SCHEMA: dict[str, pl.DataType] = {
    "window_id": pl.Utf8(),
    "market": pl.Utf8(),
    "index_id": pl.Utf8(),
    "t0_date": pl.Date(),
    "t1_date": pl.Date(),
    "term": pl.Utf8(),
    "coefficient": pl.Float64(),
    "std_error": pl.Float64(),
    "t_stat": pl.Float64(),
    "r2": pl.Float64(),
    "n": pl.Int64(),
    "beta_days_used": pl.Int64(),
    "note": pl.Utf8(),
}

BASKET_FACTOR_SPLIT_SCHEMA: dict[str, pl.DataType] = {
    "window_id": pl.Utf8(),
    "basket_id": pl.Utf8(),
    "market": pl.Utf8(),
    "n_members": pl.Int64(),
    "n_used": pl.Int64(),
    "cap_coverage": pl.Float64(),
    "basket_return": pl.Float64(),
    **{c: pl.Float64() for c in SPLIT_COMPONENTS},
    "note": pl.Utf8(),
}

ROTATION_SCHEMA: dict[str, pl.DataType] = {
    "window_id": pl.Utf8(),
    "market": pl.Utf8(),
    "dimension": pl.Utf8(),
    "bucket": pl.Utf8(),
    "investor_type": pl.Utf8(),
    "n_securities": pl.Int64(),
    "cap_weighted_return": pl.Float64(),
    "net_flow_usd": pl.Float64(),
    "note": pl.Utf8(),
}

VALUATION_SPREAD_SCHEMA: dict[str, pl.DataType] = {
    "trade_date": pl.Date(),
    "ai_basket_id": pl.Utf8(),
    "ai_pe": pl.Float64(),
    "dividend_ref": pl.Utf8(),
    "dividend_pe": pl.Float64(),
    "ratio": pl.Float64(),
    "ratio_percentile": pl.Float64(),
}

VERDICT_SCHEMA: dict[str, pl.DataType] = {
    "claim_id": pl.Utf8(),
    "section": pl.Utf8(),
    "claim_text": pl.Utf8(),
    "quote": pl.Utf8(),
    "metric": pl.Utf8(),
    "stated_value": pl.Float64(),
    "computed_value": pl.Float64(),
    "unit": pl.Utf8(),
    "comparator": pl.Utf8(),
    "stated_text": pl.Utf8(),
    "computed_text": pl.Utf8(),
    "verdict": pl.Utf8(),
    "window_start": pl.Date(),
    "window_end": pl.Date(),
    "entities": pl.Utf8(),
    "note": pl.Utf8(),
    "parts_json": pl.Utf8(),
    "synthetic": pl.Boolean(),
}

FINDINGS_SCHEMA: dict[str, pl.DataType] = {
    "dataset": pl.Utf8(), "entity": pl.Utf8(), "date_from": pl.Date(), "date_to": pl.Date(),
    "kind": pl.Utf8(), "detail": pl.Utf8(), "action": pl.Utf8(),
}


# Every analytics table is computed once per episode and carries its id first.
EPISODE_COLUMN = "episode_id"


def tag_episode(frame: pl.DataFrame, episode_id: str) -> pl.DataFrame:
    """`frame` with `episode_id` as its first column."""
    rest = [c for c in frame.columns if c != EPISODE_COLUMN]
    return frame.with_columns(pl.lit(episode_id, pl.Utf8).alias(EPISODE_COLUMN)).select(
        EPISODE_COLUMN, *rest)


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Select and cast to `schema`, in its column order."""
    return frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


def require_columns(frame: pl.DataFrame | pl.LazyFrame, name: str, columns: tuple[str, ...]) -> None:
    """Fail early with the table and the missing columns named, not deep inside a join."""
    present = set(frame.collect_schema().names())
    missing = [c for c in columns if c not in present]
    if missing:
        raise ValueError(f"{name}: missing column(s) {missing}; has {sorted(present)}")


# analytics.episode_candidates and episode_candidate_events (selloff.analytics.discovery):
# computed over the whole data, not per episode, so without episode_id.
WHOLE_DATA_TABLES: tuple[str, ...] = ("episode_candidates", "episode_candidate_events")
CANDIDATE_EVENT_KINDS: tuple[str, ...] = ("drawdown", "day_shock", "week_shock")
CANDIDATE_EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "candidate_id": pl.Utf8(),
    "entity_kind": pl.Utf8(),
    "entity_id": pl.Utf8(),
    "market": pl.Utf8(),
    "event_kind": pl.Utf8(),
    "start_date": pl.Date(),
    "end_date": pl.Date(),
    "t0_date": pl.Date(),
    "t1_date": pl.Date(),
    "return": pl.Float64(),
    "change_usd": pl.Float64(),
    "sigma": pl.Float64(),
    "z": pl.Float64(),
    "n_sessions": pl.Int64(),
    # Grouping uses [link_start, end_date]: a drawdown's fast leg (discovery docstring);
    # slow: the leg was cut to its last max_leg_sessions sessions.
    "link_start": pl.Date(),
    "slow": pl.Boolean(),
}
CANDIDATES_SCHEMA: dict[str, pl.DataType] = {
    "rank": pl.Int64(),
    "candidate_id": pl.Utf8(),
    "start_date": pl.Date(),
    "end_date": pl.Date(),
    "t0_date": pl.Date(),
    "markets": pl.Utf8(),
    "n_markets": pl.Int64(),
    "entities": pl.Utf8(),
    "n_entities": pl.Int64(),
    "n_events": pl.Int64(),
    "event_kinds": pl.Utf8(),
    "headline_entity": pl.Utf8(),
    "main_start": pl.Date(),
    "main_end": pl.Date(),
    "headline_fall": pl.Float64(),
    "fall_return": pl.Float64(),
    "fall_entity": pl.Utf8(),
    "fall_peak_date": pl.Date(),
    "fall_trough_date": pl.Date(),
    "worst_day_return": pl.Float64(),
    "worst_day_date": pl.Date(),
    "worst_day_entity": pl.Utf8(),
    "worst_week_return": pl.Float64(),
    "worst_week_start": pl.Date(),
    "worst_week_end": pl.Date(),
    "worst_week_entity": pl.Utf8(),
    "cap_lost_usd": pl.Float64(),
    "severity": pl.Float64(),
}
