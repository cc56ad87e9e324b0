"""The Parquet lake writer (selloff/lake.py): layout, round trip, empty tables, replacement."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
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
    s = settings_from_env({"SELLOFF_WAREHOUSE": "/data/w/warehouse/selloff.duckdb"}).store
    assert s.lake == "/data/w/lake" and s.spark_root == "/data/w/spark_warehouse"
    assert s.dbt_target == "duckdb" and not s.is_spark
    s3 = settings_from_env({"SELLOFF_LAKE_DIR": "s3://bucket/selloff/lake", "SELLOFF_DBT_TARGET": "spark"}).store
    assert s3.lake == "s3://bucket/selloff/lake" and s3.is_spark
    assert lake.is_remote(s3.lake)
    with pytest.raises(ValueError, match="SELLOFF_DBT_TARGET"):
        settings_from_env({"SELLOFF_DBT_TARGET": "postgres"})


def _interleaved(n_secs: int = 30, n_days: int = 400) -> pl.DataFrame:
    """Rows in security order with months interleaved, as the warehouse holds them: 3
    markets x ~14 months, so a streaming split sees every partition in every batch."""
    secs = [f"{m}:{i:04d}" for i in range(n_secs) for m in ("US", "KR", "JP")][:n_secs]
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=d) for d in range(n_days)]
    return pl.DataFrame({
        "security_id": [s for s in secs for _ in days],
        "trade_date": days * len(secs),
        "close": [float(i) for i in range(len(secs) * len(days))],
        "currency": [("USD", "KRW", "JPY")[i % 3] for i in range(len(secs)) for _ in days],
        "volume": pl.Series([None if i % 7 == 0 else i for i in range(len(secs) * len(days))],
                            dtype=pl.Int32),
    })


def _duckdb_partition_by(df: pl.DataFrame, dest: Path) -> None:
    # The writer this module used before the streaming one: DuckDB's own hive COPY.
    with duckdb.connect() as con:
        con.register("t", df.to_arrow())
        con.execute(f"COPY (SELECT *, split_part(security_id, ':', 1) AS market, "
                    f"strftime(trade_date, '%Y-%m') AS month FROM t) TO '{dest}' "
                    "(FORMAT parquet, PARTITION_BY (market, month), FILENAME_PATTERN 'part-{i}')")


def test_streaming_write_matches_duckdb_partition_by(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny batches and buffer: many batches, and every file written in several row groups.
    monkeypatch.setattr(lake, "LAKE_BATCH_ROWS", 1000)
    monkeypatch.setattr(lake, "LAKE_BUFFER_BYTES", 1)
    df = _interleaved()
    dest = Path(lake.table_path(tmp_path, "raw", "prices_daily"))
    out = lake.write_frame(df, str(dest), "prices_daily")
    ref = tmp_path / "ref"
    _duckdb_partition_by(df, ref)
    ours = sorted(str(p.relative_to(dest)) for p in dest.rglob("*.parquet"))
    theirs = sorted(str(p.relative_to(ref)) for p in ref.rglob("*.parquet"))
    assert ours == theirs and out.files == len(theirs) > 30
    row_groups = duckdb.sql(f"SELECT max(row_group_id) + 1 FROM parquet_metadata('{dest}/**/*.parquet') "
                            "GROUP BY file_name").fetchall()
    assert max(r[0] for r in row_groups) > 1
    for name in ours:
        mine = pl.read_parquet(dest / name, hive_partitioning=False)
        assert mine.columns == df.columns
        # each file holds its partition's rows in the table's order
        assert mine.equals(pl.read_parquet(ref / name, hive_partitioning=False)
                           .join(df.with_row_index("i"), on=["security_id", "trade_date"])
                           .sort("i").select(df.columns))
    assert lake.read_table(dest).sort("security_id", "trade_date").equals(
        df.sort("security_id", "trade_date"))


def test_partition_numbers_past_16_bits_split_the_same(tmp_path: Path) -> None:
    # 3 markets x ~1,000 years of months: the partition numbers pass 2^15 (no radix sort),
    # and most numbers between the first and the last month are unused.
    days = [dt.date(1100, 3, 4), dt.date(2099, 12, 31), dt.date(1600, 7, 1), dt.date(1100, 3, 5)]
    df = pl.DataFrame({
        "security_id": [f"{m}:{i}" for m in ("US", "KR", "JP") for i in range(len(days))],
        "trade_date": days * 3,
        "close": [float(i) for i in range(3 * len(days))],
    })
    dest = Path(lake.table_path(tmp_path, "raw", "prices_daily"))
    lake.write_frame(df, str(dest), "prices_daily")
    ref = tmp_path / "ref"
    _duckdb_partition_by(df, ref)
    assert (sorted(str(p.relative_to(dest)) for p in dest.rglob("*.parquet"))
            == sorted(str(p.relative_to(ref)) for p in ref.rglob("*.parquet")))
    one = pl.read_parquet(dest / "market=US" / "month=1100-03" / "part-0.parquet",
                          hive_partitioning=False)
    assert one["trade_date"].to_list() == [dt.date(1100, 3, 4), dt.date(1100, 3, 5)]
    assert lake.read_table(dest).sort("close").equals(df)


def test_partition_values_that_are_not_plain_names_are_escaped_by_duckdb(tmp_path: Path) -> None:
    df = pl.DataFrame({
        "security_id": ["US:A", "US:A", "a/b", "x y=z:C", None, "US:B"],
        "trade_date": [dt.date(2025, 1, 2), None, dt.date(2025, 1, 3), dt.date(2025, 2, 3),
                       dt.date(2025, 2, 4), dt.date(999, 5, 6)],
        "close": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    })
    dest = Path(lake.table_path(tmp_path, "raw", "prices_daily"))
    lake.write_frame(df, str(dest), "prices_daily")
    ref = tmp_path / "ref"
    with duckdb.connect() as con:
        con.register("t", df.to_arrow())
        con.execute(f"COPY (SELECT *, split_part(security_id, ':', 1) AS market, "
                    f"strftime(trade_date, '%Y-%m') AS month FROM t) TO '{ref}' "
                    "(FORMAT parquet, PARTITION_BY (market, month), FILENAME_PATTERN 'part-{i}')")
    assert (sorted(str(p.relative_to(dest)) for p in dest.rglob("*.parquet"))
            == sorted(str(p.relative_to(ref)) for p in ref.rglob("*.parquet")))
    back = lake.read_table(dest)
    assert back.sort("close").equals(df)


def test_own_market_column_with_a_date_stays_out_of_the_files(tmp_path: Path) -> None:
    df = _interleaved(n_secs=6, n_days=40).with_columns(
        pl.col("security_id").str.split(":").list.first().alias("market"))
    dest = Path(lake.table_path(tmp_path, "marts", "fct_x"))
    out = lake.write_frame(df, str(dest), "fct_x")
    assert out.partition_by == ("market", "month")
    one = next(dest.rglob("*.parquet"))
    assert "market" not in pl.read_parquet(one, hive_partitioning=False).columns
    assert lake.read_table(dest).sort("security_id", "trade_date").equals(
        df.sort("security_id", "trade_date"))


def test_a_failed_streaming_write_leaves_the_old_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = lake.table_path(tmp_path, "raw", "prices_daily")
    lake.write_frame(_prices(), dest, "prices_daily")

    def disk_full(self: object, path: Path, pieces: list[pl.DataFrame]) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(lake._PartWriters, "_write", disk_full)
    with pytest.raises(OSError, match="disk full"):
        lake.write_frame(_interleaved(), dest, "prices_daily")
    assert lake.read_table(dest).sort("security_id", "trade_date").equals(
        _prices().sort("security_id", "trade_date"))
    assert [p.name for p in tmp_path.joinpath("raw").iterdir()] == ["prices_daily"]


def test_write_months_rewrites_only_the_changed_partitions(tmp_path: Path) -> None:
    """A windowed refresh's lake write: the month folders of the changed days (of the
    window's markets) are rewritten, every other file is left untouched, and the lake
    then gives back exactly the new table (the same as a whole write would)."""
    df = _interleaved(n_secs=9, n_days=120)             # 2024-01-01 .. 2024-04-29
    dest = Path(lake.table_path(tmp_path, "raw", "prices_daily"))
    with duckdb.connect() as con:
        con.register("old", df.to_arrow())
        lake.write_relation(con, "old", str(dest), "prices_daily")
    before = {p: p.stat().st_mtime_ns for p in dest.rglob("*.parquet")}
    first, last = dt.date(2024, 3, 4), dt.date(2024, 3, 8)
    changed = (pl.col("trade_date").is_between(first, last)
               & pl.col("security_id").str.starts_with("US:"))
    # The window's US rows change, and a whole US month's rows go: March has new closes
    # and the 2024-03 folder of US must hold only those.
    new = df.with_columns(pl.when(changed).then(pl.col("close") * 2).otherwise(pl.col("close"))
                          .alias("close"))
    with duckdb.connect() as con:
        con.register("new", new.to_arrow())
        out = lake.write_months(con, "new", str(dest), "prices_daily", first, last, ("US",))
    assert out is not None and out.rows == new.height
    after = {p: p.stat().st_mtime_ns for p in dest.rglob("*.parquet")}
    rewritten = sorted(str(p.relative_to(dest)) for p in after if before.get(p) != after[p])
    assert rewritten == ["market=US/month=2024-03/part-0.parquet"]
    assert set(after) == set(before)
    assert json.loads((dest / lake.META_FILE).read_text())["rows"] == new.height
    assert lake.read_table(dest).sort("security_id", "trade_date").equals(
        new.sort("security_id", "trade_date"))

    # Rows gone from a changed month: its folder goes too.
    fewer = new.filter(~(pl.col("security_id").str.starts_with("KR:")
                         & (pl.col("trade_date") >= dt.date(2024, 4, 1))))
    with duckdb.connect() as con:
        con.register("fewer", fewer.to_arrow())
        assert lake.write_months(con, "fewer", str(dest), "prices_daily",
                                 dt.date(2024, 4, 1), None) is not None
    assert not (dest / "market=KR" / "month=2024-04").exists()
    assert (dest / "market=US" / "month=2024-04").exists()
    assert lake.read_table(dest).sort("security_id", "trade_date").equals(
        fewer.sort("security_id", "trade_date"))


def test_write_months_declines_what_needs_a_whole_write(tmp_path: Path) -> None:
    dest = Path(lake.table_path(tmp_path, "raw", "prices_daily"))
    day = dt.date(2025, 10, 31)
    with duckdb.connect() as con:
        con.register("t", _prices().to_arrow())
        assert lake.write_months(con, "t", str(dest), "prices_daily", day, day) is None  # no table yet
        lake.write_relation(con, "t", str(dest), "prices_daily")
        con.register("wider", _prices().with_columns(pl.lit(1).alias("extra")).to_arrow())
        assert lake.write_months(con, "wider", str(dest), "prices_daily", day, day) is None


def test_streaming_write_leaves_pyarrows_pandas_shim_asleep(tmp_path: Path) -> None:
    """The streaming writer never wakes pyarrow's pandas shim (`pa.array` of an ndarray
    does: it imports pyarrow.pandas_compat and pins pandas in pyarrow's C globals until
    exit). With it awake, `selloff run` ended with nanobind's 39 "leaked" lines from
    DuckDB's module (issue 25), so the split hands numpy's order to Arrow zero-copy.
    A fresh interpreter: another test may have woken the shim in this one."""
    code = (
        "import sys, duckdb\n"
        "from selloff import lake\n"
        "con = duckdb.connect()\n"
        "con.execute(\"CREATE TABLE t AS SELECT ['US', 'KR'][1 + i % 2] || ':' || (i % 7) "
        "AS security_id, DATE '2024-01-01' + (i % 400)::INT AS trade_date, i * 0.5 AS close "
        "FROM range(20000) r(i)\")\n"
        f"out = lake.write_relation(con, 't', {str(tmp_path / 't')!r}, 't')\n"
        "assert out.files > 20, out\n"
        "print('pyarrow.pandas_compat' in sys.modules)\n"
        # The probe itself: what wakes the shim shows here.
        "import numpy, pyarrow\n"
        "pyarrow.array(numpy.arange(2))\n"
        "print('pyarrow.pandas_compat' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["False", "True"], done.stdout + done.stderr[-3000:]
