"""Bad snapshot input: each case names the dataset, the row and the rule, and what had
landed before stays intact."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets.extract import extract_assets
from selloff.resources import RefreshWindow, SourceResource, WarehouseResource
from selloff.sources.snapshot import SnapshotSource
from selloff.validation import DataContractError

GOOD_PRICES = """security_id,trade_date,open,high,low,close,adj_close,volume,currency,source,extra_col
US:NVDA,2025-11-03,200,210,195,206.88,206.88,1000,USD,test,ignored
US:NVDA,2025-11-04,205,206,195,198.69,198.69,1000,USD,test,ignored
CN:688256.SH,2025-11-03,1400,1420,1350,1380.5,,500,CNY,test,ignored
"""


def _snapshot(folder: Path, prices: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prices_daily.csv").write_text(prices)
    (folder / "manifest.json").write_text('{"name": "t"}')
    return folder


def _replace_line(text: str, line_no: int, new: str) -> str:
    lines = text.splitlines()
    lines[line_no] = new
    return "\n".join(lines) + "\n"


def test_good_input_loads_and_ignores_extra_columns(tmp_path: Path) -> None:
    df = SnapshotSource(_snapshot(tmp_path / "s", GOOD_PRICES)).load("prices_daily")
    assert df.height == 3
    assert "extra_col" not in df.columns
    assert df.filter(pl.col("security_id") == "CN:688256.SH")["adj_close"].item() is None


@pytest.mark.parametrize(
    ("mutate", "row", "rule"),
    [
        (lambda t: t.replace(",close,", ",closing,"), None, "required columns"),
        (lambda t: _replace_line(t, 2, "US:NVDA,2025-11-03,205,206,195,198.69,198.69,1000,USD,test,x"),
         2, "unique key security_id+trade_date"),
        (lambda t: _replace_line(t, 3, "CN:688256.SH,2025-11-03,1400,1420,1350,-5,,500,CNY,test,x"),
         3, "positive: close"),
        (lambda t: _replace_line(t, 3, "CN:688256.SH,2025-11-03,1400,1420,1350,1380,,500,XYZ,test,x"),
         3, "accepted values: currency"),
        # 2025-10-01 is China's National Day: the Shanghai exchange is closed.
        (lambda t: _replace_line(t, 3, "CN:688256.SH,2025-10-01,1400,1420,1350,1380,,500,CNY,test,x"),
         3, "trading day: trade_date"),
        (lambda t: _replace_line(t, 1, "US:NVDA,2025-11-03,200,210,195,abc,206.88,1000,USD,test,x"),
         1, "type Float64"),
        (lambda t: "", None, "not empty"),
        (lambda t: t.splitlines()[0] + "\n", None, "not empty"),
    ],
    ids=["missing-column", "duplicate-key", "negative-price", "unknown-currency",
         "closed-market-date", "text-in-numeric", "empty-file", "header-only"],
)
def test_bad_input_names_dataset_row_and_rule(tmp_path: Path, mutate, row, rule) -> None:
    src = SnapshotSource(_snapshot(tmp_path / "s", mutate(GOOD_PRICES)))
    with pytest.raises(DataContractError) as exc:
        src.load("prices_daily")
    first = exc.value.violations[0]
    assert first.dataset == "prices_daily"
    assert first.row == row
    assert first.rule == rule
    message = str(exc.value)
    assert "prices_daily" in message and rule in message
    if row is not None:
        assert f"row {row}" in message


def test_failed_landing_leaves_what_landed_intact(tmp_path: Path, isolated_env: Path) -> None:
    prices_asset = next(a for a in extract_assets
                        if a.key == dg.AssetKey(["raw", "prices_daily"]))
    good = _snapshot(tmp_path / "good", GOOD_PRICES)
    warehouse = WarehouseResource(path=str(isolated_env))
    ok = dg.materialize([prices_asset], resources={
        "source": SourceResource(kind="snapshot", snapshot_dir=str(good)), "warehouse": warehouse,
        "refresh": RefreshWindow()})
    assert ok.success
    with duckdb.connect(str(warehouse.build_path), read_only=True) as con:
        before = con.sql("SELECT * FROM raw.prices_daily ORDER BY ALL").pl()
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    (bad / "prices_daily.csv").write_text(
        _replace_line(GOOD_PRICES, 3, "CN:688256.SH,2025-11-03,1400,1420,1350,-5,,500,CNY,test,x"))
    failed = dg.materialize([prices_asset], raise_on_error=False, resources={
        "source": SourceResource(kind="snapshot", snapshot_dir=str(bad)), "warehouse": warehouse,
        "refresh": RefreshWindow()})
    assert not failed.success
    errors = [e.step_failure_data.error for e in failed.all_events
              if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    text = " ".join((e.message or "") + " ".join(c.message for c in _causes(e)) for e in errors)
    assert "prices_daily" in text and "row 3" in text and "positive: close" in text
    with duckdb.connect(str(warehouse.build_path), read_only=True) as con:
        after = con.sql("SELECT * FROM raw.prices_daily ORDER BY ALL").pl()
    assert after.equals(before)


def _causes(err):
    while err is not None and err.cause is not None:
        err = err.cause
        yield err
