"""Dagster resources: typed, configurable fields resolved once, when the definitions load.

`resources_for(settings)` turns the run settings (selloff.settings) into resource fields, so
the UI's launchpad shows the source, the warehouse and the refresh window a run will use,
and a run can override any of them. Secrets of the live sources are `dg.EnvVar`s: Dagster
reads them when a live run starts and never shows their values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
from pydantic import Field, PrivateAttr

from selloff import dbt_runner, warehouse
from selloff.episode import Episode, EpisodeError, load_episodes
from selloff.settings import DEFAULT_WAREHOUSE, PROJECT_ROOT, Settings
from selloff.sources import make_source
from selloff.sources.base import Source


def _built_by_spark(settings: Settings, schema: str) -> bool:
    # SELLOFF_DBT_TARGET=spark: the dbt schemas are Spark's Parquet tables, not in DuckDB.
    return settings.is_spark and schema in dbt_runner.DBT_SCHEMAS


class SourceResource(dg.ConfigurableResource):
    """Where the canonical datasets come from: the demo market, a snapshot folder or the
    live services."""

    kind: str = Field(default="demo", description="demo | snapshot | live")
    snapshot_dir: str | None = Field(default=None, description="snapshot folder (kind=snapshot)")
    demo_securities: int = Field(default=0, description="demo market: securities "
                                 "(0: every core name of every demo market)")
    demo_years: int = Field(default=2, description="demo market: years of history")
    demo_seed: int = Field(default=20251104, description="demo market: random seed")
    # Live secrets: EnvVar("SEC_USER_AGENT") etc. for kind=live (see resources_for); the live
    # source also reads SELLOFF_LIVE_* (window, universe) when the run starts.
    sec_user_agent: str | None = None
    krx_id: str | None = None
    krx_pw: str | None = None
    _source: Source | None = PrivateAttr(default=None)

    def settings(self) -> Settings:
        return Settings(
            source=self.kind,
            snapshot_dir=Path(self.snapshot_dir) if self.snapshot_dir else None,
            demo_securities=self.demo_securities, demo_years=self.demo_years,
            demo_seed=self.demo_seed,
        )

    def secrets(self) -> dict[str, str]:
        values = {"SEC_USER_AGENT": self.sec_user_agent, "KRX_ID": self.krx_id,
                  "KRX_PW": self.krx_pw}
        return {k: v for k, v in values.items() if v}

    def make_source(self) -> Source:
        # One source per run (per resource instance): a live source that found a service
        # unreachable then fails the other datasets at once instead of timing out again.
        if self._source is None:
            self._source = make_source(self.settings(), secrets=self.secrets())
        return self._source

    @property
    def is_synthetic(self) -> bool:
        # A snapshot exported from the demo market is synthetic too: ask the source.
        return self.make_source().synthetic


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse: runs write the build file, analysts read the published one.
    Also where the dbt target, the Parquet lake and Spark's files live."""

    path: str = Field(default=str(PROJECT_ROOT / DEFAULT_WAREHOUSE),
                      description="published warehouse file (runs write build/<name> beside it)")
    dbt_target: str = Field(default="duckdb", description="duckdb | spark | spark_thrift | databricks")
    lake_dir: str | None = Field(default=None, description="Parquet lake (default: <project>/lake)")
    spark_dir: str | None = Field(default=None, description="Spark tables and metastore")
    spark_master: str = Field(default="local[2]", description="Spark master: local[N] or "
                              "spark://host:port of a standalone cluster")

    def settings(self) -> Settings:
        return Settings(warehouse=Path(self.path), dbt_target=self.dbt_target,
                        lake_dir=self.lake_dir, spark_dir=self.spark_dir,
                        spark_master=self.spark_master)

    @property
    def build_path(self) -> Path:
        return self.settings().build_warehouse

    @property
    def published_path(self) -> Path:
        return self.settings().warehouse

    @property
    def reports_dir(self) -> Path:
        return self.settings().reports_dir

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.connect(self.build_path, read_only=read_only) as con:
            yield con

    def write(self, schema: str, table: str, df: pl.DataFrame) -> int:
        return warehouse.write_table(self.build_path, schema, table, df)

    def write_window(self, schema: str, table: str, df: pl.DataFrame, date_column: str,
                     first: dt.date, last: dt.date, entity_column: str | None = None,
                     markets: tuple[str, ...] = ()) -> int:
        with self.connect() as con:
            return warehouse.replace_window(con, schema, table, df, date_column, first, last,
                                            entity_column=entity_column, markets=markets)

    def read(self, schema: str, table: str) -> pl.DataFrame | None:
        settings = self.settings()
        if _built_by_spark(settings, schema):
            return dbt_runner.read_spark_table(settings, schema, table)
        with self.connect() as con:
            return warehouse.read_table(con, schema, table)

    def row_count(self, schema: str, table: str) -> int:
        """Rows of a table of the build file (0 when it does not exist)."""
        with self.connect() as con:
            return warehouse.row_count(con, schema, table)

    def read_many(self, tables: dict[str, tuple[str, str]]) -> dict[str, pl.DataFrame]:
        """Read several tables in one connection; absent tables are left out."""
        settings = self.settings()
        out: dict[str, pl.DataFrame] = {}
        with self.connect() as con:
            for name, (schema, table) in tables.items():
                if _built_by_spark(settings, schema):
                    df = dbt_runner.read_spark_table(settings, schema, table)
                else:
                    df = warehouse.read_table(con, schema, table)
                if df is not None:
                    out[name] = df
        return out

    def publish(self) -> Path:
        return warehouse.publish(self.build_path, self.published_path)


class RefreshWindow(dg.ConfigurableResource):
    """Which days a run refreshes. Empty (the default, and "Materialize all" in the UI): a
    full refresh, every table replaced. With `start` (and `end`, default `start`): the daily
    datasets replace only those days in `raw` (only `markets`' rows when given), and the
    daily dbt facts are rebuilt from `start` on, not from the beginning of the data.
    The market schedules set it to one market's session."""

    start: str | None = Field(default=None, description="first day to refresh, YYYY-MM-DD "
                              "(empty: full refresh)")
    end: str | None = Field(default=None, description="last day to refresh (default: start)")
    markets: list[str] = Field(default_factory=list, description="markets whose daily rows "
                               "are replaced (empty: all)")

    def dates(self) -> tuple[dt.date, dt.date] | None:
        """[first, last] of a windowed refresh, or None for a full refresh."""
        if not self.start:
            if self.end or self.markets:
                raise dg.Failure("refresh window: `end` or `markets` given without `start`")
            return None
        try:
            first = dt.date.fromisoformat(self.start)
            last = dt.date.fromisoformat(self.end) if self.end else first
        except ValueError as exc:
            raise dg.Failure(f"refresh window: {exc} (dates are YYYY-MM-DD)") from exc
        if last < first:
            raise dg.Failure(f"refresh window: end {last} is before start {first}")
        return first, last

    def dbt_vars(self) -> dict[str, str]:
        """The window as dbt vars (macros/incremental_window.sql); none on a full refresh."""
        window = self.dates()
        if window is None:
            return {}
        return {"min_date": window[0].isoformat(), "max_date": window[1].isoformat()}


class EpisodesResource(dg.ConfigurableResource):
    """Which sell-offs the analytics measure: episode folders (selloff.episode), every
    bundled one when empty. Each analytics table holds one block of rows per episode."""

    paths: list[str] = Field(default_factory=list, description="episode folders, each "
                             "holding episode.yaml (empty: the bundled episodes)")

    def load(self) -> tuple[Episode, ...]:
        """The validated episodes; an invalid file fails the run naming file, entry and rule."""
        try:
            return load_episodes(self.paths)
        except EpisodeError as exc:
            raise dg.Failure(str(exc)) from exc


def resources_for(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The run's resources from its settings (resolved once, when the definitions load)."""
    live = settings.source == "live"
    source = SourceResource(
        kind=settings.source,
        snapshot_dir=str(settings.snapshot_dir) if settings.snapshot_dir else None,
        demo_securities=settings.demo_securities, demo_years=settings.demo_years,
        demo_seed=settings.demo_seed,
        # EnvVars only where they are needed: an unset variable must not fail a demo run.
        sec_user_agent=dg.EnvVar("SEC_USER_AGENT") if live else None,
        krx_id=dg.EnvVar("KRX_ID") if live else None,
        krx_pw=dg.EnvVar("KRX_PW") if live else None,
    )
    store = WarehouseResource(path=str(settings.warehouse), dbt_target=settings.dbt_target,
                              lake_dir=settings.lake_dir, spark_dir=settings.spark_dir,
                              spark_master=settings.spark_master)
    return {"source": source, "warehouse": store, "refresh": RefreshWindow(),
            "episodes": EpisodesResource(paths=[str(p) for p in settings.episodes])}
