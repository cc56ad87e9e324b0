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
    episode_plan,
    finish_plan,
    of_episode,
    per_episode,
    write_planned,
)
from selloff.analytics.baskets import with_episode_baskets
from selloff.analytics.tables import EPISODE_COLUMN
from selloff.claims import compute_claim_verdicts
from selloff.claims.metrics import ANALYTICS, DAILY, MARTS
from selloff.claims.reads import claim_reads, declared
from selloff.claims.verdicts import VERDICTS
from selloff.episode import Episode
from selloff.markdown import markdown_table
from selloff.resources import EpisodesResource, SourceResource, WarehouseResource

# The tables come from what the metrics declare (selloff.claims.metrics.register): the
# daily facts are read for the claims' securities and days, the rest whole.
_READS = declared()
INPUTS = Inputs(marts=tuple(t for t in MARTS if t in _READS),
                analytics=tuple(t for t in ANALYTICS if t in _READS))
_WHOLE = tuple(t for t in INPUTS.marts if t not in DAILY)
_MCAP_COLUMNS = ("security_id", "trade_date", "market", "currency", "close", "adj_close",
                 "market_cap_local", "market_cap_usd")
# How far before an episode's first day the claims that still read the daily facts
# (flows, event days, returns to a peak) may look: an opening close, a month's flows.
CLAIM_LOOKBACK = dt.timedelta(days=45)


def _claim_frames(episode: Episode, warehouse, whole: dict[str, pl.DataFrame],
                  analytics: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    members = with_episode_baskets(whole.get("dim_basket_member"), episode.baskets)
    reads = claim_reads(episode.registry, members, whole.get("dim_security"))
    first = min(d for d in (episode.first_day, reads.first_day) if d is not None) - CLAIM_LOOKBACK
    since = f"trade_date >= DATE '{first.isoformat()}'"
    # Only the securities the claims name (directly, by basket, or as a market's AI
    # names) in metrics that read a daily fact; moves come from entity_moves.
    daily = INPUTS.read(warehouse, {
        "fct_market_cap_daily": Select("marts", "fct_market_cap_daily", _MCAP_COLUMNS,
                                       f"{since} AND security_id IN (SELECT id FROM __ids)"),
        "fct_fund_flows_daily": Select("marts", "fct_fund_flows_daily", None,
                                       f"{since} AND (flow_scope <> 'security' OR entity_id IN "
                                       "(SELECT id FROM __ids))")}, ids=sorted(reads.securities))
    frames = {**whole, **daily}
    frames["dim_basket_member"] = members
    for name, frame in analytics.items():
        frames[name] = of_episode(frame, episode)
    return frames


@analytics_asset(
    "claim_verdicts", INPUTS,
    description="One row per episode and claim: computed value, verdict (supported, "
    "contradicted, insufficient_data, external), window, entities and a note. Claims about "
    "a move are lookups of entity_moves.",
)
def claim_verdicts(source: SourceResource, episodes: EpisodesResource,
                   warehouse: WarehouseResource) -> dg.MaterializeResult:
    all_eps = episodes.load()
    plan = episode_plan(warehouse, "claim_verdicts", all_eps, "claim_verdicts")
    eps = plan.of(all_eps)
    whole = INPUTS.read_whole(warehouse, *_WHOLE) if eps else {}
    # The analytics tables' rows of the recomputed episodes only (entity_moves holds
    # every episode's moves).
    analytics = INPUTS.read(warehouse, {
        t: Select("analytics", t, None, f"{EPISODE_COLUMN} IN (SELECT id FROM __ids)")
        for t in INPUTS.analytics}, ids=[e.episode_id for e in eps]) if eps else {}
    verdicts = per_episode(eps, lambda e: compute_claim_verdicts(
        _claim_frames(e, warehouse, whole, analytics), synthetic=source.is_synthetic,
        registry=e.registry))
    rows = write_planned(warehouse, plan, "claim_verdicts", verdicts)
    finish_plan(warehouse, plan, all_eps)
    verdicts = warehouse.read("analytics", "claim_verdicts")
    counts = verdicts.group_by(EPISODE_COLUMN, "verdict").len().sort(EPISODE_COLUMN, "verdict")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows, **plan.metadata(),
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
