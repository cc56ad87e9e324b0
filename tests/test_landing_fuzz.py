"""Fuzz the landing gate: one random rule broken in one random row of one dataset of a small
valid snapshot. Every case must be refused, naming the dataset, the row and the rule (no
corruption here is one the gate may land with the figure nulled), and never with an
error that is not a DataContractError.

The same gate on Parquet files (typed columns retyped lossily) and the episode loader on
random bytes, spliced YAML and random ids are fuzzed too.

Most cases call the gate (`SnapshotSource.load`) directly, so a hundred of them take
seconds; `test_refused_snapshot_leaves_published_file_byte_identical` runs the real graph
for a few of them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from selloff.contracts import DATASETS, MARKET_CURRENCY, USD_PER_UNIT_BAND
from selloff.episode import Episode, EpisodeError, load_episode
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


# -- the same gate on Parquet files ------------------------------------------------------------
# A Parquet file carries types of its own; the gate must not cast them leniently where the
# same data as CSV text is refused. Each corruption retypes one column of the valid,
# typed dataset (what a Parquet export would hold) and names the rule and the row.
ParquetBreak = Callable[[pl.DataFrame, str, int], tuple[pl.DataFrame, str]]


def _at(i: int, value: pl.Expr, col: str) -> pl.Expr:
    return pl.when(pl.int_range(pl.len()) == i).then(value).otherwise(pl.col(col)).alias(col)


def _date_noon(df: pl.DataFrame, c: str, i: int) -> tuple[pl.DataFrame, str]:
    ts = pl.col(c).cast(pl.Datetime("us"))
    return df.with_columns(ts).with_columns(_at(i, ts + pl.duration(hours=12), c)), "type Date"


def _date_zoned(df: pl.DataFrame, c: str, i: int) -> tuple[pl.DataFrame, str]:
    return df.with_columns(pl.col(c).cast(pl.Datetime("us")).dt.replace_time_zone("Asia/Seoul")), "type Date"


def _date_days(df: pl.DataFrame, c: str, i: int) -> tuple[pl.DataFrame, str]:
    return df.with_columns(pl.col(c).cast(pl.Int32)), "type Date"


def _int_fraction(df: pl.DataFrame, c: str, i: int) -> tuple[pl.DataFrame, str]:
    f = pl.col(c).cast(pl.Float64)
    return df.with_columns(f).with_columns(_at(i, f + 0.5, c)), "type Int64"


def _as_bool(rule: str) -> ParquetBreak:
    def apply(df: pl.DataFrame, c: str, i: int) -> tuple[pl.DataFrame, str]:
        return df.with_columns(pl.lit(True).alias(c)), rule
    return apply


def _float_value(value: float, rule: str) -> ParquetBreak:
    def apply(df: pl.DataFrame, c: str, i: int) -> tuple[pl.DataFrame, str]:
        return df.with_columns(_at(i, pl.lit(value), c)), f"{rule}: {c}"
    return apply


def _bool_two(df: pl.DataFrame, c: str, i: int) -> tuple[pl.DataFrame, str]:
    ints = pl.col(c).cast(pl.Int64)
    return df.with_columns(ints).with_columns(_at(i, pl.lit(2, pl.Int64), c)), "type Boolean"


def _parquet_breaks(dataset: str) -> list[tuple[str, str, str, ParquetBreak]]:
    out: list[tuple[str, str, str, ParquetBreak]] = []
    for col in DATASETS[dataset].columns:
        c, t = col.name, col.dtype
        if t == pl.Date:
            out += [(f"{c} at noon", dataset, c, _date_noon),
                    (f"{c} zoned", dataset, c, _date_zoned),
                    (f"{c} as days", dataset, c, _date_days)]
        elif t == pl.Int64:
            out += [(f"fractional {c}", dataset, c, _int_fraction),
                    (f"boolean {c}", dataset, c, _as_bool("type Int64"))]
        elif t == pl.Float64:
            out += [(f"boolean {c}", dataset, c, _as_bool("type Float64")),
                    (f"1e300 in {c}", dataset, c, _float_value(1e300, "plausible")),
                    (f"NaN in {c}", dataset, c, _float_value(float("nan"), "finite"))]
        elif t == pl.Boolean:
            out.append((f"2 in {c}", dataset, c, _bool_two))
        elif t == pl.Utf8 and not col.nullable:
            out.append((f"boolean {c}", dataset, c, _as_bool("type String")))
    return out


PARQUET_BREAKS = [b for d in GOOD for b in _parquet_breaks(d)]
_TYPED: dict[str, pl.DataFrame] = {}


def _typed_good(dataset: str) -> pl.DataFrame:
    if dataset not in _TYPED:
        with tempfile.TemporaryDirectory() as tmp:
            _TYPED[dataset] = SnapshotSource(write_good_snapshot(Path(tmp) / "s")).load(dataset)
    return _TYPED[dataset]


def _write_parquet_case(folder: Path, dataset: str, df: pl.DataFrame) -> Path:
    write_good_snapshot(folder)
    (folder / f"{dataset}.csv").unlink()
    df.write_parquet(folder / f"{dataset}.parquet")
    return folder


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(PARQUET_BREAKS), row_seed=st.integers(0, 1000))
def test_a_lossy_parquet_type_is_refused_naming_dataset_row_and_rule(case, row_seed: int) -> None:
    _, dataset, col, apply = case
    good = _typed_good(dataset)
    # A row whose cell holds a value (an empty optional cell breaks no type rule).
    filled = [i for i, v in enumerate(good[col].to_list()) if v is not None]
    assume(filled)
    i = filled[row_seed % len(filled)]
    df, rule = apply(good, col, i)
    with tempfile.TemporaryDirectory() as tmp:
        assert_refused(_write_parquet_case(Path(tmp) / "s", dataset, df), dataset, i + 1, rule)


def test_the_valid_snapshot_as_parquet_lands_as_its_csv_does(tmp_path: Path) -> None:
    for dataset in GOOD:
        typed = _typed_good(dataset)
        landed = SnapshotSource(_write_parquet_case(tmp_path / dataset, dataset, typed)).load(dataset)
        assert landed.equals(typed), dataset


# -- episode files -----------------------------------------------------------------------------
EPISODE_TEXT = (Path(__file__).parent.parent / "selloff" / "config" / "episodes"
                / "tariff_shock_2025" / "episode.yaml").read_text(encoding="utf-8")
_SAFE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _load_bounded(text: bytes) -> object:
    """load_episode on `text`: an Episode or an EpisodeError (anything else fails the
    test)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ep"
        folder.mkdir()
        (folder / "episode.yaml").write_bytes(text)
        try:
            out: object = load_episode(folder)
        except EpisodeError as exc:
            assert str(folder / "episode.yaml") in str(exc)
            out = exc
        return out


@settings(max_examples=150, deadline=None, derandomize=True)
@given(data=st.binary(max_size=1500))
def test_any_bytes_give_an_episode_or_an_episode_error(data: bytes) -> None:
    _load_bounded(data)


def test_an_expansion_bomb_is_refused_at_its_first_anchor() -> None:
    # The bound is structural, not a clock (a timed assertion fails on a loaded machine):
    # nine levels of nine aliases would expand to 9**9 items; the loader refuses the anchor.
    levels = "abcdefghi"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip(levels, levels[1:], strict=False))
    out = _load_bounded(bomb.encode())
    assert isinstance(out, EpisodeError)
    assert "anchor &a refused" in str(out)


# YAML-ish fragments (flow collections, anchors, aliases, specials) spliced into the valid
# bundled file at a random line.
FRAGMENTS = ["&a [1, 2]", "*a", "[[[[[[[[", "]]]]", "{", ": :", ".nan", "-.inf", "2025-02-30",
             "!!python/object:os.system", "\t", "\u00e9", "\x00", "? [a, b]\n: c", "<<: *a",
             "'unterminated", '"\\x', "%YAML 1.1", "---", "...", "key: value", "- x"]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(line=st.integers(0, 400), pieces=st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=4),
       encoding=st.sampled_from(["utf-8", "latin-1"]))
def test_a_spliced_episode_file_fails_only_with_an_episode_error(line: int, pieces: list[str],
                                                                 encoding: str) -> None:
    lines = EPISODE_TEXT.splitlines()
    at = line % len(lines)
    lines[at] = lines[at] + " ".join(pieces)
    out = _load_bounded("\n".join(lines).encode(encoding, errors="replace"))
    assert isinstance(out, EpisodeError | Episode)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(window_id=st.text(max_size=12), basket_id=st.text(max_size=12))
def test_ids_outside_the_safe_characters_are_refused(window_id: str, basket_id: str) -> None:
    doc = yaml.safe_load(EPISODE_TEXT)
    others = {w["id"] for w in doc["windows"]}
    doc["windows"].append({"id": window_id, "start": "2025-04-07", "end": "2025-04-08"})
    doc["baskets"] = {**doc["baskets"], basket_id: ["US:NVDA"]}
    others |= set(doc["baskets"]) - {basket_id}
    out = _load_bounded(yaml.dump(doc, Dumper=_PlainDumper, allow_unicode=True).encode())
    safe = bool(_SAFE_ID.fullmatch(window_id) and _SAFE_ID.fullmatch(basket_id))
    if safe and window_id not in others and basket_id not in others:
        assert isinstance(out, Episode), out
        assert window_id in {w.window_id for w in out.windows} and basket_id in out.baskets
    else:
        assert isinstance(out, EpisodeError)
        assert safe or "refused: ids are letters, digits and _" in str(out), out


class _PlainDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: object) -> bool:
        return True
