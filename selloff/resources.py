"""Dagster resources: typed, configurable fields resolved once, when the definitions load.

`resources_for(settings)` turns the run settings (selloff.settings) into resource fields, so
the UI's launchpad shows the source, the warehouse and the refresh window a run will use,
and a run can override any of them. Secrets of the live sources are `dg.EnvVar`s: Dagster
reads them when a live run starts and never shows their values.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
from dagster._utils.interrupts import check_captured_interrupt
from pydantic import Field, PrivateAttr

from selloff import dbt_runner, run_health, warehouse, writer_lock
from selloff.episode import Episode, EpisodeError, load_episodes
from selloff.settings import (
    DEFAULT_STORAGE_VERSION,
    DEFAULT_WAREHOUSE,
    PROJECT_ROOT,
    LiveSettings,
    Settings,
    SettingsError,
    SourceKind,
    SourceSettings,
    StoreSettings,
)
from selloff.sources import make_source
from selloff.sources.base import Source


def _built_by_spark(settings: StoreSettings, schema: str) -> bool:
    # SELLOFF_DBT_TARGET=spark: the dbt schemas are Spark's Parquet tables, not in DuckDB.
    return settings.is_spark and schema in dbt_runner.DBT_SCHEMAS


_LIVE = LiveSettings()


class SourceResource(dg.ConfigurableResource):
    """Where the canonical datasets come from: the demo market, a snapshot folder or the
    live services. Its fields are the source section of the settings, whole (see
    `source_settings`): the launchpad shows and overrides every one of them."""

    kind: SourceKind = Field(default=SourceKind.demo, description="demo | snapshot | live")
    snapshot_dir: str | None = Field(default=None, description="snapshot folder (kind=snapshot)")
    demo_securities: int = Field(default=0, description="demo market: securities "
                                 "(0: every core name of every demo market)")
    demo_years: int = Field(default=2, description="demo market: years of history")
    demo_seed: int = Field(default=20251104, description="demo market: random seed")
    live_start: str = Field(default=_LIVE.start.isoformat(), description="live: first day")
    live_end: str = Field(default=_LIVE.end.isoformat(), description="live: last day")
    live_universe: str | None = Field(default=None, description="live: universe file "
                                      "(default: the packaged one)")
    live_cn_prices: str = Field(default=_LIVE.cn_prices, description="live: akshare | yahoo")
    live_sec_url: str | None = Field(default=None, description="live: SEC base URL")
    live_ecb_url: str | None = Field(default=None, description="live: ECB base URL")
    live_jpx_url: str | None = Field(default=None, description="live: JPX base URL")
    live_max_attempts: int = Field(default=_LIVE.max_attempts, description="live: attempts")
    live_connect_timeout: float = Field(default=_LIVE.connect_timeout,
                                        description="live: seconds to connect")
    live_preflight: bool = Field(default=True, description="live: check every service is "
                                 "reachable before the run")
    # Live secrets: EnvVar("SEC_USER_AGENT") etc. for kind=live (see resources_for).
    sec_user_agent: str | None = None
    krx_id: str | None = None
    krx_pw: str | None = None
    _source: Source | None = PrivateAttr(default=None)

    def source_settings(self) -> SourceSettings:
        """The source section these fields describe, validated (SettingsError names the
        field and the rule)."""
        try:
            start = dt.date.fromisoformat(self.live_start)
            end = dt.date.fromisoformat(self.live_end)
        except ValueError as exc:
            raise SettingsError(f"live_start/live_end: {exc} (dates are YYYY-MM-DD)") from None
        live = LiveSettings(
            start=start, end=end,
            universe_path=Path(self.live_universe) if self.live_universe else None,
            sec_user_agent=self.sec_user_agent or None, krx_id=self.krx_id or None,
            krx_pw=self.krx_pw or None, cn_prices=self.live_cn_prices,
            sec_base_url=self.live_sec_url, ecb_base_url=self.live_ecb_url,
            jpx_base_url=self.live_jpx_url, max_attempts=self.live_max_attempts,
            connect_timeout=self.live_connect_timeout, preflight=self.live_preflight)
        return SourceSettings(
            kind=self.kind, snapshot_dir=Path(self.snapshot_dir) if self.snapshot_dir else None,
            demo_securities=self.demo_securities, demo_years=self.demo_years,
            demo_seed=self.demo_seed, live=live)

    def make_source(self) -> Source:
        # One source per run (per resource instance): a live source that found a service
        # unreachable then fails the other datasets at once instead of timing out again.
        if self._source is None:
            self._source = make_source(self.source_settings())
        return self._source

    @property
    def is_synthetic(self) -> bool:
        # The one notion of synthetic is the source's own flag (a snapshot exported from
        # the demo market is synthetic too).
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
    storage_version: str = Field(default=DEFAULT_STORAGE_VERSION,
                                 description="DuckDB storage format of the build and published "
                                 "files (v1.4.0: DuckDB 1.4+ and 2.0 read them; latest: 2.0 only)")
    writer_timeout: float = Field(default=writer_lock.DEFAULT_TIMEOUT_SECONDS, ge=0,
                                  description="seconds this run waits for another run "
                                  "holding the warehouse's writer lock (0: fail at once)")

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[WarehouseResource]:
        """Hold the warehouse's writer lock for the whole run (resources start once per
        run with the in-process executor, before any step claims a pool slot), then mark
        failed and free the slots of runs whose process is gone."""
        instance, run_id = context.instance, context.run_id
        build_file = self.build_path
        if instance is not None and run_id and instance.has_run(run_id):
            # Name this process first, so that whoever takes the lock after a kill can
            # tell this run is dead.
            instance.add_run_tags(run_id, run_health.process_tags(build_file))

        def report(message: str) -> None:
            context.log.info(message)
            print(message, file=sys.stderr, flush=True)

        try:
            # Dagster defers SIGTERM/SIGINT during a run; a waiting run must still stop.
            with writer_lock.hold(build_file, timeout=self.writer_timeout, run_id=run_id,
                                  report=report, interrupted=check_captured_interrupt):
                if instance is not None:
                    for line in run_health.release_dead_runs(instance, run_id):
                        report(f"released a dead run: {line}")
                # One DuckDB instance of the build file for all the run's steps.
                with warehouse.held_open(build_file):
                    yield self
        except writer_lock.WriterLockTimeout as exc:
            raise dg.Failure(str(exc), metadata={"lock": str(exc.path)}) from exc

    def settings(self) -> StoreSettings:
        """The store section these fields describe, whole."""
        return StoreSettings(warehouse=Path(self.path), dbt_target=self.dbt_target,
                             lake_dir=self.lake_dir, spark_dir=self.spark_dir,
                             spark_master=self.spark_master, writer_timeout=self.writer_timeout,
                             storage_version=self.storage_version)

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
        with warehouse.connect(self.build_path, read_only=read_only,
                               storage_version=self.storage_version) as con:
            yield con

    def write(self, schema: str, table: str, df: pl.DataFrame) -> int:
        return warehouse.write_table(self.build_path, schema, table, df,
                                     storage_version=self.storage_version)

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
        return warehouse.publish(self.build_path, self.published_path,
                                 storage_version=self.storage_version)


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
        """The window as dbt vars (macros/incremental_window.sql); none on a full refresh.
        Only for a target that cannot read the window from the build file (Spark): on
        DuckDB the dbt asset writes it there instead (dbt_runner.set_refresh_window), since
        vars that change from run to run make dbt parse the whole project again."""
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
    src, store = settings.source, settings.store
    live = src.live
    is_live = src.kind is SourceKind.live
    source = SourceResource(
        kind=src.kind,
        snapshot_dir=str(src.snapshot_dir) if src.snapshot_dir else None,
        demo_securities=src.demo_securities, demo_years=src.demo_years,
        demo_seed=src.demo_seed,
        live_start=live.start.isoformat(), live_end=live.end.isoformat(),
        live_universe=str(live.universe_path) if live.universe_path else None,
        live_cn_prices=live.cn_prices, live_sec_url=live.sec_base_url,
        live_ecb_url=live.ecb_base_url, live_jpx_url=live.jpx_base_url,
        live_max_attempts=live.max_attempts, live_connect_timeout=live.connect_timeout,
        live_preflight=live.preflight,
        # EnvVars only where they are needed: an unset variable must not fail a demo run.
        # Dagster reads them when a live run starts and never shows their values.
        sec_user_agent=dg.EnvVar("SEC_USER_AGENT") if is_live else None,
        krx_id=dg.EnvVar("KRX_ID") if is_live else None,
        krx_pw=dg.EnvVar("KRX_PW") if is_live else None,
    )
    warehouse_resource = WarehouseResource(
        path=str(store.warehouse), dbt_target=store.dbt_target, lake_dir=store.lake_dir,
        spark_dir=store.spark_dir, spark_master=store.spark_master,
        writer_timeout=store.writer_timeout, storage_version=store.storage_version)
    return {"source": source, "warehouse": warehouse_resource, "refresh": RefreshWindow(),
            "episodes": EpisodesResource(paths=[str(p) for p in settings.episodes])}
