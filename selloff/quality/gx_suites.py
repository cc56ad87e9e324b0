"""Great Expectations suites for the landed raw tables (DESIGN §3, §8).

Every suite is generated from the dataset's contract in `selloff.contracts`, so a rule
added there is checked here without touching this module. The suites run on GX 1.x
directly (ephemeral context, pandas data source, whole-dataframe batch) because the
`dagster-ge` integration only speaks the pre-1.0 API; the Dagster asset checks that call
`run_suite` live in `assets/`.

GX, pandas and pyarrow are imported inside the functions: importing GX takes seconds,
and every process that loads the Dagster definitions would pay it at start-up.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import polars as pl

from selloff.calendars import MARKET_CALENDARS, calendar_frame
from selloff.contracts import DATASETS, ID_PATTERN, Dataset

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd

ON_CALENDAR = "_on_trading_calendar"
MAX_EXAMPLES = 3


def _guard_pyspark_connect() -> None:
    """Keep GX's optional `import pyspark.sql.connect` from ending the process.

    GX probes pyspark on import and expects ImportError when it is unusable. In a process
    whose __main__ has no file (Dagster's spawned step processes run `python -c ...`),
    pyspark's connect package takes itself to be running doctests and calls sys.exit(0)
    when the Spark Connect extras are missing. Only then is the probe made to fail the
    way GX expects; the classic pyspark API (what dbt-spark's session method uses) stays.
    """
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__file__", None) is None and main.__spec__ is None:
        sys.modules.setdefault("pyspark.sql.connect", None)

# GX's pandas type check compares the column dtype's scalar type; these are the names it
# resolves for the dtypes `_to_pandas` produces from each contract type.
_GX_TYPE = {pl.String: "str", pl.Float64: "float64", pl.Int64: "int64", pl.Boolean: "bool",
            pl.Date: "datetime64"}

# An upper bound on the sign checks makes them reject inf as well, in the same pass.
_FLOAT_MAX = sys.float_info.max

_NO_FLAG = "the trading-calendar flag needs {id} as text and {date} as a date"

# The dates datetime64[ns] can hold.
_NS_FIRST, _NS_LAST = dt.date(1678, 1, 1), dt.date(2261, 12, 31)

# result_format keys GX fills per expectation; anything else is left out of the outcome.
_STAT_KEYS = ("element_count", "unexpected_count", "unexpected_percent", "missing_count")


@dataclass(frozen=True)
class SuiteOutcome:
    """What a suite run found, shaped for an asset check's description and metadata.

    `failed` holds one plain dict per failed expectation (JSON-safe values only): dataset,
    expectation_type, column, rule, description (one readable line), unexpected_count,
    examples (rendered strings) and example_rows (the key columns and the offending
    value), plus observed_value or exception when GX reported them.
    """

    dataset: str
    success: bool
    evaluated: int
    failed: list[dict[str, Any]]
    statistics: dict[str, Any]
    rows: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        if self.success:
            head = f"{self.dataset}: {self.evaluated} expectations passed on {self.rows} rows"
            return "; ".join([head, *self.notes])
        lines = [f.get("description", "") for f in self.failed]
        return "\n".join([*lines, *self.notes])


def build_suite(dataset: str, today: dt.date, *, required: bool = False) -> gx.ExpectationSuite:
    """The expectation suite of `raw.<dataset>`, generated from its contract.

    The suite validates the frame `prepare_frame` returns (the contract's columns plus the
    derived trading-calendar flag where the contract names a calendar date). `required`
    adds "at least one row": a dataset a source lacks lands as an empty table and must
    then pass, so emptiness only fails where the caller says the dataset is needed.
    """
    _guard_pyspark_connect()
    import great_expectations as gx
    import great_expectations.expectations as gxe

    spec = DATASETS[dataset]
    suite = gx.ExpectationSuite(name=f"raw.{dataset}")

    def add(expectation: Any, rule: str, column: str | None = None, *,
            show_value: bool = True) -> None:
        # The rule text travels in `meta` so a run can explain a failure from the result
        # alone, and the same words show in Data Docs if anyone renders them.
        expectation.meta = {"rule": rule, "column": column, "show_value": show_value,
                            "order": len(suite.expectations)}
        expectation.description = rule
        suite.add_expectation(expectation)

    columns = spec.column_names + ([ON_CALENDAR] if _has_calendar(spec) else [])
    add(gxe.ExpectTableColumnsToMatchSet(column_set=columns, exact_match=True),
        "columns must be exactly the contract's")
    if required:
        add(gxe.ExpectTableRowCountToBeBetween(min_value=1),
            "must have at least 1 row (the dataset is required)")

    for col in spec.columns:
        gx_type = _GX_TYPE.get(col.dtype.base_type())
        if gx_type:
            add(gxe.ExpectColumnValuesToBeOfType(column=col.name, type_=gx_type),
                f"{col.name} must be of type {col.dtype}", col.name)

    if len(spec.key) == 1:
        add(gxe.ExpectColumnValuesToBeUnique(column=spec.key[0]),
            f"key {spec.key[0]} must be unique", spec.key[0], show_value=False)
    else:
        add(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(spec.key)),
            f"key ({', '.join(spec.key)}) must be unique", None, show_value=False)

    for name in spec.required:
        add(gxe.ExpectColumnValuesToNotBeNull(column=name),
            f"{name} must not be null", name, show_value=False)

    for name in spec.positive:
        add(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0, strict_min=True,
                                              max_value=_FLOAT_MAX),
            f"{name} must be > 0 (and finite)", name)
    for name in spec.non_negative:
        add(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0, max_value=_FLOAT_MAX),
            f"{name} must be >= 0 (and finite)", name)
    signed = set(spec.positive) | set(spec.non_negative)
    for col in spec.columns:
        # The landing gate rejects inf in every float column; keep that promise here too.
        if col.dtype == pl.Float64 and col.name not in signed:
            add(gxe.ExpectColumnValuesToBeBetween(column=col.name, min_value=-_FLOAT_MAX,
                                                  max_value=_FLOAT_MAX),
                f"{col.name} must be finite", col.name)

    for name, values in spec.allowed.items():
        add(gxe.ExpectColumnValuesToBeInSet(column=name, value_set=list(values)),
            f"{name} must be one of {', '.join(values)}", name)

    for name in spec.id_columns:
        add(gxe.ExpectColumnValuesToMatchRegex(column=name, regex=ID_PATTERN),
            f"{name} must look like <MARKET>:<code> ({ID_PATTERN})", name)

    # Dates reach pandas as midnight datetime64, so midnight of `today` is the last
    # allowed value.
    latest = dt.datetime(today.year, today.month, today.day)
    for name in spec.date_columns_not_future:
        add(gxe.ExpectColumnValuesToBeBetween(column=name, max_value=latest),
            f"{name} must not be after today ({today.isoformat()})", name)

    if _has_calendar(spec):
        scope = ""
        if spec.calendar_when:
            when_col, when_value = spec.calendar_when
            scope = f" where {when_col} = {when_value!r}"
        add(gxe.ExpectColumnValuesToBeInSet(column=ON_CALENDAR, value_set=[True]),
            f"{spec.calendar_date} must be a trading day of the market in {spec.market_of} "
            f"(exchange_calendars){scope}",
            spec.calendar_date, show_value=False)
    return suite


def prepare_frame(dataset: str, df: pl.DataFrame) -> pl.DataFrame:
    """The frame the suite validates: `df` plus the trading-calendar flag where needed.

    The flag is True unless the row is in the contract's calendar scope, its id names a
    market with a calendar, its date lies inside that calendar's range, and the date is
    not a session. Out-of-range dates and unknown markets cannot be judged, so they pass
    (as in the landing gate); malformed ids and nulls are other expectations' business.
    """
    spec = DATASETS[dataset]
    if not _has_calendar(spec):
        return df
    id_col, date_col = spec.market_of, spec.calendar_date
    if df.schema.get(id_col) != pl.String or df.schema.get(date_col) != pl.Date:
        # Leave the flag out: the column-set and type expectations report the real problem.
        return df
    in_scope: pl.Expr = pl.lit(True)
    if spec.calendar_when:
        when_col, when_value = spec.calendar_when
        if when_col not in df.columns:
            return df
        in_scope = (pl.col(when_col) == when_value).fill_null(False)
    flagged = (
        df.with_columns(
            pl.col(id_col).str.extract(r"^([A-Z]{2}):", 1).alias("__market"),
            pl.col(date_col).alias("__day"),
        )
        .join(_sessions(), on=["__market", "__day"], how="left", maintain_order="left")
        .with_columns((~in_scope | pl.col("__is_session").fill_null(True)).alias(ON_CALENDAR))
    )
    return flagged.drop("__market", "__day", "__is_session")


def run_suite(dataset: str, df: pl.DataFrame, today: dt.date | None = None, *,
              required: bool = False) -> SuiteOutcome:
    """Validate one landed raw table with its generated suite.

    `today` bounds the no-future-dates rule (default: the local date). An empty frame
    passes unless `required`, with a note saying so.
    """
    _guard_pyspark_connect()
    import great_expectations as gx

    started = time.perf_counter()
    today = today or dt.date.today()
    spec = DATASETS[dataset]
    notes: list[str] = []
    if df.height == 0 and not required:
        notes.append(f"{dataset} is empty (the source lacks it): only its columns and "
                     "types were checked")

    frame = _to_pandas(prepare_frame(dataset, df))
    context = _context()
    batch = (
        context.data_sources.add_pandas(f"raw_{dataset}")
        .add_dataframe_asset(dataset)
        .add_batch_definition_whole_dataframe("whole_table")
    )
    suite = context.suites.add(build_suite(dataset, today, required=required))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"raw.{dataset}", data=batch, suite=suite)
    )
    key_present = [k for k in spec.key if k in frame.columns]
    result = validation.run(
        batch_parameters={"dataframe": frame},
        result_format={
            "result_format": "SUMMARY",
            "partial_unexpected_count": MAX_EXAMPLES,
            # Examples name rows by the contract key, which is how a user finds them.
            "unexpected_index_column_names": key_present,
        },
    )
    # GX returns results in no particular order; report them in the suite's order
    # (columns first) so the first line of a failed check is the most basic problem.
    ordered = sorted(result.results,
                     key=lambda r: (r.expectation_config.meta or {}).get("order", 0))
    failed = [_describe_failure(dataset, spec, r, set(frame.columns))
              for r in ordered if not r.success]
    return SuiteOutcome(
        dataset=dataset,
        success=bool(result.success),
        evaluated=len(result.results),
        failed=failed,
        statistics=_plain(dict(result.statistics)),
        rows=df.height,
        seconds=round(time.perf_counter() - started, 3),
        notes=notes,
    )


def _has_calendar(spec: Dataset) -> bool:
    return bool(spec.calendar_date and spec.market_of)


@lru_cache(maxsize=1)
def _sessions() -> pl.DataFrame:
    cal = calendar_frame(tuple(MARKET_CALENDARS))
    return cal.select(
        pl.col("market").alias("__market"),
        pl.col("calendar_date").alias("__day"),
        pl.col("is_trading_day").alias("__is_session"),
    )


def _to_pandas(df: pl.DataFrame) -> pd.DataFrame:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    # Pin dtypes by contract type, not by the data: by default a nullable integer column
    # with a null becomes float64 and a boolean one becomes object, and on object columns
    # GX's type check falls back to a per-row Python loop.
    text = pd.StringDtype(na_value=np.nan)
    mapping = {
        pa.int64(): pd.Int64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
        pa.string(): text,
        pa.large_string(): text,
        pa.string_view(): text,
    }
    # GX compares datetime columns vectorized only at nanosecond precision; any other
    # unit falls back to a Python call per row (13 s on 6M prices). A date outside the
    # nanosecond range (years 1678-2261) keeps the slow path rather than failing the cast.
    fits = []
    for name in (n for n, dtype in df.schema.items() if dtype == pl.Date):
        first, last = df[name].min(), df[name].max()
        if (first is None or first >= _NS_FIRST) and (last is None or last <= _NS_LAST):
            fits.append(name)
    df = df.with_columns(pl.col(fits).cast(pl.Datetime("ns")))
    return df.to_pandas(types_mapper=mapping.get)


def _context() -> Any:
    _guard_pyspark_connect()
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # A fresh in-memory context per run: nothing written to disk, no shared state
    # between concurrent checks, no progress bars in the Dagster logs, no analytics.
    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _describe_failure(dataset: str, spec: Dataset, r: Any,
                      present: set[str]) -> dict[str, Any]:
    config = r.expectation_config
    meta = config.meta or {}
    kwargs = config.kwargs
    column = meta.get("column") or kwargs.get("column")
    rule = meta.get("rule") or config.type
    res = r.result or {}
    out: dict[str, Any] = {
        "dataset": dataset,
        "expectation_type": config.type,
        "column": column,
        "rule": rule,
    }
    exception = _exception_message(r)
    wanted = kwargs.get("column_list") or [kwargs.get("column")]
    absent = [c for c in wanted if c and c not in present]
    if exception and absent:
        # GX's own message for a missing column is an internal error; say what happened.
        exception = f"column(s) {', '.join(absent)} missing"
        if ON_CALENDAR in absent:
            exception = _NO_FLAG.format(id=spec.market_of, date=spec.calendar_date)
    if exception:
        out["exception"] = exception
        out["description"] = f"{dataset}: {rule}: could not be checked ({exception})"
        return out

    if "unexpected_count" in res:
        count = int(res["unexpected_count"])
        # Without key columns GX gives bare 0-based positions; number them as the landing
        # gate does (1-based data rows).
        rows = [r if isinstance(r, dict) else {"row": int(r) + 1}
                for r in _plain(res.get("partial_unexpected_index_list") or [])]
        value_col = kwargs.get("column")
        show_value = meta.get("show_value", True)
        if not rows:
            rows = [{value_col: v} for v in _plain(res.get("partial_unexpected_list") or [])]
        # Both rows of a duplicate key render the same; show each example once.
        examples = list(dict.fromkeys(
            _render_row(row, spec.key, value_col if show_value else None)
            for row in rows[:MAX_EXAMPLES]))
        out.update({k: _plain(res[k]) for k in _STAT_KEYS if k in res})
        out["examples"] = examples
        out["example_rows"] = rows[:MAX_EXAMPLES]
        noun = "row" if count == 1 else "rows"
        tail = f", e.g. {'; '.join(examples)}" if examples else ""
        out["description"] = f"{dataset}: {rule}: {count} {noun}{tail}"
        return out

    observed = _plain(res.get("observed_value"))
    out["observed_value"] = observed
    detail = f"observed {observed}"
    mismatched = (res.get("details") or {}).get("mismatched")
    if isinstance(mismatched, dict):
        # The derived calendar flag is only missing when its inputs are broken, and the
        # type expectations name those; listing it here would point at the wrong thing.
        parts = [f"{what} {sorted(set(mismatched[what]) - {ON_CALENDAR})}"
                 for what in ("missing", "unexpected")
                 if set(mismatched.get(what) or ()) - {ON_CALENDAR}]
        if not parts and ON_CALENDAR in (mismatched.get("missing") or ()):
            parts = [_NO_FLAG.format(id=spec.market_of, date=spec.calendar_date)]
        detail = "; ".join(parts) or detail
        out["mismatched"] = _plain(mismatched)
    out["description"] = f"{dataset}: {rule}: {detail}"
    return out


def _exception_message(r: Any) -> str | None:
    info = r.exception_info or {}
    # GX reports either one {raised_exception, exception_message} or one per metric.
    candidates = [info] if "raised_exception" in info else list(info.values())
    for item in candidates:
        if isinstance(item, dict) and item.get("raised_exception"):
            return str(item.get("exception_message") or "exception").splitlines()[0]
    return None


def _render_row(row: dict[str, Any], key: tuple[str, ...], value_col: str | None) -> str:
    ident = " ".join(_fmt(row.get(k)) for k in key if k in row)
    if not ident and "row" in row:
        ident = f"row {row['row']}"
    if value_col and value_col not in key and value_col in row:
        value = _fmt(row[value_col], quote=True)
        return f"{ident} = {value}" if ident else value
    return ident


def _fmt(value: Any, quote: bool = False) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value) if quote else value
    return str(value)


def _plain(value: Any) -> Any:
    """Turn numpy / pandas scalars into JSON-safe Python values (dates as ISO text)."""
    import pandas as pd

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        if value.hour == value.minute == value.second == value.microsecond == 0:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
