"""The raw-layer Great Expectations suites (selloff.quality) on good, empty and bad frames."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from selloff.contracts import DATASETS, empty_frame
from selloff.quality import ON_CALENDAR, SuiteOutcome, build_suite, prepare_frame, run_suite

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real_2025"
TODAY = dt.date(2025, 12, 1)


def _prices() -> pl.DataFrame:
    # Sessions only: 2025-11-03/04 are NYSE and TSE days, 2025-10-09 is an SSE day.
    return pl.DataFrame(
        {
            "security_id": ["US:NVDA", "US:NVDA", "CN:600519.SH", "JP:9984"],
            "trade_date": [dt.date(2025, 11, 3), dt.date(2025, 11, 4), dt.date(2025, 10, 9),
                           dt.date(2025, 11, 4)],
            "open": [206.0, 199.0, 1450.0, None],
            "high": [208.0, 202.0, 1460.0, None],
            "low": [204.0, 197.0, 1440.0, None],
            "close": [206.9, 198.7, 1455.0, 24000.0],
            "adj_close": [206.9, None, 1455.0, 24000.0],
            "volume": [1.8e8, 0.0, None, 2.1e7],
            "currency": ["USD", "USD", "CNY", "JPY"],
            "source": ["test"] * 4,
        },
        schema=DATASETS["prices_daily"].schema,
    )


def _set(df: pl.DataFrame, row: int, column: str, value: object) -> pl.DataFrame:
    """`df` with one cell replaced, bypassing the landing gate on purpose."""
    lit = pl.lit(value, dtype=df.schema[column])
    return df.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(lit).otherwise(pl.col(column)).alias(column)
    )


def _only_failure(outcome: SuiteOutcome) -> dict:
    assert not outcome.success
    assert len(outcome.failed) == 1, outcome.description
    return outcome.failed[0]


@pytest.mark.real_snapshot
@pytest.mark.skipif(not REAL.exists(), reason=f"real snapshot {REAL} is not present")
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_real_snapshot_passes(dataset: str) -> None:
    from selloff.sources.snapshot import SnapshotSource

    df = SnapshotSource(REAL).load(dataset)
    assert df is not None, f"{dataset} is missing from {REAL}"
    outcome = run_suite(dataset, df)
    assert outcome.success, outcome.description
    assert outcome.rows == df.height > 0


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_empty_dataset_passes_with_a_note(dataset: str) -> None:
    outcome = run_suite(dataset, empty_frame(dataset), TODAY)
    assert outcome.success, outcome.description
    assert outcome.evaluated > 0
    assert any("empty" in note for note in outcome.notes)


def test_empty_required_dataset_fails() -> None:
    outcome = run_suite("prices_daily", empty_frame("prices_daily"), TODAY, required=True)
    failure = _only_failure(outcome)
    assert failure["expectation_type"] == "expect_table_row_count_to_be_between"
    assert "prices_daily: must have at least 1 row" in failure["description"]


def test_good_frame_passes() -> None:
    outcome = run_suite("prices_daily", _prices(), TODAY)
    assert outcome.success, outcome.description
    assert outcome.statistics["unsuccessful_expectations"] == 0


def test_duplicate_key_fails() -> None:
    bad = _set(_prices(), 1, "trade_date", dt.date(2025, 11, 3))
    failure = _only_failure(run_suite("prices_daily", bad, TODAY))
    assert failure["expectation_type"] == "expect_compound_columns_to_be_unique"
    assert failure["unexpected_count"] == 2
    assert failure["description"].startswith(
        "prices_daily: key (security_id, trade_date) must be unique: 2 rows, "
        "e.g. US:NVDA 2025-11-03"
    )


def test_negative_price_fails() -> None:
    bad = _set(_prices(), 0, "close", -1.0)
    failure = _only_failure(run_suite("prices_daily", bad, TODAY))
    assert failure["column"] == "close"
    assert failure["description"] == (
        "prices_daily: close must be > 0 (and finite): 1 row, e.g. US:NVDA 2025-11-03 = -1.0"
    )
    assert failure["example_rows"] == [
        {"close": -1.0, "security_id": "US:NVDA", "trade_date": "2025-11-03"}
    ]


def test_infinite_price_fails() -> None:
    bad = _set(_prices(), 3, "close", float("inf"))
    failure = _only_failure(run_suite("prices_daily", bad, TODAY))
    assert "close must be > 0 (and finite): 1 row, e.g. JP:9984 2025-11-04 = inf" in (
        failure["description"])


def test_unknown_currency_fails() -> None:
    bad = _set(_prices(), 3, "currency", "XXX")
    failure = _only_failure(run_suite("prices_daily", bad, TODAY))
    assert failure["column"] == "currency"
    assert failure["description"].startswith("prices_daily: currency must be one of USD, CNY")
    assert failure["description"].endswith("1 row, e.g. JP:9984 2025-11-04 = 'XXX'")


@pytest.mark.parametrize(
    ("row", "holiday", "shown"),
    [
        (1, dt.date(2025, 11, 27), "US:NVDA 2025-11-27"),  # Thanksgiving
        (2, dt.date(2025, 10, 1), "CN:600519.SH 2025-10-01"),  # National Day
    ],
)
def test_market_holiday_fails(row: int, holiday: dt.date, shown: str) -> None:
    bad = _set(_prices(), row, "trade_date", holiday)
    failure = _only_failure(run_suite("prices_daily", bad, TODAY))
    assert failure["column"] == "trade_date"
    assert "trade_date must be a trading day of the market in security_id" in (
        failure["description"])
    assert failure["description"].endswith(f"1 row, e.g. {shown}")


def test_trading_calendar_flag_is_vectorised_and_scoped() -> None:
    df = _set(_prices(), 1, "trade_date", dt.date(2025, 11, 27))
    flags = prepare_frame("prices_daily", df)[ON_CALENDAR].to_list()
    assert flags == [True, False, True, True]
    # Weekly flows are dated on the week's last trading day (issue 13), so a weekly row on
    # a holiday (2025-11-03, Culture Day in Japan) fails like a daily one.
    flows = pl.DataFrame(
        {
            "flow_scope": ["market", "market"], "entity_id": ["JP:TSE", "CN:SSE"],
            "trade_date": [dt.date(2025, 11, 3), dt.date(2025, 10, 1)],
            "investor_type": ["foreign", "foreign"], "period": ["week", "day"],
            "net_buy_value": [1e9, -2e8], "currency": ["JPY", "CNY"], "source": ["t", "t"],
        },
        schema=DATASETS["fund_flows_daily"].schema,
    )
    failure = _only_failure(run_suite("fund_flows_daily", flows, TODAY))
    assert "where period" not in failure["description"]
    assert "CN:SSE 2025-10-01" in failure["description"]
    assert "JP:TSE 2025-11-03" in failure["description"]


def test_future_date_fails() -> None:
    bad = _set(_prices(), 3, "trade_date", dt.date(2026, 1, 5))
    failure = _only_failure(run_suite("prices_daily", bad, TODAY))
    assert failure["column"] == "trade_date"
    assert failure["description"] == (
        "prices_daily: trade_date must not be after today (2025-12-01): 1 row, "
        "e.g. JP:9984 2026-01-05"
    )


def test_null_in_required_column_fails() -> None:
    bad = _set(_prices(), 0, "close", None)
    failure = _only_failure(run_suite("prices_daily", bad, TODAY))
    assert failure["expectation_type"] == "expect_column_values_to_not_be_null"
    assert failure["description"] == (
        "prices_daily: close must not be null: 1 row, e.g. US:NVDA 2025-11-03"
    )


def test_malformed_id_fails() -> None:
    bad = _set(_prices(), 0, "security_id", "NVDA")
    failure = _only_failure(run_suite("prices_daily", bad, TODAY))
    assert failure["column"] == "security_id"
    assert "security_id must look like <MARKET>:<code>" in failure["description"]


def test_wrong_columns_are_named() -> None:
    bad = _prices().drop("volume").with_columns(pl.lit(1).alias("extra"))
    outcome = run_suite("prices_daily", bad, TODAY)
    assert not outcome.success
    first = outcome.failed[0]
    assert first["expectation_type"] == "expect_table_columns_to_match_set"
    assert "missing ['volume']" in first["description"]
    assert "unexpected ['extra']" in first["description"]
    assert all("volume" in f["description"] for f in outcome.failed[1:])


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_suite_is_generated_from_the_contract(dataset: str) -> None:
    spec = DATASETS[dataset]
    suite = build_suite(dataset, TODAY)
    by_type: dict[str, set[str]] = {}
    for exp in suite.expectations:
        cfg = exp.configuration
        by_type.setdefault(cfg.type, set()).add(cfg.kwargs.get("column"))
    assert set(spec.required) <= by_type["expect_column_values_to_not_be_null"]
    floats = {c.name for c in spec.columns if c.dtype == pl.Float64}
    bounded = {*spec.positive, *spec.non_negative, *spec.date_columns_not_future, *floats}
    assert bounded <= by_type.get("expect_column_values_to_be_between", set())
    assert set(spec.allowed) <= by_type.get("expect_column_values_to_be_in_set", set())
    assert set(spec.id_columns) <= by_type.get("expect_column_values_to_match_regex", set())
    assert set(spec.column_names) <= by_type["expect_column_values_to_be_of_type"]
    assert "expect_table_row_count_to_be_between" not in by_type
    assert "expect_table_row_count_to_be_between" in {
        e.configuration.type for e in build_suite(dataset, TODAY, required=True).expectations
    }
