"""Per episode: the exact decomposition of each window, its roll-ups, and the blocking
reconciliation."""

import dagster as dg
import polars as pl

from assets import WRITER_POOL
from assets.analytics.table_reads import (
    Inputs,
    Select,
    analytics_asset,
    analytics_key,
    analytics_spec,
    episode_plan,
    facts_last_day,
    finish_plan,
    of_episode,
    per_episode,
    session_days,
    window_end_dates,
    write_planned,
)
from selloff.analytics import decompose, reconcile, rollup
from selloff.analytics.baskets import with_episode_baskets
from selloff.analytics.tables import EPISODE_COLUMN
from selloff.markdown import markdown_table
from selloff.resources import EpisodesResource, WarehouseResource

DECOMPOSITION_INPUTS = Inputs(
    marts=("fct_market_cap_daily", "fct_valuation_multiples_daily", "dim_security",
           "dim_trading_calendar"),
    analytics=("selloff_windows",))
ROLLUP_INPUTS = Inputs(marts=("dim_security", "dim_basket_member"),
                       analytics=("selloff_decomposition",))
RECONCILIATION_INPUTS = Inputs(marts=("dim_basket_member",),
                               analytics=("selloff_decomposition", "selloff_rollup"))


def in_markets(days: pl.DataFrame, markets: tuple[str, ...]) -> pl.DataFrame:
    """An episode's sessions: a window over several markets ('ALL') spans its markets only."""
    return days.filter(pl.col("market").is_in(list(markets)))


@dg.multi_asset(
    specs=[
        analytics_spec("selloff_decomposition", DECOMPOSITION_INPUTS,
                       "Per episode, window and security: USD market-cap change split into "
                       "price, shares and FX; the local part into re-rating, earnings and "
                       "no-earnings-basis (DESIGN §5)."),
        analytics_spec("selloff_exclusions", DECOMPOSITION_INPUTS,
                       "Securities left out of a window and why (no price, no share count, "
                       "no FX): a missing figure is never defaulted."),
    ],
    group_name="analytics",
    pool=WRITER_POOL,
)
def selloff_decomposition_asset(context: dg.AssetExecutionContext, episodes: EpisodesResource,
                                warehouse: WarehouseResource):
    # The decomposition reads the daily facts at each window's t0 and t1 only: those rows
    # and columns are selected in DuckDB, once for every episode.
    all_eps = episodes.load()
    plan = episode_plan(warehouse, "selloff_decomposition", all_eps, "selloff_decomposition",
                        "selloff_exclusions", last_read=facts_last_day)
    eps = plan.of(all_eps)
    windows = DECOMPOSITION_INPUTS.read_whole(warehouse, "selloff_windows")["selloff_windows"]
    windows = windows.filter(pl.col(EPISODE_COLUMN).is_in([e.episode_id for e in eps]))
    days = session_days(DECOMPOSITION_INPUTS, warehouse)
    on_ends = "trade_date IN (SELECT d FROM __dates)"
    frames = DECOMPOSITION_INPUTS.read(warehouse, {
        "fct_market_cap_daily": Select(
            "marts", "fct_market_cap_daily",
            ("security_id", "trade_date", "close", "shares", "usd_per_unit"), on_ends),
        "fct_valuation_multiples_daily": Select(
            "marts", "fct_valuation_multiples_daily",
            ("security_id", "trade_date", "net_income_ttm"), on_ends),
        "dim_security": Select("marts", "dim_security", ("security_id", "market")),
    }, dates=window_end_dates(windows, days))
    results = {e.episode_id: decompose(
        of_episode(windows, e), frames["fct_market_cap_daily"],
        frames.get("fct_valuation_multiples_daily"), frames["dim_security"],
        trading_days=in_markets(days, e.markets)) for e in eps}
    decomposition = per_episode(eps, lambda e: results[e.episode_id].frame)
    excluded = per_episode(eps, lambda e: results[e.episode_id].excluded)
    n = write_planned(warehouse, plan, "selloff_decomposition", decomposition)
    n_ex = write_planned(warehouse, plan, "selloff_exclusions", excluded)
    finish_plan(warehouse, plan, all_eps)
    totals: dict[str, int] = {}
    for result in results.values():
        for reason, count in result.exclusion_totals().items():
            totals[reason] = totals.get(reason, 0) + count
    if n_ex:
        context.log.warning(f"{n_ex} (episode, window, security) rows excluded: {totals}")
    fresh = decomposition.height > 0
    yield dg.MaterializeResult(asset_key=analytics_key("selloff_decomposition"), metadata={
        "dagster/row_count": n, "episodes": len(all_eps), **plan.metadata(),
        "windows (recomputed)":
            decomposition.select(EPISODE_COLUMN, "window_id").n_unique() if fresh else 0,
        "securities (recomputed)": decomposition["security_id"].n_unique() if fresh else 0})
    yield dg.MaterializeResult(asset_key=analytics_key("selloff_exclusions"), metadata={
        "dagster/row_count": n_ex, **plan.metadata(), **{f"excluded: {k}": v for k, v in totals.items()}})


@analytics_asset(
    "selloff_rollup", ROLLUP_INPUTS,
    description="Per episode: decomposition amounts summed by market, sector, sector group, "
    "basket and is_ai, with each group's share of the window's total change.",
)
def selloff_rollup_asset(episodes: EpisodesResource,
                         warehouse: WarehouseResource) -> dg.MaterializeResult:
    all_eps = episodes.load()
    plan = episode_plan(warehouse, "selloff_rollup", all_eps, "selloff_rollup",
                        last_read=facts_last_day)
    eps = plan.of(all_eps)
    # The decomposition is read only when an episode is recomputed.
    frames = ROLLUP_INPUTS.read_whole(warehouse, "dim_security", "dim_basket_member",
                                      "selloff_decomposition") if eps else {}
    out = per_episode(eps, lambda e: rollup(
        of_episode(frames["selloff_decomposition"], e), frames["dim_security"],
        with_episode_baskets(frames.get("dim_basket_member"), e.baskets)))
    rows = write_planned(warehouse, plan, "selloff_rollup", out)
    finish_plan(warehouse, plan, all_eps)
    meta: dict[str, object] = {"dagster/row_count": rows, **plan.metadata()}
    for e in eps:
        head = (out.filter((pl.col(EPISODE_COLUMN) == e.episode_id)
                           & (pl.col("window_id") == e.main.window_id)
                           & pl.col("group_kind").is_in(["market", "basket"]))
                .sort("change_usd").select("group_kind", "group_id", "n_securities",
                                           "change_usd", "share_of_total"))
        meta[f"{e.episode_id}: main window {e.main.window_id}"] = dg.MetadataValue.md(
            markdown_table(head, 30))
    return dg.MaterializeResult(metadata=meta)


@dg.asset_check(
    asset=analytics_key("selloff_rollup"),
    name="reconciliation",
    blocking=True,
    pool=WRITER_POOL,
    automation_condition=dg.AutomationCondition.eager(),
    additional_deps=[d for d in RECONCILIATION_INPUTS.deps
                     if d != analytics_key("selloff_rollup")],
    description="Per episode: price + shares + fx = change and re-rating + earnings + "
    "no-earnings-basis = price + shares per security (1e-9 relative); group rows = sums of "
    "their members.",
)
def reconciliation_check(episodes: EpisodesResource,
                         warehouse: WarehouseResource) -> dg.AssetCheckResult:
    frames = RECONCILIATION_INPUTS.read_whole(warehouse, "dim_basket_member",
                                              "selloff_decomposition", "selloff_rollup")
    failures: list[str] = []
    metrics: dict[str, object] = {}
    for e in episodes.load():
        result = reconcile(of_episode(frames["selloff_decomposition"], e),
                           of_episode(frames["selloff_rollup"], e),
                           with_episode_baskets(frames.get("dim_basket_member"), e.baskets))
        failures.extend(f"{e.episode_id}: {f}" for f in result.failures)
        metrics.update({f"{e.episode_id}: {k}": v for k, v in result.metrics.items()})
    return dg.AssetCheckResult(
        passed=not failures,
        description="reconciled" if not failures else "; ".join(failures[:5]),
        metadata={**metrics, "failures": dg.MetadataValue.json(failures[:50])},
    )
