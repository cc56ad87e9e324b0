"""Verdicts on each episode's claims (the `claims:` of its episode.yaml)."""

import datetime as dt

import dagster as dg
import polars as pl

from assets import WRITER_POOL
from assets.analytics.table_reads import (
    Inputs,
    Select,
    analytics_asset,
    analytics_key,
    of_episode,
    per_episode,
)
from selloff.analytics.baskets import with_episode_baskets
from selloff.analytics.tables import EPISODE_COLUMN
from selloff.claims import compute_claim_verdicts
from selloff.claims.verdicts import VERDICTS
from selloff.episode import Episode
from selloff.markdown import markdown_table
from selloff.resources import EpisodesResource, SourceResource, WarehouseResource

_WHOLE = ("dim_security", "dim_basket_member", "dim_trading_calendar",
          "fct_fundamentals_quarterly", "fct_index_levels_daily", "fct_index_valuation_daily")
_MCAP_COLUMNS = ("security_id", "trade_date", "market", "currency", "close", "adj_close",
                 "market_cap_local", "market_cap_usd")
INPUTS = Inputs(marts=(*_WHOLE, "fct_market_cap_daily", "fct_fund_flows_daily"),
                analytics=("entity_moves", "selloff_windows"))
# How far before an episode's first day the claims that still read the daily facts
# (flows, event days, returns to a peak) may look: an opening close, a month's flows.
CLAIM_LOOKBACK = dt.timedelta(days=45)


def _claim_frames(episode: Episode, warehouse, whole: dict[str, pl.DataFrame],
                  analytics: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    first = min([episode.first_day, *_param_dates(episode)]) - CLAIM_LOOKBACK
    since = f"trade_date >= DATE '{first.isoformat()}'"
    daily = INPUTS.read(warehouse, {
        "fct_market_cap_daily": Select("marts", "fct_market_cap_daily", _MCAP_COLUMNS, since),
        "fct_fund_flows_daily": Select("marts", "fct_fund_flows_daily", None, since)})
    frames = {**whole, **daily}
    frames["dim_basket_member"] = with_episode_baskets(whole.get("dim_basket_member"),
                                                       episode.baskets)
    for name, frame in analytics.items():
        frames[name] = of_episode(frame, episode)
    return frames


def _param_dates(episode: Episode) -> list[dt.date]:
    """Dates a claim names outside its search period (a start date, an event day)."""
    found = []
    for claim in episode.claims:
        for part in claim.parts:
            for key in ("start_date", "event_date", "at_date"):
                value = part.params.get(key)
                if isinstance(value, dt.date):
                    found.append(value)
                elif isinstance(value, str):
                    found.append(dt.date.fromisoformat(value))
            if part.params.get("calendar_year"):
                found.append(dt.date(int(part.params["calendar_year"]), 1, 1))
    return found


@analytics_asset(
    "claim_verdicts", INPUTS,
    description="One row per episode and claim: computed value, verdict (supported, "
    "contradicted, insufficient_data, external), window, entities and a note. Claims about "
    "a move are lookups of entity_moves.",
)
def claim_verdicts(source: SourceResource, episodes: EpisodesResource,
                   warehouse: WarehouseResource) -> dg.MaterializeResult:
    eps = episodes.load()
    whole = INPUTS.read_whole(warehouse, *_WHOLE)
    analytics = INPUTS.read_whole(warehouse, "entity_moves", "selloff_windows")
    verdicts = per_episode(eps, lambda e: compute_claim_verdicts(
        _claim_frames(e, warehouse, whole, analytics), synthetic=source.is_synthetic,
        registry=e.registry))
    rows = warehouse.write("analytics", "claim_verdicts", verdicts)
    counts = verdicts.group_by(EPISODE_COLUMN, "verdict").len().sort(EPISODE_COLUMN, "verdict")
    return dg.MaterializeResult(metadata={
        "rows": rows,
        **{f"{ep}: {v}": n for ep, v, n in counts.iter_rows()},
        "verdicts": dg.MetadataValue.md(markdown_table(verdicts.select(
            EPISODE_COLUMN, "claim_id", "verdict", "stated_text", "computed_text",
            pl.col("window_start").cast(pl.Utf8), pl.col("window_end").cast(pl.Utf8)), 60)),
    })


@dg.asset_check(asset=analytics_key("claim_verdicts"), name="every_claim_has_a_verdict",
                blocking=True, pool=WRITER_POOL,
                description="Every claim of every episode has exactly one row with a known "
                "verdict.")
def every_claim_has_a_verdict(episodes: EpisodesResource,
                              warehouse: WarehouseResource) -> dg.AssetCheckResult:
    verdicts = warehouse.read("analytics", "claim_verdicts")
    expected = {(e.episode_id, c.id) for e in episodes.load() for c in e.claims}
    got = [] if verdicts is None else list(verdicts.select(EPISODE_COLUMN, "claim_id").iter_rows())
    missing = sorted(expected - set(got))
    dupes = sorted({k for k in got if got.count(k) > 1})
    unknown = [] if verdicts is None else verdicts.filter(~pl.col("verdict").is_in(VERDICTS))[
        "claim_id"].to_list()
    ok = not (missing or dupes or unknown)
    return dg.AssetCheckResult(passed=ok, metadata={"claims": len(expected), "rows": len(got)},
                               description="ok" if ok else f"missing {missing}, duplicated "
                               f"{dupes}, unknown verdicts {unknown}")
