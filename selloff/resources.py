"""Dagster resources: typed, configurable, resolved from the environment at run time."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from selloff.settings import Settings, settings_from_env
from selloff.sources import make_source
from selloff.sources.base import Source


class SelloffConfig(dg.ConfigurableResource):
    """Source and warehouse choice. Unset fields fall back to SELLOFF_* variables, then to
    the defaults (demo market, warehouse/selloff.duckdb), so the UI and the CLI agree."""

    source: str | None = None
    snapshot_dir: str | None = None
    warehouse: str | None = None

    def settings(self) -> Settings:
        env_overrides = {}
        if self.source:
            env_overrides["SELLOFF_SOURCE"] = self.source
        if self.snapshot_dir:
            env_overrides["SELLOFF_SNAPSHOT_DIR"] = self.snapshot_dir
        if self.warehouse:
            env_overrides["SELLOFF_WAREHOUSE"] = self.warehouse
        import os

        return settings_from_env({**os.environ, **env_overrides})

    def make_source(self) -> Source:
        return make_source(self.settings())

    @property
    def build_path(self) -> Path:
        return self.settings().build_warehouse

    @property
    def published_path(self) -> Path:
        return self.settings().warehouse
