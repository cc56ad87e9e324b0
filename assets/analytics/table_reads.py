"""What each analytics asset reads, declared once: its deps and its reads come from it.

An asset names its input tables in an `Inputs`; the decorator turns them into the asset's
deps, and `Inputs.read` refuses a table the asset did not declare, so the lineage the UI
shows is the data the asset reads. The reads select columns and rows in DuckDB.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from assets import WRITER_POOL
from selloff import dbt_runner, lake, refresh_state
from selloff import warehouse as wh
from selloff.analytics.tables import EPISODE_COLUMN, tag_episode
from selloff.analytics.windows import window_bounds
from selloff.episode import Episode, EpisodeSpan, definition_hash, episode_span
from selloff.markets import market_of_sql
from selloff.refresh_state import EpisodePlan
from selloff.resources import WarehouseResource
from selloff.settings import Settings


def mart_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["marts", name])


def analytics_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["analytics", name])


@dataclass(frozen=True)
class Inputs:
    """The tables one asset reads: marts, analytics tables, and (schema, table) of others."""

    marts: tuple[str, ...] = ()
    analytics: tuple[str, ...] = ()
    other: tuple[tuple[str, str], ...] = ()

    @property
    def deps(self) -> list[dg.AssetKey]:
        return [*(mart_key(m) for m in self.marts), *(analytics_key(a) for a in self.analytics),
                *(dg.AssetKey([s, t]) for s, t in self.other)]

    def declares(self, schema: str, table: str) -> bool:
        return ((schema == "marts" and table in self.marts)
                or (schema == "analytics" and table in self.analytics)
                or (schema, table) in self.other)

    def read(self, warehouse: WarehouseResource, selects: dict[str, Select],
             dates: list[dt.date] | None = None,
             ids: list[str] | None = None) -> dict[str, pl.DataFrame]:
        """`read_selected` of tables this asset declared; an undeclared one is a bug."""
        undeclared = [f"{s.schema}.{s.table}" for s in selects.values()
                      if not self.declares(s.schema, s.table)]
        if undeclared:
            raise ValueError(f"reads {undeclared} without declaring them in its Inputs")
        return read_selected(warehouse, selects, dates, ids)

    def read_split(self, warehouse: WarehouseResource, sel: Select,
                   key_sql: str) -> dict[str, pl.DataFrame]:
        """`sel`'s rows split by the value of the SQL expression `key_sql`, one query per
        value in one connection: each part is filtered in DuckDB, so no part's rows pass
        through polars to be split there. {} when the table is absent."""
        if not self.declares(sel.schema, sel.table):
            raise ValueError(f"reads {sel.schema}.{sel.table} without declaring it in its Inputs")
        with warehouse.connect() as con:
            source = _source(con, warehouse.settings(), sel.schema, sel.table)
            if source is None:
                return {}
            present = [r[0] for r in con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()]
            cols = present if sel.columns is None else [c for c in sel.columns if c in present]
            where = f"({sel.where}) AND " if sel.where else ""
            keys = [r[0] for r in con.sql(f"SELECT DISTINCT {key_sql} FROM {source} "
                                          f"WHERE {where}{key_sql} IS NOT NULL").fetchall()]
            query = (f"SELECT {', '.join(_quote(c) for c in cols)} FROM {source} "
                     f"WHERE {where}{key_sql} = ?")
            # The key is a value read from the table: a parameter, never spliced in.
            return {k: con.sql(query, params=[k]).pl() for k in sorted(keys)}

    def create_views(self, con: duckdb.DuckDBPyConnection, warehouse: WarehouseResource,
                     selects: dict[str, Select]) -> set[str]:
        """Temporary views named like `selects`' keys over declared tables, for SQL that
        runs in DuckDB where the data is (nothing is read into polars); the names of the
        views made (an absent table makes none)."""
        undeclared = [f"{s.schema}.{s.table}" for s in selects.values()
                      if not self.declares(s.schema, s.table)]
        if undeclared:
            raise ValueError(f"reads {undeclared} without declaring them in its Inputs")
        made = set()
        for name, sel in selects.items():
            source = _source(con, warehouse.settings(), sel.schema, sel.table)
            if source is None:
                continue
            cols = "*" if sel.columns is None else ", ".join(_quote(c) for c in sel.columns)
            where = f" WHERE {sel.where}" if sel.where else ""
            con.execute(f"CREATE OR REPLACE TEMP VIEW {_quote(name)} AS "
                        f"SELECT {cols} FROM {source}{where}")
            made.add(name)
        return made

    def read_whole(self, warehouse: WarehouseResource, *names: str) -> dict[str, pl.DataFrame]:
        """Whole (small) tables by name: dims and analytics tables."""
        return self.read(warehouse, {n: Select(self._schema(n), n) for n in names})

    def _schema(self, name: str) -> str:
        if name in self.marts:
            return "marts"
        if name in self.analytics:
            return "analytics"
        return next((s for s, t in self.other if t == name), "?")


def analytics_asset(name: str, inputs: Inputs, description: str):
    """@dg.asset for a polars table in `analytics`, its deps from `inputs`: the one writer
    pool, and recomputed when its inputs change (eager automation)."""
    return dg.asset(
        key=analytics_key(name),
        group_name="analytics",
        deps=inputs.deps,
        pool=WRITER_POOL,
        kinds={"polars", "duckdb"},
        automation_condition=dg.AutomationCondition.eager(),
        description=description,
    )


def analytics_spec(name: str, inputs: Inputs, description: str) -> dg.AssetSpec:
    """One output of a multi-asset, its deps from `inputs`."""
    return dg.AssetSpec(analytics_key(name), deps=inputs.deps, description=description,
                        kinds={"polars", "duckdb"},
                        automation_condition=dg.AutomationCondition.eager())


def per_episode(episodes: Sequence[Episode],
                compute: Callable[[Episode], pl.DataFrame]) -> pl.DataFrame:
    """`compute` run for each episode, its rows tagged with episode_id, concatenated."""
    frames = [tag_episode(compute(e), e.episode_id) for e in episodes]
    return pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()


def of_episode(frame: pl.DataFrame | None, episode: Episode) -> pl.DataFrame | None:
    """The rows of one episode of an analytics table, without the episode_id column."""
    if frame is None:
        return None
    return frame.filter(pl.col(EPISODE_COLUMN) == episode.episode_id).drop(EPISODE_COLUMN)


def trading_days(frames: dict) -> pl.DataFrame | None:
    """(market, trade_date) sessions from dim_trading_calendar, for window t0/t1."""
    cal = frames.get("dim_trading_calendar")
    if cal is None:
        return None
    return cal.filter(pl.col("is_trading_day")).select(
        "market", pl.col("calendar_date").alias("trade_date"))


@dataclass(frozen=True)
class Select:
    """The part of one table a step needs: some columns, and rows matching `where`.

    `where` is SQL over the table's columns; it may name `__dates(d)` and `__ids(id)` (the
    `dates` and `ids` given to `read_selected`, so a filter on many values is a semi-join).
    Columns the table lacks are left out, so the polars function's own column check
    reports them, as it did when it got the whole table.
    """

    schema: str
    table: str
    columns: tuple[str, ...] | None = None
    where: str | None = None


def read_selected(warehouse: WarehouseResource, selects: dict[str, Select],
                  dates: list[dt.date] | None = None,
                  ids: list[str] | None = None) -> dict[str, pl.DataFrame]:
    """Read the selected columns and rows of several tables in DuckDB, in one connection.

    The projection and the filter run in DuckDB (on the build file, or on Spark's Parquet
    files when dbt ran on Spark), so only what the step uses reaches polars. Absent tables
    are left out, as in `WarehouseResource.read_many`.
    """
    settings = warehouse.settings()
    out: dict[str, pl.DataFrame] = {}
    with warehouse.connect() as con:
        if dates is not None:
            con.register("__dates", pl.DataFrame({"d": sorted(set(dates))},
                                                 schema={"d": pl.Date}).to_arrow())
        if ids is not None:
            con.register("__ids", pl.DataFrame({"id": sorted(set(ids))},
                                               schema={"id": pl.Utf8}).to_arrow())
        for name, sel in selects.items():
            source = _source(con, settings, sel.schema, sel.table)
            if source is None:
                continue
            present = [r[0] for r in con.sql(f"DESCRIBE SELECT * FROM {source}").fetchall()]
            cols = present if sel.columns is None else [c for c in sel.columns if c in present]
            query = f"SELECT {', '.join(_quote(c) for c in cols)} FROM {source}"
            if sel.where:
                query += f" WHERE {sel.where}"
            out[name] = con.sql(query).pl()
    return out


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source(con: duckdb.DuckDBPyConnection, settings: Settings, schema: str,
            table: str) -> str | None:
    """The FROM clause of a table, or None if it does not exist."""
    if settings.is_spark and schema in dbt_runner.DBT_SCHEMAS:
        # dbt ran on Spark: its tables are Parquet folders, read the way `lake` reads them.
        folder = dbt_runner.spark_table_dir(settings, schema, table)
        if lake.is_remote(folder):
            return f"read_parquet('{folder.rstrip('/')}/*.parquet')"
        files = sorted(str(p) for p in Path(folder).glob("*.parquet")
                       if not p.name.startswith(("_", ".")))
        if not files:
            return None
        return "read_parquet([" + ", ".join(f"'{f}'" for f in files) + "])"
    if not wh.table_exists(con, schema, table):
        return None
    return f"{_quote(schema)}.{_quote(table)}"


def window_end_dates(windows: pl.DataFrame, days: pl.DataFrame) -> list[dt.date]:
    """Every t0 and t1 of every window and market (of every episode): the only days the
    window-level figures (decomposition, window returns, P/E at t0) read from the daily
    facts."""
    groups = ([g.drop(EPISODE_COLUMN) for _, g in windows.group_by(EPISODE_COLUMN)]
              if EPISODE_COLUMN in windows.columns else [windows])
    found: set[dt.date] = set()
    for group in groups:
        bounds = window_bounds(group, days)
        for col in ("t0_date", "t1_date"):
            found.update(bounds[col].drop_nulls().to_list())
    return sorted(found)


def session_days(inputs: Inputs, warehouse: WarehouseResource) -> pl.DataFrame:
    """(market, trade_date) the window bounds use: the exchange calendar when
    dim_trading_calendar exists, else the days with a close in fct_market_cap_daily
    (what `data_trading_days` computes from the whole table, here computed in DuckDB)."""
    frames = inputs.read(warehouse, {
        "dim_trading_calendar": Select("marts", "dim_trading_calendar",
                                       ("market", "calendar_date", "is_trading_day"))})
    days = trading_days(frames)
    if days is not None:
        return days
    with warehouse.connect() as con:
        source = _source(con, warehouse.settings(), "marts", "fct_market_cap_daily")
        if source is None:
            return pl.DataFrame(schema={"market": pl.Utf8, "trade_date": pl.Date})
        return con.sql(
            f"SELECT DISTINCT coalesce(market, {market_of_sql('security_id')}) AS market, "
            f"trade_date FROM {source} WHERE close IS NOT NULL ORDER BY market, trade_date"
        ).pl()


def facts_last_day(episode: Episode) -> dt.date:
    """The last day the episode's analytics other than the claim verdicts read from the
    daily facts: `Episode.last_day` (the detection search's end, the named windows' ends,
    the claims' search periods). The claims' month, year and date parameters, which
    stretch `episode_span` further, are read by claim_verdicts alone."""
    return episode.last_day


def episode_plan(warehouse: WarehouseResource, asset: str, episodes: Sequence[Episode],
                 *tables: str,
                 last_read: Callable[[Episode], dt.date] | None = None) -> EpisodePlan:
    """Which episodes `asset` recomputes for its analytics `tables` (selloff.refresh_state):
    all on a full build, only those a refreshed day reaches on a windowed one.

    `last_read`: the last day of the daily facts `asset` reads for an episode, when that
    is before the end of the episode's span (`facts_last_day`): an episode recomputed
    only for ledger rows that reach its span but not that day is kept (its rows are a
    function of data that did not change). None: the whole span counts."""
    with warehouse.connect() as con:
        plan = refresh_state.plan_episodes(con, asset, episodes,
                                           [("analytics", t) for t in tables])
        if last_read is None or not plan.recompute:
            return plan
        return _narrowed(con, plan, episodes, tables, last_read)


def _narrowed(con: duckdb.DuckDBPyConnection, plan: EpisodePlan, episodes: Sequence[Episode],
              tables: Sequence[str], last_read: Callable[[Episode], dt.date]) -> EpisodePlan:
    """`plan` with the episodes whose ledger changes since their last computation all
    start after `last_read` (less FACTS_LOOKAHEAD, `EpisodeSpan.touched_by`) moved to
    kept. Missing tables, a never computed or redefined episode still recompute."""
    if not all(wh.table_exists(con, "analytics", t) for t in tables):
        return plan
    state = {r[0]: (r[1], r[2]) for r in con.execute(
        f"SELECT episode_id, definition, seq FROM {refresh_state.STATE} WHERE asset = ?",
        [plan.asset]).fetchall()}
    recompute, kept, reasons = [], [], dict(plan.reasons)
    for e in episodes:
        if e.episode_id not in plan.recompute:
            kept.append(e.episode_id)
            continue
        seen = state.get(e.episode_id)
        if seen is None or seen[0] != definition_hash(e):
            recompute.append(e.episode_id)
            continue
        since = con.execute(f"SELECT dataset, changed_from FROM {refresh_state.LEDGER} "
                            "WHERE seq > ? ORDER BY seq", [seen[1]]).fetchall()
        reads = EpisodeSpan(episode_span(e).first, last_read(e))
        if any(reads.touched_by(c) for _, c in since):
            recompute.append(e.episode_id)
        else:
            kept.append(e.episode_id)
            reasons[e.episode_id] = (f"kept: {reasons.get(e.episode_id, 'changed')}, after "
                                     f"{reads.last}, the last day this asset reads")
    return EpisodePlan(plan.asset, tuple(recompute), tuple(kept), reasons, plan.seq)


def write_planned(warehouse: WarehouseResource, plan: EpisodePlan, table: str,
                  df: pl.DataFrame) -> int:
    """`df` (the recomputed episodes' rows) in place of theirs in analytics.`table`; the
    kept episodes' rows stay. Returns the table's rows after."""
    with warehouse.connect() as con:
        return refresh_state.replace_episodes(con, "analytics", table, df, plan)


def finish_plan(warehouse: WarehouseResource, plan: EpisodePlan,
                episodes: Sequence[Episode]) -> None:
    """Record that the asset's tables now reflect the ledger up to the plan's seq."""
    with warehouse.connect() as con:
        refresh_state.mark_done(con, plan, episodes)
