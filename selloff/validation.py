"""Typing and validation of a canonical dataset before it lands.

Every problem is reported with the dataset, the row (1-based data row of the input, as a
spreadsheet would show it after the header) and the rule, so a user can find and fix it.
Nothing is written when validation fails, so what had landed before stays intact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import polars as pl

from selloff.calendars import MARKET_CALENDARS, calendar_bounds, is_trading_day
from selloff.contracts import DATASETS, ID_PATTERN, MAX_AMOUNT, MAX_PRICE, PRICE_COLUMNS, Dataset
from selloff.markets import market_of, market_of_expr

ROW = "__row"
MAX_REPORTED = 10

# A comma in a number is read only as a thousands separator, and only where that reading
# is the only one: two or more groups of three ("1,234,567") or a dot decimal after the
# groups ("1,234.5"). "0,0066", "1.234,5" (decimal commas) and a lone "1,234" (1234 or
# 1.234?) are refused, never guessed.
_THOUSANDS = r"^[+-]?\d{1,3}(,\d{3}){2,}(\.\d+)?$|^[+-]?\d{1,3}(,\d{3})+\.\d+$"
# A date cell is the ISO date, optionally with a midnight time (a datetime written out by
# a spreadsheet); anything after it is garbage, not something to cut off.
_DATE = r"^(\d{4}-\d{2}-\d{2})(?:[ T]00:00(?::00(?:\.0+)?)?)?$"

# Datasets whose rows are checked against another dataset (the reference is loaded through
# the same gate first): a price must be in its security's currency.
REFERENCES: dict[str, tuple[str, ...]] = {"prices_daily": ("securities",)}


@dataclass(frozen=True)
class Violation:
    dataset: str
    row: int | None
    rule: str
    detail: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else "whole dataset"
        return f"{self.dataset}, {where}: rule '{self.rule}' broken: {self.detail}"


class DataContractError(ValueError):
    """Input that breaks the canonical contract; carries every violation found."""

    def __init__(self, violations: list[Violation], origin: str | None = None):
        self.violations = violations
        shown = "\n  ".join(str(v) for v in violations[:MAX_REPORTED])
        more = len(violations) - MAX_REPORTED
        tail = f"\n  ... and {more} more" if more > 0 else ""
        src = f" (from {origin})" if origin else ""
        super().__init__(f"{len(violations)} contract violation(s){src}:\n  {shown}{tail}")


def _rows(df: pl.DataFrame, mask: pl.Expr) -> list[int]:
    return df.filter(mask)[ROW].to_list()


def coerce(raw: pl.DataFrame, dataset: str, origin: str | None = None,
           default_source: str | None = None) -> pl.DataFrame:
    """Select and type the contract's columns; extra columns are ignored.

    Raises DataContractError for a missing column, an empty dataset, or a value that does
    not parse as its column's type (text in a numeric column, a malformed date).
    """
    spec = DATASETS[dataset]
    df = raw
    if "source" not in df.columns and default_source is not None:
        df = df.with_columns(pl.lit(default_source).alias("source"))
    nullable_missing = [c.name for c in spec.columns if c.name not in df.columns and c.nullable]
    df = df.with_columns([pl.lit(None, dtype=spec.schema[c]).alias(c) for c in nullable_missing])
    missing = [c for c in spec.column_names if c not in df.columns]
    if missing:
        raise DataContractError(
            [Violation(dataset, None, "required columns", f"missing column(s) {missing}")], origin
        )
    if df.height == 0:
        raise DataContractError([Violation(dataset, None, "not empty", "no rows")], origin)
    if ROW not in df.columns:
        df = df.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    violations: list[Violation] = []
    typed = []
    for col in spec.columns:
        src = pl.col(col.name)
        current = df.schema[col.name]
        if current == col.dtype:
            typed.append(src)
            continue
        if col.dtype == pl.Boolean and current == pl.Utf8:
            low = src.str.strip_chars().str.to_lowercase()
            expr = (
                pl.when(low.is_in(["true", "t", "1", "yes", "y"])).then(True)
                .when(low.is_in(["false", "f", "0", "no", "n"])).then(False)
                .otherwise(None)
            )
        elif col.dtype == pl.Date and current == pl.Utf8:
            expr = src.str.strip_chars().str.extract(_DATE, 1).str.to_date("%Y-%m-%d", strict=False)
        elif col.dtype == pl.Utf8 and current in (pl.Float64, pl.Float32):
            # Integer-valued floats (a CIK read as a number) keep their digits only.
            expr = pl.when(src == src.round(0)).then(src.cast(pl.Int64).cast(pl.Utf8)).otherwise(src.cast(pl.Utf8))
        elif current == pl.Utf8 and col.dtype in (pl.Float64, pl.Int64):
            text = src.str.strip_chars()
            expr = (
                pl.when(~text.str.contains(",", literal=True)).then(text)
                .when(text.str.contains(_THOUSANDS)).then(text.str.replace_all(",", "", literal=True))
                .otherwise(None)
                .cast(col.dtype, strict=False)
            )
        else:
            expr = _strict_cast(src, current, col.dtype)
        typed.append(expr.alias(col.name))
        blank = src.is_null()
        if current == pl.Utf8:
            blank = blank | (src.str.strip_chars() == "")
        bad = df.with_columns(expr.alias("__typed")).filter(pl.col("__typed").is_null() & ~blank)
        for row, value in zip(bad[ROW].to_list()[:MAX_REPORTED], bad[col.name].to_list(), strict=False):
            if current != pl.Utf8:
                violations.append(Violation(dataset, row, f"type {col.dtype}",
                                            f"column {col.name} has {value!r} ({current}): "
                                            f"{_cast_rule(current, col.dtype)}"))
                continue
            if isinstance(value, str) and "," in value and col.dtype in (pl.Float64, pl.Int64):
                violations.append(
                    Violation(dataset, row, "number format: no decimal comma",
                              f"column {col.name} has {value!r}: a comma is read only as a "
                              "thousands separator in unambiguous groups (1,234,567 or "
                              "1,234.5); write decimals with a dot")
                )
                continue
            violations.append(
                Violation(dataset, row, f"type {col.dtype}",
                          f"column {col.name} has {value!r}, which is not a {col.dtype}")
            )
    if violations:
        raise DataContractError(violations, origin)
    out = df.select([ROW, *typed])
    # Empty strings in optional text columns mean "absent".
    # Whether a column has any is decided on its distinct values (a few per column,
    # against millions of rows to strip), and only such columns are rewritten.
    text_cols = [c.name for c in spec.columns if c.dtype == pl.Utf8]
    blank = out.select(
        [(pl.col(c).unique().str.strip_chars() == "").any().alias(c) for c in text_cols]
    ).row(0, named=True) if text_cols else {}
    return out.with_columns(
        [pl.when(pl.col(c).str.strip_chars() == "").then(None).otherwise(pl.col(c)).alias(c)
         for c in text_cols if blank[c]]
    )


def _strict_cast(src: pl.Expr, current: pl.DataType, target: pl.DataType) -> pl.Expr:
    """A typed (Parquet) column to the contract's type without a lossy cast: the value
    becomes null (and is reported) where the cast would change what it says, so a file
    obeys the same rules whatever its format."""
    none = pl.lit(None, dtype=target)
    if target == pl.Date:
        if isinstance(current, pl.Datetime) and current.time_zone is None:
            # A zone-less midnight is a day; any other time, or a zone, is not.
            return pl.when(src.dt.time() == pl.time(0)).then(src.dt.date()).otherwise(none)
        return none  # integers (days since 1970? 1900?), zoned timestamps, text-like
    if current == pl.Boolean and target != pl.Boolean:
        return none  # a boolean is not a number, a date or an id
    if target == pl.Boolean:
        if current.is_integer():
            return pl.when(src == 1).then(True).when(src == 0).then(False).otherwise(None)
        return none
    if target == pl.Int64:
        if current.is_float() or current.is_decimal():
            f = src.cast(pl.Float64)
            return (pl.when(f.is_finite() & (f == f.round(0)) & (f.abs() < 2.0 ** 53))
                    .then(f.cast(pl.Int64, strict=False)).otherwise(None))
        if current.is_integer():
            return src.cast(pl.Int64, strict=False)  # an overflow becomes null: reported
        return none
    if target == pl.Float64:
        if current.is_numeric():
            return src.cast(pl.Float64, strict=False)
        return none
    if target == pl.Utf8:
        # Integers keep their digits; dictionary-encoded text (a pandas category) is text.
        if current.is_integer() or isinstance(current, pl.Categorical | pl.Enum):
            return src.cast(pl.Utf8)
        return none
    return src.cast(target, strict=False)


def _cast_rule(current: pl.DataType, target: pl.DataType) -> str:
    if target == pl.Date:
        return ("a date column takes a date, or a zone-less timestamp at midnight; not a "
                "time-zone-aware timestamp, another time of day or a number")
    if current == pl.Boolean:
        return f"a boolean is not a {target}"
    if target == pl.Int64:
        return "an integer column takes integral values only (no fraction is dropped)"
    if target == pl.Boolean:
        return "a boolean column takes true/false (or 1/0)"
    return f"cannot be read as a {target} without changing it"


def validate(df: pl.DataFrame, dataset: str, origin: str | None = None,
             today: dt.date | None = None,
             refs: Mapping[str, pl.DataFrame | None] | None = None) -> pl.DataFrame:
    """Check keys, nulls, ranges, allowed values, future dates, trading calendars, the
    contract's row rules and, given `refs` (other datasets, already through the gate), the
    rules across datasets.

    Returns the frame without the row-number column when every rule holds.
    """
    spec: Dataset = DATASETS[dataset]
    if ROW not in df.columns:
        df = df.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    today = today or dt.date.today()
    v: list[Violation] = []

    # Every row rule as (mask, rule, detail), in the order violations are reported. All
    # masks are first reduced to one flag each in a single pass (polars evaluates them
    # together, in parallel, over the part's columns); only a rule some row breaks is
    # then filtered for its rows, so a clean part costs one scan instead of one filter
    # (a copy of the matching rows) per rule.
    rules: list[tuple[pl.Expr, str, Callable[[dict], str]]] = []

    def add(mask: pl.Expr, rule: str, detail: Callable[[dict], str]) -> None:
        rules.append((mask, rule, detail))

    for col in spec.required:
        add(pl.col(col).is_null(), f"not null: {col}", lambda r, c=col: f"{c} is empty")
    key_rule = len(rules)
    for col in spec.positive:
        add(pl.col(col).is_not_null() & ~(pl.col(col) > 0), f"positive: {col}",
            lambda r, c=col: f"{c}={r[c]} is not > 0")
    for col in spec.non_negative:
        add(pl.col(col).is_not_null() & (pl.col(col) < 0), f"non-negative: {col}",
            lambda r, c=col: f"{c}={r[c]} is < 0")
    for col in [c.name for c in spec.columns if c.dtype == pl.Float64]:
        add(pl.col(col).is_not_null() & ~pl.col(col).is_finite(), f"finite: {col}",
            lambda r, c=col: f"{c}={r[c]} is not finite")
        bound = MAX_PRICE if col in PRICE_COLUMNS else MAX_AMOUNT
        add(pl.col(col).is_finite() & (pl.col(col).abs() > bound), f"plausible: {col}",
            lambda r, c=col, b=bound: f"{c}={r[c]:g} is beyond the plausible bound {b:g} "
            "(a unit or export error?)")
    for col, values in spec.allowed.items():
        add(pl.col(col).is_not_null() & ~pl.col(col).is_in(list(values)), f"accepted values: {col}",
            lambda r, c=col, vals=values: f"{c}={r[c]!r} is not one of {', '.join(vals)}")
    for col in spec.date_columns_not_future:
        add(pl.col(col).is_not_null() & (pl.col(col) > today), f"no future dates: {col}",
            lambda r, c=col: f"{c}={r[c]} is after today ({today})")
    for col in spec.id_columns:
        add(pl.col(col).is_not_null() & ~pl.col(col).str.contains(ID_PATTERN),
            f"id format: {col}",
            lambda r, c=col: f"{c}={r[c]!r} is not '<MARKET>:<code>' with a known market and "
            f"an upper-case ASCII code ({ID_PATTERN})")
    for check in spec.checks:
        add(check.broken.fill_null(False), check.rule,
            lambda r, c=check: ", ".join(f"{k}={r[k]}" for k in c.shows))
    # A check is a row rule (contracts.Check): whether some row breaks it depends only
    # on the distinct combinations of the columns it reads. Over text, dates and
    # integers (ids, currencies: a few thousand combinations in millions of rows) those
    # are evaluated instead of every row; float columns are nearly all distinct, so
    # their checks run on the rows.
    by_distinct: dict[int, list[str]] = {}
    for i in range(len(rules) - len(spec.checks), len(rules)):
        used = rules[i][0].meta.root_names()
        if used and all(c in df.columns and not df.schema[c].is_float() for c in used):
            by_distinct[i] = sorted(set(used))

    # The key's repeats: the exact search (a window over the key) costs more than all the
    # other rules together, so it runs only when the key's hashes are not all distinct:
    # equal keys always hash alike, so distinct hashes prove there is no repeat (a hash
    # collision merely sends the part through the exact search, which then finds
    # nothing). The distinct hashes are counted in the same pass as the flags.
    flags = df.select(
        *[mask.fill_null(False).any().alias(f"__rule{i}") for i, (mask, _, _) in enumerate(rules)
          if i not in by_distinct],
        pl.struct(list(spec.key)).hash().n_unique().alias("__distinct_keys"),
    ).row(0)
    distinct = flags[-1]
    plain = iter(flags[:-1])
    hit = [df.select(cols).unique().select(rules[i][0].fill_null(False).any()).item()
           if (cols := by_distinct.get(i)) else next(plain) for i in range(len(rules))]

    def report(i: int) -> None:
        mask, rule, detail = rules[i]
        for rec in df.filter(mask).head(MAX_REPORTED).iter_rows(named=True):
            v.append(Violation(dataset, rec[ROW], rule, detail(rec)))

    for i in range(key_rule):
        if hit[i]:
            report(i)
    if distinct < df.height:
        # Report each repeat (not the first occurrence) and point back at the row it
        # repeats.
        first_row = pl.col(ROW).first().over(list(spec.key))
        df = df.with_columns(first_row.alias("__first_row"))
        repeat = ~pl.struct(list(spec.key)).is_first_distinct()
        for rec in df.filter(repeat).head(MAX_REPORTED).iter_rows(named=True):
            v.append(Violation(
                dataset, rec[ROW], "unique key " + "+".join(spec.key),
                "duplicate key " + ", ".join(f"{k}={rec[k]}" for k in spec.key)
                + f" (first in row {rec['__first_row']})"))
    for i in range(key_rule, len(rules)):
        if hit[i]:
            report(i)
    if spec.calendar_date and spec.market_of:
        v.extend(_calendar_violations(df, spec))
    v.extend(_cross_violations(df, dataset, refs or {}))
    if v:
        raise DataContractError(v, origin)
    return df.drop(ROW, "__first_row", strict=False)


def _calendar_violations(df: pl.DataFrame, spec: Dataset) -> list[Violation]:
    date_col, id_col = spec.calendar_date, spec.market_of
    scope = df
    if spec.calendar_when:
        col, value = spec.calendar_when
        scope = scope.filter(pl.col(col) == value)
    # Only a date that is not a session of some market can break the rule: find those
    # among the part's few distinct dates first, so the per-row work (the market of each
    # id, the distinct (market, date) pairs) runs on their rows alone, usually few.
    markets = {market_of(i) for i in scope.get_column(id_col).drop_nulls().unique().to_list()}
    bounds = {m: calendar_bounds(m) for m in sorted(markets) if m in MARKET_CALENDARS}
    days = scope.get_column(date_col).drop_nulls().unique().to_list()
    suspect = [d for d in days if any(first <= d <= last and not is_trading_day(m, d)
                                      for m, (first, last) in bounds.items())]
    if not suspect:
        return []
    scope = scope.filter(pl.col(date_col).is_in(suspect))
    pairs = (
        scope.select(
            market_of_expr(id_col).alias("__market"), pl.col(date_col)
        )
        .unique()
        .drop_nulls()
    )
    bad_pairs = []
    for market, day in pairs.iter_rows():
        if market not in MARKET_CALENDARS:
            continue
        first, last = bounds[market]
        if first <= day <= last and not is_trading_day(market, day):
            bad_pairs.append((market, day))
    if not bad_pairs:
        return []
    bad = pl.DataFrame(bad_pairs, schema={"__market": pl.Utf8, date_col: pl.Date}, orient="row")
    hits = (
        scope.with_columns(market_of_expr(id_col).alias("__market"))
        .join(bad, on=["__market", date_col])
        .sort(ROW)
    )
    return [
        Violation(spec.name, rec[ROW], f"trading day: {date_col}",
                  f"{id_col}={rec[id_col]}: {rec[date_col]} is not a trading day of "
                  f"{market_of(rec[id_col])} ({MARKET_CALENDARS[market_of(rec[id_col])]})")
        for rec in hits.head(MAX_REPORTED).iter_rows(named=True)
    ]


def _cross_violations(df: pl.DataFrame, dataset: str,
                      refs: Mapping[str, pl.DataFrame | None]) -> list[Violation]:
    securities = refs.get("securities")
    if dataset != "prices_daily" or securities is None or securities.height == 0:
        return []
    # A price in another currency than its security's would be converted at the wrong
    # rate (US:NVDA in JPY: a market cap ~150x off). Unknown securities are the dbt
    # relationship test's business.
    theirs = securities.select("security_id", pl.col("currency").alias("__security_currency"))
    # A part has few distinct (security, currency) pairs: checking those first spares
    # the join of every row when none is wrong (the rows are then found as before).
    pairs = df.group_by("security_id", "currency").len()
    if pairs.join(theirs, on="security_id", how="inner").filter(
            pl.col("currency") != pl.col("__security_currency")).height == 0:
        return []
    hits = (
        df.join(theirs, on="security_id", how="inner")
        .filter(pl.col("currency") != pl.col("__security_currency"))
        .sort(ROW)
    )
    return [
        Violation(dataset, rec[ROW], "currency of the security",
                  f"security_id={rec['security_id']}: price currency {rec['currency']} is not "
                  f"the security's currency {rec['__security_currency']} (securities)")
        for rec in hits.head(MAX_REPORTED).iter_rows(named=True)
    ]


def conform(raw: pl.DataFrame, dataset: str, origin: str | None = None,
            default_source: str | None = None, today: dt.date | None = None,
            refs: Mapping[str, pl.DataFrame | None] | None = None) -> pl.DataFrame:
    """coerce + validate: the one gate every source's output passes before landing."""
    return validate(coerce(raw, dataset, origin, default_source), dataset, origin, today, refs)
