"""Dagster resources: typed, configurable, resolved from the environment at run time.

Unset fields fall back to the SELLOFF_* variables and then to the defaults (demo market,
warehouse/selloff.duckdb), so the UI, the CLI and the tests agree without code changes.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
from pydantic import PrivateAttr

from selloff import engines, warehouse
from selloff.settings import Settings, settings_from_env
from selloff.sources import make_source
from selloff.sources.base import Source


def _built_by_spark(settings: Settings, schema: str) -> bool:
    # SELLOFF_DBT_TARGET=spark: the dbt schemas are Spark's Parquet tables, not in DuckDB.
    return settings.is_spark and schema in engines.DBT_SCHEMAS


def _settings(**overrides: str | None) -> Settings:
    env = dict(os.environ)
    env.update({k: v for k, v in overrides.items() if v})
    return settings_from_env(env)


class SourceResource(dg.ConfigurableResource):
    """Where the canonical datasets come from: demo, snapshot or live.

    Secrets of the live sources (SEC_USER_AGENT, KRX_ID, KRX_PW) are read from the
    environment by the live source when a run starts; they are never resource config, so
    they never appear in run config, logs or the UI.
    """

    kind: str | None = None
    snapshot_dir: str | None = None
    _source: Source | None = PrivateAttr(default=None)

    def settings(self) -> Settings:
        return _settings(SELLOFF_SOURCE=self.kind, SELLOFF_SNAPSHOT_DIR=self.snapshot_dir)

    def make_source(self) -> Source:
        # One source per run (per resource instance): a live source that found a service
        # unreachable then fails the other datasets at once instead of timing out again.
        if self._source is None:
            self._source = make_source(self.settings())
        return self._source

    @property
    def is_synthetic(self) -> bool:
        # A snapshot exported from the demo market is synthetic too: ask the source.
        return self.make_source().synthetic


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse: runs write the build file, analysts read the published one."""

    path: str | None = None

    def settings(self) -> Settings:
        return _settings(SELLOFF_WAREHOUSE=self.path)

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
                     first: dt.date, last: dt.date) -> int:
        with self.connect() as con:
            return warehouse.replace_window(con, schema, table, df, date_column, first, last)

    def read(self, schema: str, table: str) -> pl.DataFrame | None:
        settings = self.settings()
        if _built_by_spark(settings, schema):
            return engines.read_spark_table(settings, schema, table)
        with self.connect() as con:
            return warehouse.read_table(con, schema, table)

    def read_many(self, tables: dict[str, tuple[str, str]]) -> dict[str, pl.DataFrame]:
        """Read several tables in one connection; absent tables are left out."""
        settings = self.settings()
        out: dict[str, pl.DataFrame] = {}
        with self.connect() as con:
            for name, (schema, table) in tables.items():
                if _built_by_spark(settings, schema):
                    df = engines.read_spark_table(settings, schema, table)
                else:
                    df = warehouse.read_table(con, schema, table)
                if df is not None:
                    out[name] = df
        return out

    def publish(self) -> Path:
        return warehouse.publish(self.build_path, self.published_path)
