"""The Parquet lake writer (selloff/lake.py): layout, round trip, empty tables, replacement."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from selloff import lake
from selloff.settings import settings_from_env


def _prices() -> pl.DataFrame:
    days = [dt.date(2025, 10, 30), dt.date(2025, 10, 31), dt.date(2025, 11, 3)]
    return pl.DataFrame({
        "security_id": ["US:NVDA", "US:NVDA", "US:NVDA", "KR:005930", "KR:005930", "KR:005930"],
        "trade_date": days * 2,
        "close": [202.5, 202.0, 206.9, 104100.0, 104400.0, 111200.0],
        "adj_close": [None] * 6,
        "currency": ["USD"] * 3 + ["KRW"] * 3,
    }, schema_overrides={"adj_close": pl.Float64})


def test_hive_layout_by_market_and_month(tmp_path: Path) -> None:
    out = lake.write_frame(_prices(), lake.table_path(tmp_path, "raw", "prices_daily"), "prices_daily")
    assert out.rows == 6 and out.partition_by == ("market", "month")
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.parquet"))
    assert files == [
        "raw/prices_daily/market=KR/month=2025-10/part-0.parquet",
        "raw/prices_daily/market=KR/month=2025-11/part-0.parquet",
        "raw/prices_daily/market=US/month=2025-10/part-0.parquet",
        "raw/prices_daily/market=US/month=2025-11/part-0.parquet",
    ]
    meta = json.loads((tmp_path / "raw" / "prices_daily" / lake.META_FILE).read_text())
    assert meta["derived_columns"] == ["market", "month"] and meta["rows"] == 6
    # partition values live in folder names only: the files hold the table's own columns
    one = pl.read_parquet(tmp_path / files[0], hive_partitioning=False)
    assert one.columns == _prices().columns


def test_round_trip_gives_the_table_back(tmp_path: Path) -> None:
    dest = lake.table_path(tmp_path, "raw", "prices_daily")
    lake.write_frame(_prices(), dest, "prices_daily")
    back = lake.read_table(dest)
    assert back is not None
    assert back.sort("security_id", "trade_date").equals(_prices().sort("security_id", "trade_date"))


def test_other_engines_read_the_partitions_as_columns(tmp_path: Path) -> None:
    dest = lake.table_path(tmp_path, "raw", "prices_daily")
    lake.write_frame(_prices(), dest, "prices_daily")
    rows = duckdb.sql(
        f"SELECT market, month, count(*) FROM read_parquet('{dest}/**/*.parquet', "
        "hive_partitioning = true) GROUP BY ALL ORDER BY ALL").fetchall()
    assert rows == [("KR", "2025-10", 2), ("KR", "2025-11", 1), ("US", "2025-10", 2),
                    ("US", "2025-11", 1)]


def test_own_market_column_is_the_partition_and_comes_back(tmp_path: Path) -> None:
    df = pl.DataFrame({"security_id": ["US:A", "CN:B"], "market": ["US", "CN"], "is_ai": [True, False]})
    dest = lake.table_path(tmp_path, "marts", "dim_security")
    out = lake.write_frame(df, dest, "dim_security")
    assert out.partition_by == ("market",)
    assert lake.read_table(dest).sort("security_id").equals(df.sort("security_id"))


def test_table_without_market_or_date_is_one_file(tmp_path: Path) -> None:
    df = pl.DataFrame({"sector": ["Banks"], "sector_group": ["banks"]})
    dest = lake.table_path(tmp_path, "marts", "sector_groups")
    assert lake.write_frame(df, dest, "sector_groups").partition_by == ()
    assert [p.name for p in Path(dest).rglob("*.parquet")] == ["part-0.parquet"]


def test_empty_table_keeps_its_schema(tmp_path: Path) -> None:
    empty = _prices().clear()
    dest = lake.table_path(tmp_path, "raw", "prices_daily")
    out = lake.write_frame(empty, dest, "prices_daily")
    assert out.rows == 0 and out.files == 1
    back = lake.read_table(dest)
    assert back is not None and back.height == 0 and back.schema == empty.schema


def test_rewrite_replaces_the_whole_table(tmp_path: Path) -> None:
    dest = lake.table_path(tmp_path, "raw", "prices_daily")
    lake.write_frame(_prices(), dest, "prices_daily")
    lake.write_frame(_prices().filter(pl.col("security_id") == "US:NVDA"), dest, "prices_daily")
    assert not (Path(dest) / "market=KR").exists()
    assert lake.read_table(dest).height == 3
    assert [p.name for p in tmp_path.joinpath("raw").iterdir()] == ["prices_daily"]


def test_write_schema_from_duckdb(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("CREATE SCHEMA raw")
        con.register("p", _prices().to_arrow())
        con.execute("CREATE TABLE raw.prices_daily AS SELECT * FROM p")
        con.execute("CREATE TABLE raw.fx_rates_daily AS SELECT DATE '2025-11-03' AS trade_date, "
                    "'KRW' AS currency, 0.0007 AS usd_per_unit")
        written = lake.write_schema(con, "raw", tmp_path / "lake")
    assert {w.table: w.partition_by for w in written} == {
        "fx_rates_daily": ("month",), "prices_daily": ("market", "month")}


def test_unsafe_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a safe SQL identifier"):
        lake.table_path(tmp_path, "raw", "x; drop table y")


def test_lake_and_spark_folders_follow_the_warehouse() -> None:
    s = settings_from_env({"SELLOFF_WAREHOUSE": "/data/w/warehouse/selloff.duckdb"})
    assert s.lake == "/data/w/lake" and s.spark_root == "/data/w/spark_warehouse"
    assert s.dbt_target == "duckdb" and not s.is_spark
    s3 = settings_from_env({"SELLOFF_LAKE_DIR": "s3://bucket/selloff/lake", "SELLOFF_DBT_TARGET": "spark"})
    assert s3.lake == "s3://bucket/selloff/lake" and s3.is_spark
    assert lake.is_remote(s3.lake)
    with pytest.raises(ValueError, match="SELLOFF_DBT_TARGET"):
        settings_from_env({"SELLOFF_DBT_TARGET": "postgres"})
