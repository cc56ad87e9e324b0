"""`selloff run --source live` without network: fails in seconds, names the first source it
could not reach, and leaves the published warehouse untouched."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selloff.sources.live.preflight import check_reachable


def _network_up() -> bool:
    try:
        check_reachable(timeout=2.0)
        return True
    except Exception:
        return False


@pytest.mark.skipif(_network_up(), reason="the live services are reachable: this test is for no network")
def test_live_run_without_network_fails_fast_and_touches_nothing(tmp_path: Path) -> None:
    published = tmp_path / "warehouse" / "selloff.duckdb"
    published.parent.mkdir(parents=True)
    published.write_bytes(b"previous published warehouse")
    before = hashlib.sha256(published.read_bytes()).hexdigest()
    env = {**os.environ, "SELLOFF_WAREHOUSE": str(published), "DAGSTER_HOME": str(tmp_path)}
    cli = Path(sys.executable).parent / "selloff"
    started = time.monotonic()
    proc = subprocess.run([str(cli), "run", "--source", "live"], env=env, capture_output=True,
                          text=True, timeout=120)
    elapsed = time.monotonic() - started
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 1
    assert elapsed < 60, elapsed
    assert "live sources not reachable: ECB" in out
    assert "was not changed" in out
    assert hashlib.sha256(published.read_bytes()).hexdigest() == before
