"""analytics.data_quality_findings: what is valid row by row but suspicious, and what was
done about it (held back, or recorded only), listed under each episode it touches."""

import datetime as dt
import hashlib

import dagster as dg
import duckdb
import polars as pl

from assets.analytics.table_reads import Inputs, Select, analytics_asset, per_episode
from selloff import refresh_state
from selloff import warehouse as wh
from selloff.analytics.tables import EPISODE_COLUMN, TABLE_SCHEMAS
from selloff.episode import Episode, definition_hash
from selloff.markdown import markdown_table
from selloff.markets import market_of_expr
from selloff.quality import findings as findings_sql
from selloff.quality.findings import findings_from, price_cuts
from selloff.resources import EpisodesResource, WarehouseResource

FINDINGS_MEMORY_LIMIT = "1500MB"
TABLE = "data_quality_findings"
# The refresh_state consumer whose ledger seq and fingerprint say what the table holds.
CONSUMER = "analytics.data_quality_findings"
# Closes read before a windowed refresh's first changed day to place each security's cut
# (selloff.quality.findings.price_cuts): about 40 sessions, where 5 suffice unless a
# run of equal closes reaches back further.
CUT_WINDOW = dt.timedelta(days=60)
PRICES = "prices_daily"

# The shares flags and FX fixings are staging tables: the marts carry only the as-of
# figures, in which a held-back glitch no longer shows.
INPUTS = Inputs(marts=("fct_market_cap_daily",),
                other=(("staging", "int_shares_outstanding_glitches"),
                       ("staging", "stg_fx_rates_daily")))
SELECTS = {
    "glitches": Select("staging", "int_shares_outstanding_glitches"),
    "fx": Select("staging", "stg_fx_rates_daily"),
    "prices_all": Select("marts", "fct_market_cap_daily", ("security_id", "trade_date", "close")),
}


def of_episode_span(findings: pl.DataFrame, episode: Episode) -> pl.DataFrame:
    """Findings overlapping the days the episode reads, on its markets (a finding on a
    currency, not a security, concerns every episode)."""
    market = market_of_expr("entity")
    return findings.filter(
        (pl.col("date_to") >= episode.first_day) & (pl.col("date_from") <= episode.last_day)
        & (~pl.col("entity").str.contains(":") | market.is_in(list(episode.markets))))


def fingerprint(episodes: tuple[Episode, ...]) -> str:
    """What the table's rows depend on besides the data: the episodes (in order) and the
    detection's SQL and thresholds. A change of either recomputes every finding."""
    digest = hashlib.sha256()
    for e in episodes:
        digest.update(f"{e.episode_id}={definition_hash(e)}\0".encode())
    with open(findings_sql.__file__, "rb") as source:
        digest.update(source.read())
    return digest.hexdigest()


def _ordered(out: pl.DataFrame, episodes: tuple[Episode, ...]) -> pl.DataFrame:
    """Rows in the order a full build writes them: by episode, then dataset, kind,
    entity, date."""
    rank = {e.episode_id: i for i, e in enumerate(episodes)}
    return (out.with_columns(pl.col(EPISODE_COLUMN).replace_strict(rank, return_dtype=pl.Int64)
                             .alias("__episode"))
            .sort("__episode", "dataset", "kind", "entity", "date_from").drop("__episode"))


def _refreshed(con: duckdb.DuckDBPyConnection, present: set[str], stored: pl.DataFrame,
               changed_from: dt.date, episodes: tuple[Episode, ...]) -> pl.DataFrame:
    """The table after closes changed from `changed_from` on: the share and FX findings
    recomputed whole (small inputs), the price findings of each security from its cut
    on (`price_cuts`), its earlier ones kept as stored."""
    cuts = (price_cuts(con, changed_from, changed_from - CUT_WINDOW, "prices_all") if "prices" in present
            else pl.DataFrame(schema={"security_id": pl.Utf8, "cut": pl.Date,
                                      "read_from": pl.Date}))
    # A security with no close since the cut window but kept findings there: its closes
    # from changed_from on may have been removed; its whole history is recomputed.
    kept_prices = stored.filter(pl.col("dataset") == PRICES)
    absent = (kept_prices.filter(pl.col("date_to") >= changed_from - CUT_WINDOW)
              .select(pl.col("entity").alias("security_id")).unique()
              .join(cuts, on="security_id", how="anti")
              .with_columns(pl.lit(None, pl.Date).alias("cut"), pl.lit(None, pl.Date)
                            .alias("read_from")))
    cuts = pl.concat([cuts, absent])
    if "prices" in present:
        con.register("__cuts", cuts.to_arrow())
        con.execute("CREATE OR REPLACE TEMP VIEW prices AS SELECT p.security_id, "
                    "p.trade_date, p.close FROM prices_all p JOIN __cuts c "
                    "ON c.security_id = p.security_id "
                    "WHERE c.read_from IS NULL OR p.trade_date >= c.read_from")
    fresh = findings_from(con, present)
    by_cut = pl.col("cut").is_null() | (pl.col("date_from") >= pl.col("cut"))
    prices = fresh.filter(pl.col("dataset") == PRICES)
    new_prices = (prices.join(cuts.select(pl.col("security_id").alias("entity"), "cut"),
                              on="entity", how="inner").filter(by_cut).drop("cut"))
    new = pl.concat([fresh.filter(pl.col("dataset") != PRICES), new_prices])
    new = per_episode(episodes, lambda e: of_episode_span(new, e))
    kept = (kept_prices.join(cuts.select(pl.col("security_id").alias("entity"), "cut"),
                             on="entity", how="left")
            .filter(~(pl.col("entity").is_in(cuts["security_id"].implode()) & by_cut))
            .drop("cut"))
    out = pl.concat([kept.select(TABLE_SCHEMAS[TABLE].keys()),
                     new.select(TABLE_SCHEMAS[TABLE].keys()) if new.height
                     else pl.DataFrame(schema=TABLE_SCHEMAS[TABLE])], how="vertical_relaxed")
    return _ordered(out, episodes)


@analytics_asset(
    TABLE, INPUTS,
    description="Per episode: valid but suspicious input in its span (dataset, entity, "
    "date_from, date_to, kind, detail, action): share counts that jump and revert or change "
    "basis (held back: the last good count holds), unconfirmed share steps, reverted price "
    "spikes, stale closes, FX outliers (recorded only). A real split is not a finding.",
)
def data_quality_findings_asset(episodes: EpisodesResource,
                                warehouse: WarehouseResource) -> dg.MaterializeResult:
    # The window functions over the closes run in DuckDB on the warehouse: only the
    # findings reach polars, not the whole price fact. DuckDB's limit bounds them (5.1 GB
    # over 35 M closes at 18,000 x 10 without it; past it DuckDB spills); it is the
    # database's setting and lasts as long as this step's connection.
    #
    # A finding is a run over a security's series (a stale close, a spike and its
    # reversal), so a new day can extend one that overlaps an episode whose span the day
    # does not reach: not per episode but per security. A windowed refresh recomputes
    # each security's price findings from its cut before the first changed day on
    # (selloff.quality.findings.price_cuts) and keeps the earlier ones; a refresh that
    # changed nothing keeps the table; anything else (a full landing, other episodes, a
    # changed detection) recomputes every finding.
    eps = episodes.load()
    fp = fingerprint(eps)
    with warehouse.connect() as con:
        con.execute(f"SET memory_limit = '{FINDINGS_MEMORY_LIMIT}'")
        changes = refresh_state.changes_since(con, CONSUMER)
        stored = None
        if (not changes.any_whole and refresh_state.rendered_from(con, CONSUMER) == fp
                and wh.table_exists(con, "analytics", TABLE)):
            stored = con.sql(f'SELECT * FROM analytics."{TABLE}"').pl()
        present = INPUTS.create_views(con, warehouse, SELECTS)
        present = {"prices" if p == "prices_all" else p for p in present}
        if stored is not None and changes.first is None:
            out, how = stored, "kept: no input changed since the last run"
        elif stored is not None:
            out = _refreshed(con, present, stored, changes.first, eps)
            how = f"price findings from each security's cut before {changes.first} on"
        else:
            if "prices" in present:
                con.execute("CREATE OR REPLACE TEMP VIEW prices AS SELECT * FROM prices_all")
            findings = findings_from(con, present)
            out = per_episode(eps, lambda e: of_episode_span(findings, e))
            how = "every finding"
    rows = out.height if out is stored else warehouse.write("analytics", TABLE, out)
    with warehouse.connect() as con:
        refresh_state.mark_seq(con, CONSUMER, changes.seq)
        refresh_state.record_render(con, CONSUMER, fp)
    by_kind = (out.group_by("episode_id", "kind").len().sort("episode_id", "kind")
               if out.height else pl.DataFrame(schema={"episode_id": pl.Utf8, "kind": pl.Utf8,
                                                       "len": pl.UInt32}))
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows,
        "recomputed": how,
        "episodes_recomputed": ", ".join(e.episode_id for e in eps) or "none",
        "episodes_kept": "none (whole-data findings: recomputed per security)",
        **{f"{ep}: {kind}": n for ep, kind, n in by_kind.iter_rows()},
        "by_kind": dg.MetadataValue.md(markdown_table(by_kind, 20)),
        "findings": dg.MetadataValue.md(markdown_table(out, 100)),
    })
