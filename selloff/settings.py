"""Run settings resolved from the environment when a run starts (never at import time)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WAREHOUSE = "warehouse/selloff.duckdb"
SOURCE_KINDS = ("demo", "snapshot", "live")
# dbt targets of dbt_project/profiles.yml: DuckDB, Spark in this process's machine (local
# mode), and Spark on a cluster (docs/CLUSTER.md).
DBT_TARGETS = ("duckdb", "spark", "spark_thrift", "databricks")
# Storage format of the DuckDB files the project writes (the build file and so the
# published copy), fixed when a file is created. DuckDB 2.0's own format ("latest") opens
# in no 1.x client; v1.4.0 opens in DuckDB 1.4, 1.5 (the newest CLI on PyPI) and 2.0, so
# analysts' CLIs, JDBC/ODBC drivers and notebooks read the published file.
DEFAULT_STORAGE_VERSION = "v1.4.0"
_STORAGE_VERSION = re.compile(r"^(v\d+\.\d+\.\d+|latest)$")


@dataclass(frozen=True)
class Settings:
    """Where data comes from and where the warehouse lives.

    `warehouse` is the published file analysts open read-only; `build_warehouse` is the
    file the run writes, published by copy + atomic rename once blocking checks pass.
    """

    source: str = "demo"
    snapshot_dir: Path | None = None
    warehouse: Path = PROJECT_ROOT / DEFAULT_WAREHOUSE
    demo_securities: int = 0  # 0: every core name of every demo market
    demo_years: int = 2
    demo_seed: int = 20251104
    dbt_target: str = "duckdb"
    lake_dir: str | None = None
    spark_dir: str | None = None
    # Spark master URL for the `spark` target: local mode by default, or a cluster's
    # spark://host:port (the parity test starts a standalone one, selloff.spark_cluster).
    spark_master: str = "local[2]"
    # Episode folders the analytics measure (selloff.episode); empty = the bundled ones.
    episodes: tuple[Path, ...] = ()
    storage_version: str = DEFAULT_STORAGE_VERSION

    @property
    def build_warehouse(self) -> Path:
        return self.warehouse.parent / "build" / self.warehouse.name

    @property
    def reports_dir(self) -> Path:
        """Reports sit beside the warehouse folder: <project>/reports by default."""
        return self.warehouse.parent.parent / "reports"

    @property
    def is_synthetic(self) -> bool:
        return self.source == "demo"

    @property
    def lake(self) -> str:
        """Root of the Parquet lake: a folder, or an object-store URL (s3://...). Beside the
        warehouse folder by default (<project>/lake), so a private warehouse gets a private lake."""
        return self.lake_dir or str(self.warehouse.parent.parent / "lake")

    @property
    def spark_root(self) -> str:
        """Spark's folder: its table warehouse (`<root>/warehouse`) and, in local mode, the
        Derby metastore (<project>/spark_warehouse by default; an s3:// URL on a cluster)."""
        return self.spark_dir or str(self.warehouse.parent.parent / "spark_warehouse")

    @property
    def is_spark(self) -> bool:
        return self.dbt_target != "duckdb"


def _path(value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (Path.cwd() / p).resolve()


def _location(value: str) -> str:
    # Object-store URLs (s3://, gs://, abfss://) pass as they are; folders become absolute.
    return value if "://" in value else str(_path(value))


def settings_from_env(env: dict[str, str] | None = None) -> Settings:
    """Read SELLOFF_* variables; unknown source kinds fail with the allowed values named."""
    env = dict(os.environ if env is None else env)
    source = env.get("SELLOFF_SOURCE", "demo").strip().lower() or "demo"
    if source not in SOURCE_KINDS:
        raise ValueError(f"SELLOFF_SOURCE={source!r} is not one of {', '.join(SOURCE_KINDS)}")
    snap = env.get("SELLOFF_SNAPSHOT_DIR")
    if source == "snapshot" and not snap:
        raise ValueError("SELLOFF_SOURCE=snapshot needs SELLOFF_SNAPSHOT_DIR=<folder>")
    warehouse = env.get("SELLOFF_WAREHOUSE") or str(PROJECT_ROOT / DEFAULT_WAREHOUSE)
    target = env.get("SELLOFF_DBT_TARGET", "duckdb").strip().lower() or "duckdb"
    if target not in DBT_TARGETS:
        raise ValueError(f"SELLOFF_DBT_TARGET={target!r} is not one of {', '.join(DBT_TARGETS)}")
    lake = env.get("SELLOFF_LAKE_DIR")
    spark = env.get("SELLOFF_SPARK_DIR")
    storage = env.get("SELLOFF_STORAGE_VERSION", "").strip() or DEFAULT_STORAGE_VERSION
    if not _STORAGE_VERSION.match(storage):
        raise ValueError(f"SELLOFF_STORAGE_VERSION={storage!r} is not a DuckDB storage version "
                         f"such as {DEFAULT_STORAGE_VERSION} (or 'latest')")
    return Settings(
        source=source,
        snapshot_dir=_path(snap) if snap else None,
        warehouse=_path(warehouse),
        demo_securities=int(env.get("SELLOFF_DEMO_SECURITIES", "0")),
        demo_years=int(env.get("SELLOFF_DEMO_YEARS", "2")),
        demo_seed=int(env.get("SELLOFF_DEMO_SEED", "20251104")),
        dbt_target=target,
        lake_dir=_location(lake) if lake else None,
        spark_dir=_location(spark) if spark else None,
        spark_master=env.get("SELLOFF_SPARK_MASTER", "").strip() or "local[2]",
        episodes=tuple(_path(p) for p in env.get("SELLOFF_EPISODES", "").split(os.pathsep)
                       if p.strip()),
        storage_version=storage,
    )
