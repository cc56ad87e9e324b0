"""Run settings resolved from the environment when a run starts (never at import time)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WAREHOUSE = "warehouse/selloff.duckdb"
SOURCE_KINDS = ("demo", "snapshot", "live")


@dataclass(frozen=True)
class Settings:
    """Where data comes from and where the warehouse lives.

    `warehouse` is the published file analysts open read-only; `build_warehouse` is the
    file the run writes, published by copy + atomic rename once blocking checks pass.
    """

    source: str = "demo"
    snapshot_dir: Path | None = None
    warehouse: Path = PROJECT_ROOT / DEFAULT_WAREHOUSE
    demo_securities: int = 80
    demo_years: int = 2
    demo_seed: int = 20251104

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


def _path(value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (Path.cwd() / p).resolve()


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
    return Settings(
        source=source,
        snapshot_dir=_path(snap) if snap else None,
        warehouse=_path(warehouse),
        demo_securities=int(env.get("SELLOFF_DEMO_SECURITIES", "80")),
        demo_years=int(env.get("SELLOFF_DEMO_YEARS", "2")),
        demo_seed=int(env.get("SELLOFF_DEMO_SEED", "20251104")),
    )
