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


# -- one rule, one test: a cell of the small valid snapshot broken at a time ---------------
# (dataset, data row, column, value, rule the gate must name for that row)
RULE_CASES = {
    # cross-dataset: a price must be in its security's currency (US:NVDA priced in JPY)
    "price-currency-not-the-securitys": ("prices_daily", 1, "currency", "JPY", "currency of the security"),
    "decimal-comma": ("prices_daily", 3, "close", "0,0066", "number format: no decimal comma"),
    "decimal-comma-with-dot-thousands": ("prices_daily", 3, "close", "1.234,5",
                                         "number format: no decimal comma"),
    "lone-comma-group-is-ambiguous": ("prices_daily", 3, "close", "1,234", "number format: no decimal comma"),
    "fundamentals-filed-before-period-end": ("fundamentals", 1, "filed_date", "2025-10-01",
                                             "filed on or after period_end"),
    "fundamentals-period-start-after-end": ("fundamentals", 1, "period_start", "2025-11-01",
                                            "period_start <= period_end"),
    "fundamentals-fiscal-year-1850": ("fundamentals", 2, "fiscal_year", "1850", "plausible fiscal_year"),
    "fundamentals-period-end-in-future": ("fundamentals", 1, "period_end", "2099-12-31",
                                          "no future dates: period_end"),
    "fundamentals-unknown-metric": ("fundamentals", 1, "metric", "ebitda_adjusted", "accepted values: metric"),
    "fundamentals-unknown-unit": ("fundamentals", 2, "unit", "USD/shr", "accepted values: unit"),
    "ohlc-high-below-low": ("prices_daily", 1, "high", "190", "ohlc: high >= low"),
    "ohlc-close-above-high": ("prices_daily", 2, "close", "215", "ohlc: low <= close <= high"),
    "ohlc-close-below-low": ("prices_daily", 4, "close", "99000", "ohlc: low <= close <= high"),
    "ohlc-open-above-high-index": ("index_levels_daily", 1, "open", "7000", "ohlc: low <= open <= high"),
    "fx-inverted-jpy": ("fx_rates_daily", 1, "usd_per_unit", "150", "plausible usd_per_unit (markets.USD_PER_UNIT_BAND)"),
    "fx-inverted-cny": ("fx_rates_daily", 3, "usd_per_unit", "7.12", "plausible usd_per_unit (markets.USD_PER_UNIT_BAND)"),
    "id-unknown-market": ("prices_daily", 1, "security_id", "XX:NVDA", "id format: security_id"),
    "id-full-width": ("securities", 1, "security_id", "US:ＮＶＤＡ", "id format: security_id"),
    "id-zero-width": ("baskets", 1, "security_id", "US:NV\u200bDA", "id format: security_id"),
    "id-lowercase": ("shares_outstanding", 1, "security_id", "US:nvda", "id format: security_id"),
    "id-no-prefix": ("index_valuation_daily", 1, "index_id", "000688.SH", "id format: index_id"),
    "date-trailing-garbage": ("prices_daily", 2, "trade_date", "2025-11-04xyz", "type Date"),
    "weekly-flow-on-saturday": ("fund_flows_daily", 2, "trade_date", "2025-11-08", "trading day: trade_date"),
    "kr-flow-in-usd": ("fund_flows_daily", 1, "currency", "USD", "currency of the market"),
    "security-market-not-its-prefix": ("securities", 1, "market", "CN", "market matches id: security_id"),
    "index-market-not-its-prefix": ("indexes", 2, "market", "US", "market matches id: index_id"),
    "basket-valid-to-before-from": ("baskets", 2, "valid_to", "2024-12-31", "valid_from <= valid_to"),
    "shares-filed-before-as-of": ("shares_outstanding", 2, "filed_date", "2025-09-01",
                                  "filed on or after as_of_date"),
    # rules that so far were tested only through the GX suite
    "finite-inf-close": ("prices_daily", 1, "adj_close", "inf", "finite: adj_close"),
    "finite-nan-pe": ("index_valuation_daily", 1, "pe_ttm", "NaN", "finite: pe_ttm"),
    "future-trade-date": ("prices_daily", 1, "trade_date", "2099-01-05", "no future dates: trade_date"),
    "non-negative-volume": ("prices_daily", 2, "volume", "-1", "non-negative: volume"),
    "non-negative-dividend-yield": ("index_valuation_daily", 1, "dividend_yield", "-0.1",
                                    "non-negative: dividend_yield"),
}


@pytest.mark.parametrize(("dataset", "row", "column", "value", "rule"), list(RULE_CASES.values()),
                         ids=list(RULE_CASES))
def test_gate_rule(tmp_path: Path, dataset: str, row: int, column: str, value: str,
                   rule: str) -> None:
    from tests.gate_snapshot import GOOD, set_cell, write_good_snapshot

    folder = write_good_snapshot(tmp_path / "s", {dataset: set_cell(GOOD[dataset], row, column, value)})
    with pytest.raises(DataContractError) as exc:
        SnapshotSource(folder).load(dataset)
    named = {(v.dataset, v.row, v.rule) for v in exc.value.violations}
    assert (dataset, row, rule) in named, named
    message = str(exc.value)
    assert dataset in message and f"row {row}" in message and rule in message


def test_good_snapshot_passes_every_rule(tmp_path: Path) -> None:
    from tests.gate_snapshot import GOOD, write_good_snapshot

    src = SnapshotSource(write_good_snapshot(tmp_path / "s"))
    for dataset, text in GOOD.items():
        assert src.load(dataset).height == len(text.splitlines()) - 1, dataset


@pytest.mark.parametrize(("cell", "value"), [("1,234,567", 1234567.0), ("1,234.5", 1234.5),
                                             ("-12,345,678.25", -12345678.25), ("1234.5", 1234.5)])
def test_unambiguous_thousands_separators_are_read(tmp_path: Path, cell: str, value: float) -> None:
    from tests.gate_snapshot import GOOD, set_cell, write_good_snapshot

    text = set_cell(GOOD["fund_flows_daily"], 1, "net_buy_value", cell)
    df = SnapshotSource(write_good_snapshot(tmp_path / "s", {"fund_flows_daily": text})).load(
        "fund_flows_daily")
    assert df["net_buy_value"][0] == value


def test_midnight_timestamp_in_a_date_cell_is_the_date(tmp_path: Path) -> None:
    from tests.gate_snapshot import GOOD, set_cell, write_good_snapshot

    text = set_cell(GOOD["prices_daily"], 1, "trade_date", "2025-11-03 00:00:00")
    df = SnapshotSource(write_good_snapshot(tmp_path / "s", {"prices_daily": text})).load("prices_daily")
    assert str(df["trade_date"][0]) == "2025-11-03"


def test_csv_beside_parquet_names_both_files(tmp_path: Path) -> None:
    from tests.gate_snapshot import write_good_snapshot

    folder = write_good_snapshot(tmp_path / "s")
    pl.read_csv(folder / "prices_daily.csv").write_parquet(folder / "prices_daily.parquet")
    with pytest.raises(DataContractError) as exc:
        SnapshotSource(folder).load("prices_daily")
    (v,) = exc.value.violations
    assert (v.dataset, v.rule) == ("prices_daily", "one file per dataset")
    assert "prices_daily.csv" in str(exc.value) and "prices_daily.parquet" in str(exc.value)


def test_non_utf8_csv_is_refused_naming_the_row(tmp_path: Path) -> None:
    from tests.gate_snapshot import GOOD, write_good_snapshot

    # Cambricon's local name (row 2) in GB18030, as a Chinese Excel export writes it.
    folder = write_good_snapshot(tmp_path / "s", {"securities": GOOD["securities"].encode("gb18030")})
    with pytest.raises(DataContractError) as exc:
        SnapshotSource(folder).load("securities")
    (v,) = exc.value.violations
    assert (v.dataset, v.row, v.rule) == ("securities", 2, "encoding: utf-8")


def test_price_currency_check_uses_the_securities_file(tmp_path: Path) -> None:
    """Without a securities file there is nothing to compare with: prices land on their own
    rules (the dbt relationship test then names the unknown securities)."""
    from tests.gate_snapshot import GOOD, set_cell, write_good_snapshot

    folder = write_good_snapshot(tmp_path / "s", {"prices_daily": set_cell(
        GOOD["prices_daily"], 1, "currency", "JPY")})
    (folder / "securities.csv").unlink()
    assert SnapshotSource(folder).load("prices_daily").height == 4
