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
                analytics=("entity_moves", "selloff_windows", "rotation"))
# How far before an episode's first day the claims that still read the daily facts
# (flows, event days, returns to a peak) may look: an opening close, a month's flows.
CLAIM_LOOKBACK = dt.timedelta(days=45)


def _claim_frames(episode: Episode, warehouse, whole: dict[str, pl.DataFrame],
                  analytics: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    first = min([episode.first_day, *_param_dates(episode)]) - CLAIM_LOOKBACK
    since = f"trade_date >= DATE '{first.isoformat()}'"
    members = with_episode_baskets(whole.get("dim_basket_member"), episode.baskets)
    ids = sorted(_claim_securities(episode, members, whole.get("dim_security")))
    # Only the securities the claims name (directly, by basket, or as a market's AI
    # names): moves come from entity_moves, so no claim needs the whole daily facts.
    daily = INPUTS.read(warehouse, {
        "fct_market_cap_daily": Select("marts", "fct_market_cap_daily", _MCAP_COLUMNS,
                                       f"{since} AND security_id IN (SELECT id FROM __ids)"),
        "fct_fund_flows_daily": Select("marts", "fct_fund_flows_daily", None,
                                       f"{since} AND (flow_scope <> 'security' OR entity_id IN "
                                       "(SELECT id FROM __ids))")}, ids=ids)
    frames = {**whole, **daily}
    frames["dim_basket_member"] = members
    for name, frame in analytics.items():
        frames[name] = of_episode(frame, episode)
    return frames


def _claim_securities(episode: Episode, members: pl.DataFrame,
                      securities: pl.DataFrame | None) -> set[str]:
    """Securities a claim of the episode reads daily rows of: its security_id, the members
    of its baskets (basket_id, fallback_basket), the AI names of its market."""
    ids: set[str] = set()
    for claim in episode.claims:
        for part in claim.parts:
            p = part.params
            if p.get("security_id"):
                ids.add(str(p["security_id"]))
            for key in ("basket_id", "fallback_basket"):
                if p.get(key):
                    ids.update(members.filter(pl.col("basket_id") == str(p[key]))[
                        "security_id"].to_list())
            for key in ("members", "default_members"):
                ids.update(str(m) for m in p.get(key) or [])
            if p.get("market") and securities is not None and "is_ai" in securities.columns:
                ids.update(securities.filter((pl.col("market") == str(p["market"]))
                                             & pl.col("is_ai").fill_null(False))[
                    "security_id"].to_list())
    return ids


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
    analytics = INPUTS.read_whole(warehouse, "entity_moves", "selloff_windows", "rotation")
    verdicts = per_episode(eps, lambda e: compute_claim_verdicts(
        _claim_frames(e, warehouse, whole, analytics), synthetic=source.is_synthetic,
        registry=e.registry))
    rows = warehouse.write("analytics", "claim_verdicts", verdicts)
    counts = verdicts.group_by(EPISODE_COLUMN, "verdict").len().sort(EPISODE_COLUMN, "verdict")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows,
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
