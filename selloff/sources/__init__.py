"""Source adapters behind one interface, chosen by configuration."""

from __future__ import annotations

from selloff.settings import SourceKind, SourceSettings
from selloff.sources.base import Source


def make_source(settings: SourceSettings) -> Source:
    """The source the settings name: demo, snapshot or live. Pure: everything comes from
    `settings` (the live section holds the window, the universe and the secrets), nothing
    from the process environment. The live source first checks every service is reachable
    unless `settings.live.preflight` is off."""
    if settings.kind is SourceKind.snapshot:
        from selloff.sources.snapshot import SnapshotSource

        assert settings.snapshot_dir is not None  # SourceSettings refuses a snapshot without one
        return SnapshotSource(settings.snapshot_dir)
    if settings.kind is SourceKind.live:
        from selloff.sources.live import LiveSource
        from selloff.sources.live.preflight import check_reachable

        if settings.live.preflight:
            check_reachable()
        return LiveSource.from_settings(settings.live)
    if settings.kind is SourceKind.demo:
        from selloff.sources.demo import DemoSource

        return DemoSource(n_securities=settings.demo_securities, years=settings.demo_years,
                          seed=settings.demo_seed)
    raise AssertionError(f"unhandled source kind {settings.kind!r}")  # pragma: no cover
