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

# The analytics tables as the warehouse holds them (each with episode_id first): the one
# source of their comments in DuckDB (selloff/catalog.py), of their column schema in the
# Dagster UI and of the lake's analytics layer. Units: returns are fractions (-0.0708 =
# -7.08 %), amounts full currency units (USD unless the column says local).
TABLE_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "entity_moves": MOVES_SCHEMA,
    "selloff_windows": {EPISODE_COLUMN: pl.Utf8(), **WINDOWS_SCHEMA},
    "selloff_decomposition": {EPISODE_COLUMN: pl.Utf8(), **DECOMPOSITION_SCHEMA},
    "selloff_exclusions": {EPISODE_COLUMN: pl.Utf8(), **EXCLUDED_SCHEMA},
    "selloff_rollup": {EPISODE_COLUMN: pl.Utf8(), **ROLLUP_SCHEMA},
    "factor_attribution": {EPISODE_COLUMN: pl.Utf8(), **FACTOR_ATTRIBUTION_SCHEMA},
    "basket_factor_split": {EPISODE_COLUMN: pl.Utf8(), **BASKET_FACTOR_SPLIT_SCHEMA},
    "rotation": {EPISODE_COLUMN: pl.Utf8(), **ROTATION_SCHEMA},
    "valuation_spread": {EPISODE_COLUMN: pl.Utf8(), **VALUATION_SPREAD_SCHEMA},
    "claim_verdicts": {EPISODE_COLUMN: pl.Utf8(), **VERDICT_SCHEMA},
    "data_quality_findings": {EPISODE_COLUMN: pl.Utf8(), **FINDINGS_SCHEMA},
    # Whole-data tables (WHOLE_DATA_TABLES): no episode_id.
    "episode_candidates": CANDIDATES_SCHEMA,
    "episode_candidate_events": CANDIDATE_EVENTS_SCHEMA,
}

TABLE_DOCS: dict[str, str] = {
    "entity_moves": "Every move of every security, basket and index of an episode's markets: "
    "each day and calendar week in its search periods, each named window and each detected "
    "drawdown (the one engine behind windows and claims).",
    "selloff_windows": "The episode's windows per market: named ones from episode.yaml, the "
    "worst day and week of each index and basket, and detected drawdowns.",
    "selloff_decomposition": "Per window and security: the USD market-cap change split exactly "
    "into price, shares and FX, and the local part into re-rating, earnings and "
    "no-earnings-basis.",
    "selloff_exclusions": "Securities left out of a window and why (no price, no share count, "
    "no FX): a missing figure is never defaulted.",
    "selloff_rollup": "Decomposition amounts summed by total, market, is_ai, sector group, "
    "sector and basket, with each group's share of the window's total change.",
    "factor_attribution": "Per window and market: cross-sectional OLS of securities' local log "
    "returns on beta, z-scored log P/E and the AI flag (one row per term).",
    "basket_factor_split": "Per window and basket: its cap-weighted log return split into "
    "market, valuation, AI-theme and idiosyncratic parts.",
    "rotation": "Per window and market: cap-weighted returns and net flows by sector group, "
    "P/E quintile, investor type, and the high-to-low P/E spread.",
    "valuation_spread": "Per day and AI basket: its cap-weighted P/E (TTM) against the dividend "
    "reference, their ratio and the ratio's percentile in its own history.",
    "claim_verdicts": "One verdict per claim of the episode's commentary, with the stated and "
    "computed figures, the window and entities behind it (in the claim's own unit).",
    "data_quality_findings": "Valid-but-suspicious input listed under each episode whose days "
    "and markets it touches: what was held back and what was only recorded.",
    "episode_candidates": "Sell-offs found in the whole data (not per episode): overlapping "
    "drawdowns and day/week shocks of indexes, baskets and market aggregates grouped into "
    "one candidate each, ranked by severity (selloff discover).",
    "episode_candidate_events": "The events behind each candidate of episode_candidates: one "
    "drawdown, day shock or week shock of one index, basket or market aggregate each.",
}

_AMOUNT = " in full US dollars (not millions)"
COLUMN_DOCS: dict[str, str] = {
    EPISODE_COLUMN: "Episode the row belongs to (the id of its episode.yaml), e.g. "
    "ai_selloff_2025.",
    "window_id": "Window id: a named window of the episode (e.g. main) or a detected one "
    "(worst_day:ENTITY, worst_week:ENTITY, drawdown:ENTITY).",
    "market": "Market code (US, CN, KR, JP, TW); ALL for a window over several markets.",
    "security_id": "Security key MARKET:CODE, e.g. US:NVDA.",
    "basket_id": "Basket key, e.g. US_AI_BIG8.",
    "index_id": "Index key MARKET:CODE.",
    "start_date": "First day of the window or period (calendar date).",
    "end_date": "Last day of the window or period (calendar date).",
    "t0_date": "Session whose close the move starts from: the last close strictly before "
    "the window starts.",
    "t1_date": "Session whose close the move ends at: the last close on or before the "
    "window's end.",
    "mcap_usd_start": "Market cap at t0" + _AMOUNT + ".",
    "mcap_usd_end": "Market cap at t1" + _AMOUNT + ".",
    "change_usd": "Market-cap change from t0 to t1" + _AMOUNT + " (negative = loss); "
    "= price_usd + shares_usd + fx_usd.",
    "price_usd": "Part of change_usd from the local price move" + _AMOUNT + ".",
    "shares_usd": "Part of change_usd from the change in share count" + _AMOUNT + ".",
    "fx_usd": "Part of change_usd from the currency's move against the dollar" + _AMOUNT + ".",
    "rerating_usd": "Part of price + shares from the change in P/E (re-rating)" + _AMOUNT + ".",
    "earnings_usd": "Part of price + shares from the change in TTM earnings" + _AMOUNT + ".",
    "no_earnings_basis_usd": "Part of price + shares of securities without positive TTM "
    "earnings (no P/E to split by)" + _AMOUNT + ".",
    "n_securities": "Number of securities in the group (a count).",
    "share_of_total": "The group's change_usd as a fraction of the window's total change "
    "(0.25 = 25 %).",
    "note": "Why a figure is missing or short (empty when all is well).",
}

# Columns whose meaning depends on the table: (table, column) -> description.
TABLE_COLUMN_DOCS: dict[tuple[str, str], str] = {
    ("entity_moves", "entity_kind"): "security, basket or index.",
    ("entity_moves", "entity_id"): "The security_id, basket_id or index_id that moved.",
    ("entity_moves", "market"): "Market of the entity; ALL for a basket over several markets.",
    ("entity_moves", "period"): "day (one session), week (a calendar week) or window (a named "
    "or detected window).",
    ("entity_moves", "window_id"): "The window of a period 'window' row (named or detected); "
    "null on day and week rows.",
    ("entity_moves", "level_t0"): "Level at t0: a security's chained price, a basket's "
    "chain-linked USD cap level, an index's close (points).",
    ("entity_moves", "level_t1"): "Level at t1, on the same basis as level_t0.",
    ("entity_moves", "return"): "level_t1 / level_t0 - 1, a fraction (-0.0708 = -7.08 %).",
    ("entity_moves", "change_usd"): "Sum of the daily market-cap changes from t0 to t1"
    + _AMOUNT + "; null for an index.",
    ("entity_moves", "change_local"): "The same change in full units of the local currency; "
    "null for an index and a mixed-currency basket.",
    ("entity_moves", "n_members"): "Basket members with a cap at both ends of the move "
    "(1 for a security, null for an index).",
    ("entity_moves", "basis"): "Which closes the move used: adj (adjusted), raw (as traded) "
    "or mixed; null for baskets and indexes.",
    ("selloff_windows", "kind"): "named, worst_day, worst_week or drawdown.",
    ("selloff_windows", "basis"): "What the window was detected on (the level series), or "
    "named for a window of episode.yaml.",
    ("selloff_windows", "entity_id"): "Index or basket a detected window belongs to (null "
    "for a named window).",
    ("selloff_exclusions", "reason"): "Why the security is left out: no price, no share "
    "count or no FX.",
    ("selloff_rollup", "group_kind"): "How securities are grouped: total, market, is_ai, "
    "sector_group, sector or basket.",
    ("selloff_rollup", "group_id"): "The group: ALL for total, a market code, true/false, a "
    "sector group, a sector or a basket_id.",
    ("factor_attribution", "index_id"): "Market index the betas are measured against "
    "(MARKET:MKT_CAPW when the index has no levels).",
    ("factor_attribution", "term"): "Regression term: intercept, beta, log_pe_z or is_ai.",
    ("factor_attribution", "coefficient"): "OLS coefficient of the term, in log-return "
    "units (0.01 = about 1 %).",
    ("factor_attribution", "std_error"): "Classical OLS standard error of the coefficient.",
    ("factor_attribution", "t_stat"): "coefficient / std_error.",
    ("factor_attribution", "r2"): "R squared of the regression, a fraction 0..1 (repeated on "
    "each term row).",
    ("factor_attribution", "n"): "Securities in the regression (a count).",
    ("factor_attribution", "beta_days_used"): "Return days the betas were estimated on "
    "(target 250).",
    ("basket_factor_split", "market"): "Market of the regression the basket is split with.",
    ("basket_factor_split", "n_members"): "Members of the basket valid at t1 (a count).",
    ("basket_factor_split", "n_used"): "Members with every exposure, used in the split.",
    ("basket_factor_split", "cap_coverage"): "Share of the basket's t0 USD cap the used "
    "members hold, a fraction (0.95 = 95 %).",
    ("basket_factor_split", "basket_return"): "Cap-weighted log return of the used members "
    "from t0 to t1 (= the four parts' sum).",
    ("basket_factor_split", "market_part"): "Part of basket_return explained by the market "
    "(intercept + beta), log-return units.",
    ("basket_factor_split", "valuation_part"): "Part explained by the P/E exposure, "
    "log-return units.",
    ("basket_factor_split", "ai_theme_part"): "Part explained by the AI flag, log-return "
    "units.",
    ("basket_factor_split", "idiosyncratic_part"): "The residual, log-return units.",
    ("rotation", "dimension"): "sector_group, pe_quintile, investor_type or spread.",
    ("rotation", "bucket"): "The group within the dimension: a sector group, Q1..Q5 (P/E "
    "quintile, Q1 cheapest), an investor type, or Q1-Q5 for the spread.",
    ("rotation", "investor_type"): "Investor type of the flow (null on a return-only row).",
    ("rotation", "n_securities"): "Securities in the bucket (a count).",
    ("rotation", "cap_weighted_return"): "Cap-weighted simple return of the bucket from t0 "
    "to t1, a fraction (-0.05 = -5 %).",
    ("rotation", "net_flow_usd"): "Net buying in the window in full US dollars (negative = "
    "net selling).",
    ("valuation_spread", "trade_date"): "Trading day.",
    ("valuation_spread", "ai_basket_id"): "AI basket whose P/E is compared.",
    ("valuation_spread", "ai_pe"): "Cap-weighted P/E (TTM) of the AI basket (a multiple).",
    ("valuation_spread", "dividend_ref"): "The dividend reference: a basket_id or index_id.",
    ("valuation_spread", "dividend_pe"): "P/E (TTM) of the dividend reference (a multiple).",
    ("valuation_spread", "ratio"): "ai_pe / dividend_pe.",
    ("valuation_spread", "ratio_percentile"): "Where the day's ratio stands among all days "
    "of that basket, a fraction 0..1 (1 = highest).",
    ("claim_verdicts", "claim_id"): "Claim id from episode.yaml.",
    ("claim_verdicts", "section"): "Section of the commentary the claim is from.",
    ("claim_verdicts", "claim_text"): "The claim as the checker reads it.",
    ("claim_verdicts", "quote"): "The commentary's own words.",
    ("claim_verdicts", "metric"): "Which figure is compared (the claim's metric).",
    ("claim_verdicts", "stated_value"): "The figure the commentary states, in `unit`.",
    ("claim_verdicts", "computed_value"): "The figure the warehouse computes, in `unit`.",
    ("claim_verdicts", "unit"): "Unit of stated_value and computed_value (e.g. percent, "
    "usd_bn, ratio): the claim's own unit, not the tables' fractions.",
    ("claim_verdicts", "comparator"): "How the two figures are compared: approx (within "
    "a tolerance), lt, gt, le or ge.",
    ("claim_verdicts", "stated_text"): "stated_value as text with its unit.",
    ("claim_verdicts", "computed_text"): "computed_value as text with its unit.",
    ("claim_verdicts", "verdict"): "supported, contradicted, insufficient_data or "
    "external (not checkable on market data).",
    ("claim_verdicts", "window_start"): "First day of the window the figure was computed over.",
    ("claim_verdicts", "window_end"): "Last day of that window.",
    ("claim_verdicts", "entities"): "The securities, baskets or indexes behind the figure.",
    ("claim_verdicts", "note"): "How the figure was computed, or why there is none.",
    ("claim_verdicts", "parts_json"): "The figure's parts (JSON).",
    ("claim_verdicts", "synthetic"): "True when computed on the synthetic demo market.",
    ("data_quality_findings", "dataset"): "Raw dataset the finding is about, e.g. "
    "shares_outstanding.",
    ("data_quality_findings", "entity"): "Security, index or currency concerned.",
    ("data_quality_findings", "date_from"): "First day the finding covers.",
    ("data_quality_findings", "date_to"): "Last day the finding covers.",
    ("data_quality_findings", "kind"): "Kind of finding, e.g. shares_jump_reverted, "
    "price_spike_reverted, stale_close, fx_outlier.",
    ("data_quality_findings", "detail"): "What was seen, with the figures.",
    ("data_quality_findings", "action"): "What the warehouse did: held back, or recorded only.",
    ('episode_candidates', 'rank'): 'Rank by severity, 1 = the most severe.',
    ('episode_candidates', 'candidate_id'): 'Candidate key, found_YYYY_MM_DD from its first day; also the id of its drafted episode.',
    ('episode_candidates', 'start_date'): "First day of the candidate's span (earliest linked event).",
    ('episode_candidates', 'end_date'): "Last day of the candidate's span (latest event end).",
    ('episode_candidates', 't0_date'): "Session whose close the candidate's moves start from (its earliest event's t0).",
    ('episode_candidates', 'markets'): 'Markets hit, comma-separated codes (e.g. CN,JP,KR,US).',
    ('episode_candidates', 'n_markets'): 'Number of markets hit (a count).',
    ('episode_candidates', 'entities'): 'Indexes, baskets and market aggregates (MARKET:MKT_CAPW) with an event, comma-separated.',
    ('episode_candidates', 'n_entities'): 'Number of entities hit (a count).',
    ('episode_candidates', 'n_events'): 'Number of events grouped into the candidate (a count).',
    ('episode_candidates', 'event_kinds'): 'Kinds of events grouped: drawdown, day_shock, week_shock.',
    ('episode_candidates', 'headline_entity'): 'The entity whose peak-to-trough fall defines the drafted main window.',
    ('episode_candidates', 'main_start'): "First day of the drafted main window (the session after the headline's peak).",
    ('episode_candidates', 'main_end'): "Last day of the drafted main window (the headline's trough).",
    ('episode_candidates', 'headline_fall'): "The headline entity's peak-to-trough return, a fraction (-0.10 = -10 %).",
    ('episode_candidates', 'fall_return'): 'The deepest peak-to-trough return of any entity hit, a fraction (-0.28 = -28 %).',
    ('episode_candidates', 'fall_entity'): 'The entity with that deepest fall.',
    ('episode_candidates', 'fall_peak_date'): "Session of that fall's peak close.",
    ('episode_candidates', 'fall_trough_date'): "Session of that fall's trough close.",
    ('episode_candidates', 'worst_day_return'): 'Worst one-session return of an entity hit within the span, a fraction.',
    ('episode_candidates', 'worst_day_date'): 'Session of the worst day.',
    ('episode_candidates', 'worst_day_entity'): 'Entity of the worst day.',
    ('episode_candidates', 'worst_week_return'): 'Worst calendar-week return of an entity hit in a week holding a session of the span, a fraction.',
    ('episode_candidates', 'worst_week_start'): 'First day (Monday) of the worst week.',
    ('episode_candidates', 'worst_week_end'): 'Last day of the worst week.',
    ('episode_candidates', 'worst_week_entity'): 'Entity of the worst week.',
    ('episode_candidates', 'cap_lost_usd'): 'Market cap lost from peak to trough within the span, summed over the markets hit, in full US dollars (not millions); positive = lost.',
    ('episode_candidates', 'severity'): "Severity score: sum over markets of 100 * (w_fall |fall| + w_day |worst day| + w_week |worst week|) of the market's broad measure (docs/ARCHITECTURE.md).",
    ('episode_candidate_events', 'candidate_id'): 'The candidate the event is grouped into (episode_candidates.candidate_id).',
    ('episode_candidate_events', 'entity_kind'): "index, basket or market (a market's cap-weighted aggregate).",
    ('episode_candidate_events', 'entity_id'): 'The index_id, basket_id or MARKET:MKT_CAPW that moved.',
    ('episode_candidate_events', 'market'): 'Market of the entity; ALL for a basket over several markets.',
    ('episode_candidate_events', 'event_kind'): 'drawdown (peak to trough), day_shock or week_shock.',
    ('episode_candidate_events', 'start_date'): 'First day of the event (the session after its t0).',
    ('episode_candidate_events', 'end_date'): 'Last day of the event (its t1).',
    ('episode_candidate_events', 't0_date'): "Session whose close the event starts from (a drawdown's peak).",
    ('episode_candidate_events', 't1_date'): "Session whose close the event ends at (a drawdown's trough).",
    ('episode_candidate_events', 'return'): "The event's return from t0 to t1, a fraction (-0.05 = -5 %).",
    ('episode_candidate_events', 'change_usd'): 'Market-cap change from t0 to t1 in full US dollars (not millions); null for an index.',
    ('episode_candidate_events', 'sigma'): 'Trailing standard deviation of the day or week returns a shock is measured against, a fraction; null for a drawdown.',
    ('episode_candidate_events', 'z'): 'return / sigma for a shock (how many trailing standard deviations); null for a drawdown.',
    ('episode_candidate_events', 'n_sessions'): 'Sessions from t0 to t1 (a count).',
    ('episode_candidate_events', 'link_start'): "First day the event links over when events are grouped (a drawdown's fast leg, a shock's own day or week).",
    ('episode_candidate_events', 'slow'): "True when a drawdown's leg was cut to its last max_leg_sessions sessions for linking.",
}


def column_doc(table: str, column: str) -> str:
    """The description of an analytics column ('' if it has none: the tests refuse that)."""
    return TABLE_COLUMN_DOCS.get((table, column)) or COLUMN_DOCS.get(column, "")
