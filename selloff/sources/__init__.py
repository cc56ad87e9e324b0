"""Source adapters behind one interface, chosen by configuration."""

from __future__ import annotations

import os

from selloff.settings import Settings
from selloff.sources.base import Source


def make_source(settings: Settings) -> Source:
    """The source named by SELLOFF_SOURCE (demo, snapshot or live)."""
    if settings.source == "snapshot":
        from selloff.sources.snapshot import SnapshotSource

        return SnapshotSource(settings.snapshot_dir)
    if settings.source == "live":
        from selloff.sources.live import LiveSource
        from selloff.sources.live.preflight import check_reachable

        if os.environ.get("SELLOFF_LIVE_PREFLIGHT", "1") != "0":
            check_reachable()
        return LiveSource.from_env()
    from selloff.sources.demo import DemoSource

    return DemoSource(
        n_securities=settings.demo_securities, years=settings.demo_years, seed=settings.demo_seed
    )
