"""Source adapters behind one interface, chosen by configuration."""

from __future__ import annotations

import os
from collections.abc import Mapping

from selloff.settings import Settings
from selloff.sources.base import Source


def make_source(settings: Settings, secrets: Mapping[str, str] | None = None) -> Source:
    """The source named by the settings (demo, snapshot or live). `secrets` (the live
    sources' SEC_USER_AGENT, KRX_ID, KRX_PW, from the Dagster resource's EnvVars) take
    precedence over the process environment, which still supplies SELLOFF_LIVE_*."""
    if settings.source == "snapshot":
        from selloff.sources.snapshot import SnapshotSource

        return SnapshotSource(settings.snapshot_dir)
    if settings.source == "live":
        from selloff.sources.live import LiveSource
        from selloff.sources.live.preflight import check_reachable

        if os.environ.get("SELLOFF_LIVE_PREFLIGHT", "1") != "0":
            check_reachable()
        return LiveSource.from_env({**os.environ, **(secrets or {})})
    from selloff.sources.demo import DemoSource

    return DemoSource(
        n_securities=settings.demo_securities, years=settings.demo_years, seed=settings.demo_seed
    )
