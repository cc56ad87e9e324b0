"""Shared fixtures: paths, the real snapshot (skipped with a reason when absent), and
a private warehouse path so tests never touch the project's own files."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_SNAPSHOT = (REPO_ROOT.parent / "shared" / "data" / "real_2025").resolve()

requires_real_snapshot = pytest.mark.skipif(
    not (REAL_SNAPSHOT / "manifest.json").exists(),
    reason=f"real snapshot not found at {REAL_SNAPSHOT} (it lives in ../shared/data, beside the repo)",
)


@pytest.fixture()
def isolated_env(tmp_path: Path) -> Path:
    """A private published-warehouse path (pass it to WarehouseResource(path=...))."""
    return tmp_path / "warehouse" / "selloff.duckdb"


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A Spark standalone cluster for the session: a master and two workers, each its own
    JVM on 127.0.0.1 (selloff.spark_cluster); yields its spark:// URL once both workers
    have registered with the master, and stops every JVM afterwards."""
    from selloff import dbt_runner
    from selloff.spark_cluster import StandaloneCluster

    reason = dbt_runner.spark_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with StandaloneCluster(tmp_path_factory.mktemp("spark_cluster"), workers=2) as cluster:
        assert cluster.alive_workers() == 2
        yield cluster
