"""Fuzz the landing gate: one random rule broken in one random row of one dataset of a small
valid snapshot. Every case must be refused, naming the dataset, the row and the rule (no
corruption here is one the gate may land with the figure nulled), and never with an
error that is not a DataContractError.

Most cases call the gate (`SnapshotSource.load`) directly, so a hundred of them take
seconds; `test_refused_snapshot_leaves_published_file_byte_identical` runs the real graph
for a few of them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selloff.contracts import DATASETS, MARKET_CURRENCY, USD_PER_UNIT_BAND
from selloff.markets import market_of
from selloff.sources.snapshot import SnapshotSource
from selloff.validation import DataContractError
from tests.gate_snapshot import GOOD, write_good_snapshot

Row = dict[str, str]


@dataclass(frozen=True)
class Corruption:
    """Breaks one rule in one row: `apply` edits the row in place (it may read the other
    rows), returns the rule the gate must name and the data row it must name."""

    name: str
    dataset: str
    apply: Callable[[list[Row], int], tuple[str, int]]


def _read(text: str) -> list[Row]:
    return list(csv.DictReader(io.StringIO(text)))


def _write(rows: list[Row], header: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _day(text: str, days: int) -> str:
    return (dt.date.fromisoformat(text) + dt.timedelta(days=days)).isoformat()


def _set(col: str, value: str, rule: str) -> Callable[[list[Row], int], tuple[str, int]]:
    def apply(rows: list[Row], i: int) -> tuple[str, int]:
        rows[i][col] = value
        return rule, i + 1
    return apply


def _compute(col: str, fn: Callable[[Row], str], rule: str) -> Callable[[list[Row], int], tuple[str, int]]:
    def apply(rows: list[Row], i: int) -> tuple[str, int]:
        rows[i][col] = fn(rows[i])
        return rule, i + 1
    return apply


def _duplicate_key(dataset: str) -> Callable[[list[Row], int], tuple[str, int]]:
    key = DATASETS[dataset].key

    def apply(rows: list[Row], i: int) -> tuple[str, int]:
        other = (i + 1) % len(rows)
        for k in key:
            rows[i][k] = rows[other][k]
        # The gate names the repeat, i.e. the later of the two rows.
        return "unique key " + "+".join(key), max(i, other) + 1
    return apply


def _generic(dataset: str) -> list[Corruption]:
    """Corruptions every contract implies: nulls, types, signs, finiteness, allowed
    values, future dates, id formats, duplicate keys."""
    spec = DATASETS[dataset]
    out: list[Corruption] = []
    for col in spec.columns:
        c = col.name
        if not col.nullable:
            out.append(Corruption(f"null {c}", dataset, _set(c, "", f"not null: {c}")))
        if col.dtype == pl.Float64:
            out.append(Corruption(f"text in {c}", dataset, _set(c, "n/a", "type Float64")))
            out.append(Corruption(f"decimal comma in {c}", dataset,
                                  _set(c, "0,0066", "number format: no decimal comma")))
            out.append(Corruption(f"inf in {c}", dataset, _set(c, "inf", f"finite: {c}")))
        if col.dtype == pl.Date:
            out.append(Corruption(f"garbage after {c}", dataset,
                                  _set(c, "2025-11-03xyz", "type Date")))
            out.append(Corruption(f"impossible {c}", dataset, _set(c, "2025-02-30", "type Date")))
        if col.dtype == pl.Int64:
            out.append(Corruption(f"text in {c}", dataset, _set(c, "20x5", "type Int64")))
        if c in spec.positive:
            out.append(Corruption(f"negative {c}", dataset, _set(c, "-5", f"positive: {c}")))
            out.append(Corruption(f"zero {c}", dataset, _set(c, "0", f"positive: {c}")))
        if c in spec.non_negative:
            out.append(Corruption(f"negative {c}", dataset, _set(c, "-1", f"non-negative: {c}")))
        if c in spec.allowed:
            out.append(Corruption(f"unknown {c}", dataset, _set(c, "ZZZ", f"accepted values: {c}")))
        if c in spec.date_columns_not_future:
            out.append(Corruption(f"future {c}", dataset,
                                  _set(c, "2099-01-05", f"no future dates: {c}")))
        if c in spec.id_columns:
            for bad in ("XX:NVDA", "US:nvda", "US:NV\u200bDA", "US:ＮＶＤＡ", "NVDA"):
                out.append(Corruption(f"bad id {bad!r} in {c}", dataset,
                                      _set(c, bad, f"id format: {c}")))
    if len(_read(GOOD[dataset])) > 1:
        out.append(Corruption("duplicate key", dataset, _duplicate_key(dataset)))
    return out


def _other_currency(current: str) -> str:
    return next(c for c in MARKET_CURRENCY.values() if c != current)


def _other_market(row: Row, id_col: str) -> str:
    return next(m for m in MARKET_CURRENCY if m != market_of(row[id_col]))


def _inverted(row: Row) -> str:
    rate = 1 / float(row["usd_per_unit"])
    low, high = USD_PER_UNIT_BAND[row["currency"]]
    assert not low <= rate <= high, "the fixture's inverted rate must leave the band"
    return repr(rate)


def _saturday_after(text: str) -> str:
    day = dt.date.fromisoformat(text)
    return (day + dt.timedelta(days=(5 - day.weekday()) % 7 or 7)).isoformat()


OHLC = [
    ("high below low", "high", lambda r: repr(float(r["low"]) / 2), "ohlc: high >= low"),
    ("close above high", "close", lambda r: repr(float(r["high"]) * 2), "ohlc: low <= close <= high"),
    ("close below low", "close", lambda r: repr(float(r["low"]) / 2), "ohlc: low <= close <= high"),
    ("open above high", "open", lambda r: repr(float(r["high"]) * 2), "ohlc: low <= open <= high"),
]

SEMANTIC: list[Corruption] = [
    *(Corruption(n, d, _compute(c, f, rule)) for d in ("prices_daily", "index_levels_daily")
      for n, c, f, rule in OHLC),
    Corruption("price in another currency than its security's", "prices_daily",
               _compute("currency", lambda r: _other_currency(r["currency"]), "currency of the security")),
    Corruption("inverted FX", "fx_rates_daily",
               _compute("usd_per_unit", _inverted, "plausible usd_per_unit (markets.USD_PER_UNIT_BAND)")),
    Corruption("filed before period end", "fundamentals",
               _compute("filed_date", lambda r: _day(r["period_end"], -1), "filed on or after period_end")),
    Corruption("period start after end", "fundamentals",
               _compute("period_start", lambda r: _day(r["period_end"], 1), "period_start <= period_end")),
    Corruption("fiscal year 1850", "fundamentals", _set("fiscal_year", "1850", "plausible fiscal_year")),
    Corruption("unknown metric", "fundamentals", _set("metric", "ebitda", "accepted values: metric")),
    Corruption("unknown unit", "fundamentals", _set("unit", "USD/shr", "accepted values: unit")),
    Corruption("flow in USD", "fund_flows_daily", _set("currency", "USD", "currency of the market")),
    Corruption("flow on a Saturday", "fund_flows_daily",
               _compute("trade_date", lambda r: _saturday_after(r["trade_date"]), "trading day: trade_date")),
    Corruption("price on a Saturday", "prices_daily",
               _compute("trade_date", lambda r: _saturday_after(r["trade_date"]), "trading day: trade_date")),
    Corruption("security market not its prefix", "securities",
               _compute("market", lambda r: _other_market(r, "security_id"), "market matches id: security_id")),
    Corruption("index market not its prefix", "indexes",
               _compute("market", lambda r: _other_market(r, "index_id"), "market matches id: index_id")),
    Corruption("basket valid_to before valid_from", "baskets",
               _compute("valid_to", lambda r: _day(r["valid_from"], -1), "valid_from <= valid_to")),
    Corruption("shares filed before as_of_date", "shares_outstanding",
               _compute("filed_date", lambda r: _day(r["as_of_date"], -1), "filed on or after as_of_date")),
]

CORRUPTIONS: list[Corruption] = [c for d in GOOD for c in _generic(d)] + SEMANTIC


def corrupt(corruption: Corruption, row_seed: int) -> tuple[dict[str, str], int, str]:
    """The snapshot's files with `corruption` applied to one row; the row and rule to name."""
    rows = _read(GOOD[corruption.dataset])
    header = next(csv.reader(io.StringIO(GOOD[corruption.dataset])))
    rule, row = corruption.apply(rows, row_seed % len(rows))
    return {corruption.dataset: _write(rows, header)}, row, rule


def assert_refused(folder: Path, dataset: str, row: int, rule: str) -> None:
    try:
        SnapshotSource(folder).load(dataset)
    except DataContractError as exc:
        named = {(v.dataset, v.row, v.rule) for v in exc.violations}
        assert (dataset, row, rule) in named, f"expected {dataset}, row {row}, {rule!r}; got {named}"
        assert dataset in str(exc) and rule in str(exc)
        return
    pytest.fail(f"{dataset}, row {row}: breaking {rule!r} landed without a word")


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(corruption=st.sampled_from(CORRUPTIONS), row_seed=st.integers(0, 1000))
def test_one_broken_rule_is_refused_naming_dataset_row_and_rule(corruption: Corruption,
                                                                row_seed: int) -> None:
    overrides, row, rule = corrupt(corruption, row_seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_good_snapshot(Path(tmp) / "s", overrides)
        assert_refused(folder, corruption.dataset, row, rule)


def test_every_corruption_of_the_catalogue_is_refused(tmp_path: Path) -> None:
    """The catalogue in full, once (hypothesis samples it; this makes sure none is skipped)."""
    for i, corruption in enumerate(CORRUPTIONS):
        overrides, row, rule = corrupt(corruption, i)
        assert_refused(write_good_snapshot(tmp_path / str(i), overrides), corruption.dataset, row, rule)


def test_the_uncorrupted_snapshot_lands(tmp_path: Path) -> None:
    src = SnapshotSource(write_good_snapshot(tmp_path / "s"))
    for dataset in GOOD:
        assert src.load(dataset) is not None


END_TO_END = ["price in another currency than its security's", "decimal comma in close",
              "inverted FX", "fiscal year 1850"]


@pytest.mark.slow
def test_refused_snapshot_leaves_published_file_byte_identical(tmp_path: Path, isolated_env: Path) -> None:
    """A few catalogue corruptions through the whole refresh job: the run fails naming
    dataset, row and rule; the published file keeps its bytes and `raw` its rows."""
    import hashlib

    import duckdb

    from tests.graph_runs import failures, run_refresh

    snap = write_good_snapshot(tmp_path / "snap")
    env = {"SELLOFF_SOURCE": "snapshot", "SELLOFF_SNAPSHOT_DIR": str(snap),
           "SELLOFF_LAKE_DIR": str(tmp_path / "lake")}
    good = run_refresh(tmp_path / "run", **env)
    assert good.result.success, failures(good)
    published = good.warehouse
    build = published.parent / "build" / published.name

    def raw_tables() -> dict[str, pl.DataFrame]:
        with duckdb.connect(str(build), read_only=True) as con:
            return {d: con.sql(f"SELECT * FROM raw.{d} ORDER BY ALL").pl() for d in GOOD}

    digest = hashlib.sha256(published.read_bytes()).hexdigest()
    raw_before = raw_tables()
    by_name = {c.name: c for c in CORRUPTIONS}
    for i, name in enumerate(END_TO_END):
        corruption = by_name[name]
        overrides, row, rule = corrupt(corruption, i)
        write_good_snapshot(snap, overrides)
        bad = run_refresh(tmp_path / "run", **env)
        write_good_snapshot(snap)  # restore for the next case
        assert not bad.result.success, name
        text = "\n".join(failures(bad))
        assert corruption.dataset in text and f"row {row}" in text and rule in text, text
        assert hashlib.sha256(published.read_bytes()).hexdigest() == digest, name
        after = raw_tables()
        for dataset, frame in raw_before.items():
            assert after[dataset].equals(frame), (name, dataset)
