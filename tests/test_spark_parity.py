"""The same dbt models on DuckDB and on a Spark standalone cluster give the same marts.

A small demo market is landed once into a DuckDB build file and written to a Parquet lake
in a private folder; `dbt build` runs on both targets (models, data tests and unit tests),
and every mart is compared table by table: same columns and types, same keys, equal values,
floats within 1e-9 relative. Spark runs on a real cluster that the session fixture
`spark_cluster` (tests/conftest.py) starts: a master and two workers as separate JVMs,
reached by a spark:// URL; dbt's driver runs in the dbt process. Skipped, with the reason,
where Java or pyspark/dbt-spark are missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from selloff import dbt_runner, lake, mart_comparison, warehouse
from selloff.marts import MART_KEYS
from selloff.settings import StoreSettings, settings_from_env

SPARK_MISSING = dbt_runner.spark_unavailable_reason()
needs_spark = pytest.mark.skipif(SPARK_MISSING is not None, reason=SPARK_MISSING or "")
N_SECURITIES = "20"
REL_TOL = 1e-9
# Spark session settings for this build only (dbt vars read by profiles.yml; a user's build
# keeps Spark's defaults). At 20 securities each of the ~170 queries runs once, over a few
# thousand rows, on JVMs that start cold: the time goes to JIT compilation, whole-stage code
# generation, adaptive re-planning, shuffles into several partitions and the scheduler's
# 3 s locality wait, not to data. Results do not depend on any of them (sums may add in
# another order: the marts are compared within REL_TOL).
SMALL_DATA_SPARK_VARS = {
    "selloff_spark_shuffle_partitions": "1",
    "selloff_spark_adaptive": "false",
    "selloff_spark_codegen": "false",
    "selloff_spark_locality_wait": "0s",
    # C1 only: short-lived JVMs spend less CPU compiling code they run a few times.
    "selloff_spark_jvm_options": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, spark_cluster) -> tuple[StoreSettings, Path]:
    root = tmp_path_factory.mktemp("spark_parity")
    settings = settings_from_env({
        "SELLOFF_SPARK_MASTER": spark_cluster.url,
        "SELLOFF_WAREHOUSE": str(root / "warehouse" / "selloff.duckdb"),
        "SELLOFF_LAKE_DIR": str(root / "lake"),
        "SELLOFF_SPARK_DIR": str(root / "spark"),
        "SELLOFF_SOURCE": "demo",
        "SELLOFF_DEMO_SECURITIES": N_SECURITIES,
    })
    dbt_runner.land_raw(settings)
    settings = settings.store
    dbt_runner.write_raw_lake(settings)
    apps_before = len(spark_cluster.state().get("completedapps", []))
    for target in ("duckdb", "spark"):
        run = dbt_runner.dbt_build(settings, target, root,
                                   extra_vars=SMALL_DATA_SPARK_VARS if target == "spark" else None)
        assert run.ok, f"dbt build --target {target} failed:\n{run.output[-6000:]}"
        (root / f"dbt_{target}.log").write_text(run.output, encoding="utf-8")
        print(f"\ndbt build --target {target}: {run.seconds:.1f} s")
    # The Spark build ran as an application of the cluster, on both workers' executors.
    apps = spark_cluster.state().get("completedapps", [])
    assert len(apps) == apps_before + 1, apps
    (root / "spark_app.json").write_text(json.dumps(apps[-1]), encoding="utf-8")
    return settings, root


@needs_spark
@pytest.mark.slow
def test_spark_build_runs_every_model_and_test(built) -> None:
    _, root = built
    log = (root / "dbt_spark.log").read_text(encoding="utf-8")
    assert "ERROR=0" in log and "WARN=0" in log
    # the whole project ran there, unit tests included, not a subset
    duck = (root / "dbt_duckdb.log").read_text(encoding="utf-8")
    total = [line.split("TOTAL=")[1].strip() for line in log.splitlines() if "TOTAL=" in line]
    assert total and total == [line.split("TOTAL=")[1].strip()
                               for line in duck.splitlines() if "TOTAL=" in line]


@needs_spark
@pytest.mark.slow
@pytest.mark.parametrize("table", sorted(MART_KEYS))
def test_mart_is_the_same_on_both_engines(built, table: str) -> None:
    settings, _ = built
    with warehouse.connect(settings.build_warehouse, read_only=True) as con:
        duck = warehouse.read_table(con, "marts", table)
    spark = dbt_runner.read_spark_table(settings, "marts", table)
    assert duck is not None and spark is not None
    assert duck.height > 0, f"{table} is empty: the comparison would prove nothing"
    diff = mart_comparison.compare_tables(table, duck, spark, MART_KEYS[table], rel_tol=REL_TOL)
    print(f"\n{table}: {diff.rows_left} rows on DuckDB, {diff.rows_right} on Spark, "
          f"max relative difference {diff.max_rel_diff:.2e} ({diff.worst_column or '-'})")
    assert diff.same, diff.problems


@needs_spark
@pytest.mark.slow
def test_spark_read_the_raw_layer_from_the_lake(built) -> None:
    settings, _ = built
    # Spark never saw the DuckDB file: its sources are parquet.`<lake>/raw/<table>`.
    compiled = (Path(built[1]) / "target_spark" / "compiled" / "selloff" / "models" / "staging"
                / "stg_prices_daily.sql")
    assert f"parquet.`{settings.lake}/raw/prices_daily`" in compiled.read_text(encoding="utf-8")
    assert not (Path(settings.spark_root) / "warehouse" / "raw.db").exists()


@needs_spark
@pytest.mark.slow
def test_lake_round_trip_of_the_raw_layer(built) -> None:
    settings, _ = built
    with warehouse.connect(settings.build_warehouse, read_only=True) as con:
        for table in ("prices_daily", "securities", "fx_rates_daily", "baskets"):
            duck = warehouse.read_table(con, "raw", table)
            back = lake.read_table(lake.table_path(settings.lake, "raw", table))
            assert back is not None and back.columns == duck.columns
            key = [c for c in duck.columns if c not in ("source",)]
            assert back.sort(key, nulls_last=True).equals(duck.sort(key, nulls_last=True)), table


@needs_spark
@pytest.mark.slow
def test_analytics_read_the_marts_spark_built(built) -> None:
    """SELLOFF_DBT_TARGET=spark: WarehouseResource serves marts from Spark's Parquet
    tables (the DuckDB file of a Spark run has none), raw and analytics from DuckDB."""
    from selloff.resources import WarehouseResource

    settings, _ = built
    resource = WarehouseResource(path=str(settings.warehouse), spark_dir=settings.spark_root,
                                 dbt_target="spark")
    frames = resource.read_many({"caps": ("marts", "fct_market_cap_daily"),
                                 "prices": ("raw", "prices_daily")})
    spark_caps = dbt_runner.read_spark_table(settings, "marts", "fct_market_cap_daily")
    assert frames["caps"].equals(spark_caps)
    assert frames["prices"].height == frames["caps"].height
    assert resource.read("marts", "no_such_mart") is None


@needs_spark
@pytest.mark.slow
def test_spark_marts_go_to_the_lake_like_duckdb_ones(built, tmp_path: Path) -> None:
    settings, _ = built
    table = "fct_market_cap_daily"
    with warehouse.connect(settings.build_warehouse, read_only=True) as con:
        from_duck = lake.write_schema(con, "marts", tmp_path / "duck", tables=[table])[0]
    spark = dbt_runner.read_spark_table(settings, "marts", table)
    from_spark = lake.write_frame(spark, lake.table_path(tmp_path / "spark", "marts", table), table)
    assert from_spark.partition_by == from_duck.partition_by == ("market", "month")
    assert from_spark.files == from_duck.files
    a = lake.read_table(from_duck.path)
    b = lake.read_table(from_spark.path)
    assert mart_comparison.compare_tables(table, a, b, MART_KEYS[table]).same


def test_compare_tables_finds_each_kind_of_difference() -> None:
    a = pl.DataFrame({"id": ["x", "y"], "v": [1.0, 2.0], "s": ["p", None]})
    assert mart_comparison.compare_tables("t", a, a.reverse(), ("id",)).same
    close = a.with_columns(pl.col("v") * (1 + 1e-12))
    assert mart_comparison.compare_tables("t", a, close, ("id",)).same
    far = a.with_columns(pl.col("v") * (1 + 1e-6))
    assert "relative difference" in mart_comparison.compare_tables("t", a, far, ("id",)).problems[0]
    nulls = a.with_columns(pl.lit("p").alias("s"))
    assert "null in one build only" in mart_comparison.compare_tables("t", a, nulls, ("id",)).problems[0]
    other_key = a.with_columns(pl.Series("id", ["x", "z"]))
    assert "keys only in left: 1" in mart_comparison.compare_tables("t", a, other_key, ("id",)).problems[0]
    dupes = pl.concat([a, a.head(1)])
    assert "duplicate keys" in mart_comparison.compare_tables("t", a, dupes, ("id",)).problems[0]
    cast = a.with_columns(pl.col("v").cast(pl.Float32))
    assert "types differ" in mart_comparison.compare_tables("t", a, cast, ("id",)).problems[0]
