"""dbt in the step's process (orchestration/dbt_in_process.py): the parsed project is kept
per process and reused only where it compiles to the same SQL, each build writes its own
file and lets go of it, and a failure is reported as the subprocess's was."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from dagster_dbt import DagsterDbtTranslator
from packaging import version

from orchestration import dbt_in_process
from orchestration.dbt import DBT_PROJECT_DIR, load_manifest
from selloff import dbt_runner

BASE_VARS = {"selloff_build_db": "/a/warehouse/build/selloff.duckdb", "selloff_lake_dir": "/a/lake",
             "selloff_spark_dir": "/a/spark", "selloff_spark_master": "local[2]",
             "selloff_storage_version": "v1.4.0"}


def test_manifest_key_ignores_where_the_data_lives_and_nothing_else() -> None:
    key = dbt_in_process.manifest_key("fp", "duckdb", BASE_VARS)
    moved = {**BASE_VARS, "selloff_build_db": "/b/x/build/selloff.duckdb",
             "selloff_lake_dir": "/b/lake", "selloff_spark_dir": "/b/spark"}
    assert dbt_in_process.manifest_key("fp", "duckdb", moved) == key
    # the file's stem is DuckDB's catalog name, in every compiled relation
    renamed = {**BASE_VARS, "selloff_build_db": "/a/warehouse/build/other.duckdb"}
    assert dbt_in_process.manifest_key("fp", "duckdb", renamed) != key
    assert dbt_in_process.manifest_key("fp2", "duckdb", BASE_VARS) != key
    assert dbt_in_process.manifest_key("fp", "spark", BASE_VARS) != key
    for name, value in (("selloff_storage_version", "v1.5.0"), ("min_earnings_coverage", 0.5)):
        assert dbt_in_process.manifest_key("fp", "duckdb", {**BASE_VARS, name: value}) != key


def _seed_build(tmp_path: Path, build_db: Path) -> dbt_in_process.InProcessDbtInvocation:
    """An in-process `dbt seed` into build_db, run to its end."""
    dbt_vars = {**BASE_VARS, "selloff_build_db": str(build_db)}
    target_path = tmp_path / f"target_{build_db.parent.name}"
    flags = dbt_in_process.dbt_core_flags(
        target="duckdb", dbt_vars=json.dumps(dbt_vars), project_dir=DBT_PROJECT_DIR,
        profiles_dir=str(DBT_PROJECT_DIR), target_path=target_path)
    dbt_args = ["seed", *flags]
    invocation = dbt_in_process.InProcessDbtInvocation(
        process=dbt_in_process.InProcessRun(args=dbt_args), manifest=load_manifest(),
        dagster_dbt_translator=DagsterDbtTranslator(), project_dir=DBT_PROJECT_DIR,
        target_path=target_path, raise_on_error=False, context=None, adapter=None,
        cli_version=version.parse("1.11"), dbt_args=dbt_args, parse_args=["parse", *flags],
        key=dbt_in_process.manifest_key(dbt_runner.project_fingerprint(), "duckdb", dbt_vars))
    return invocation.wait()


def test_two_builds_in_one_process_parse_once_and_each_writes_its_own_file(tmp_path: Path) -> None:
    dbt_in_process.forget_manifests()
    files = [tmp_path / name / "selloff.duckdb" for name in ("one", "two")]
    for db in files:
        db.parent.mkdir()
        assert _seed_build(tmp_path, db).is_successful()
    # only the first parsed (dbt writes its parse state where it parses)
    assert (tmp_path / "target_one" / "partial_parse.msgpack").exists()
    assert not (tmp_path / "target_two" / "partial_parse.msgpack").exists()
    for db in files:
        # dbt let go of the file: a connection of another configuration opens it
        with duckdb.connect(str(db), config={"threads": 1}) as con:
            rows = con.execute("SELECT count(*) FROM staging.markets").fetchone()
        assert rows is not None and rows[0] > 0, db
    dbt_in_process.forget_manifests()


def test_a_failed_build_is_an_error_naming_dbts_message(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked" / "selloff.duckdb"
    blocked.mkdir(parents=True)  # a folder where the build file should be
    invocation = _seed_build(tmp_path, blocked)
    assert not invocation.is_successful()
    error = invocation.get_error()
    assert error is not None and str(blocked) in str(error), error
