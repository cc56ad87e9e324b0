"""analytics.data_quality_findings: what is valid row by row but suspicious, and what was
done about it (held back, or recorded only), listed under each episode it touches."""

import dagster as dg
import polars as pl

from assets.analytics.table_reads import Inputs, Select, analytics_asset, per_episode
from selloff.episode import Episode
from selloff.markdown import markdown_table
from selloff.markets import market_of_expr
from selloff.quality.findings import findings_from
from selloff.resources import EpisodesResource, WarehouseResource

FINDINGS_MEMORY_LIMIT = "1500MB"

# The shares flags and FX fixings are staging tables: the marts carry only the as-of
# figures, in which a held-back glitch no longer shows.
INPUTS = Inputs(marts=("fct_market_cap_daily",),
                other=(("staging", "int_shares_outstanding_glitches"),
                       ("staging", "stg_fx_rates_daily")))


def of_episode_span(findings: pl.DataFrame, episode: Episode) -> pl.DataFrame:
    """Findings overlapping the days the episode reads, on its markets (a finding on a
    currency, not a security, concerns every episode)."""
    market = market_of_expr("entity")
    return findings.filter(
        (pl.col("date_to") >= episode.first_day) & (pl.col("date_from") <= episode.last_day)
        & (~pl.col("entity").str.contains(":") | market.is_in(list(episode.markets))))


@analytics_asset(
    "data_quality_findings", INPUTS,
    description="Per episode: valid but suspicious input in its span (dataset, entity, "
    "date_from, date_to, kind, detail, action): share counts that jump and revert or change "
    "basis (held back: the last good count holds), unconfirmed share steps, reverted price "
    "spikes, stale closes, FX outliers (recorded only). A real split is not a finding.",
)
def data_quality_findings_asset(episodes: EpisodesResource,
                                warehouse: WarehouseResource) -> dg.MaterializeResult:
    # The window functions over every close run in DuckDB on the warehouse: only the
    # findings reach polars, not the whole price fact. DuckDB's limit bounds them (5.1 GB
    # over 35 M closes at 18,000 x 10 without it; past it DuckDB spills); it is the
    # database's setting and lasts as long as this step's connection.
    with warehouse.connect() as con:
        con.execute(f"SET memory_limit = '{FINDINGS_MEMORY_LIMIT}'")
        present = INPUTS.create_views(con, warehouse, {
            "glitches": Select("staging", "int_shares_outstanding_glitches"),
            "fx": Select("staging", "stg_fx_rates_daily"),
            "prices": Select("marts", "fct_market_cap_daily",
                             ("security_id", "trade_date", "close")),
        })
        findings = findings_from(con, present)
    # Recomputed for every episode on every run, windowed or not: a finding is a run over
    # the whole series (a stale close, a spike and its reversal), so a new day can extend
    # one that overlaps an episode whose span the day does not reach.
    eps = episodes.load()
    out = per_episode(eps, lambda e: of_episode_span(findings, e))
    rows = warehouse.write("analytics", "data_quality_findings", out)
    by_kind = out.group_by("episode_id", "kind").len().sort("episode_id", "kind")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows,
        "episodes_recomputed": ", ".join(e.episode_id for e in eps) or "none",
        "episodes_kept": "none (whole-data findings: recomputed every run)",
        **{f"{ep}: {kind}": n for ep, kind, n in by_kind.iter_rows()},
        "by_kind": dg.MetadataValue.md(markdown_table(by_kind, 20)),
        "findings": dg.MetadataValue.md(markdown_table(out, 100)),
    })
