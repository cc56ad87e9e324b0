"""Great Expectations suites for the landed raw tables (DESIGN §3, §8).

Every suite is generated from the dataset's contract in `selloff.contracts`, so a rule
added there is checked here without touching this module. The suites run on GX 1.x
directly (ephemeral context, pandas data source) because the `dagster-ge` integration only
speaks the pre-1.0 API; the Dagster asset checks that call `run_suite_on_table` live in
`assets/extract/`.

Where the data is: `run_suite_on_table` never copies a whole raw table into pandas. It
reads the table from DuckDB in bounded batches (about `BATCH_ROWS` rows each) and runs the
same suite on each. The batches split the rows by a hash of the contract key, so every
row of a duplicated key lands in the same batch and the per-batch uniqueness expectation
is exact for the whole table; the other expectations are per row or per column set and
add up across batches. Peak memory is one batch's pandas copy, whatever the table size.

Dropped (it merely repeated the landing gate): the trading-calendar expectation ("<date>
must be a trading day of the market", which needed a derived `_on_trading_calendar` column
joined from exchange_calendars in Python). The landing gate (`selloff.validation`) checks
exactly that rule, against the same calendars, on every row before it lands, and a landed
row's market and date cannot change afterwards. Every other expectation stays: column set
and types, key uniqueness, not-null, signs and finiteness, accepted values, id format and
no future dates (they also guard `raw` against writes that bypass the gate and against
partition windows merged into an existing table).

GX, pandas and pyarrow are imported inside the functions: importing GX takes seconds,
and every process that loads the Dagster definitions would pay it at start-up.

Over 400 lines because the suite builder, the batch reader and the result folding share
the contract-derived column plan; apart, each would re-derive it.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import polars as pl

from selloff.contracts import DATASETS, ID_PATTERN, Dataset
from selloff.warehouse import release_memory

if TYPE_CHECKING:
    from collections.abc import Iterable

    import duckdb
    import great_expectations as gx
    import pandas as pd

# One batch's pandas copy is the memory the suite needs: about 150 MB for 1 M rows of the
# widest raw table (prices), against 1.1 GiB for the whole of fund flows at 5,000 x 5.
BATCH_ROWS = 1_000_000
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

    The suite validates the contract's columns as landed in `raw`. `required` adds "at least one row": a dataset a source lacks lands as an empty table and must
    then pass, so emptiness only fails where the caller says the dataset is needed.
    """
    _guard_pyspark_connect()
    import great_expectations as gx
    import great_expectations.expectations as gxe

    spec = DATASETS[dataset]
    # Distinct names: one context may hold both variants (see `_run_batches`).
    suite = gx.ExpectationSuite(name=f"raw.{dataset}" + (".required" if required else ""))

    def add(expectation: Any, rule: str, column: str | None = None, *,
            show_value: bool = True) -> None:
        # The rule text travels in `meta` so a run can explain a failure from the result
        # alone, and the same words show in Data Docs if anyone renders them.
        expectation.meta = {"rule": rule, "column": column, "show_value": show_value,
                            "order": len(suite.expectations)}
        expectation.description = rule
        suite.add_expectation(expectation)

    add(gxe.ExpectTableColumnsToMatchSet(column_set=spec.column_names, exact_match=True),
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

    return suite


def run_suite(dataset: str, df: pl.DataFrame, today: dt.date | None = None, *,
              required: bool = False) -> SuiteOutcome:
    """Validate one frame with the dataset's generated suite, as one batch.

    `today` bounds the no-future-dates rule (default: the local date). An empty frame
    passes unless `required`, with a note saying so. For a landed table use
    `run_suite_on_table`, which never holds more than one batch.
    """
    return _run_batches(dataset, [(df, True)], df.height, df.columns, today, required)


def run_suite_on_table(con: duckdb.DuckDBPyConnection, dataset: str,
                       today: dt.date | None = None, *, required: bool = False,
                       batch_rows: int = BATCH_ROWS) -> SuiteOutcome | None:
    """Validate `raw.<dataset>` in DuckDB in bounded batches; None if the table is absent.

    The rows are split into ceil(rows / batch_rows) buckets by a hash of the contract key
    (by row id when a key column is missing: the column-set expectation fails then anyway),
    so duplicates of a key always meet in one batch. "At least one row" runs on the
    largest bucket only, which is empty exactly when the table is.
    """
    table = f"raw.{dataset}"
    found = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'raw' AND table_name = ? ORDER BY ordinal_position", [dataset],
    ).fetchall()
    if not found:
        return None
    columns = [r[0] for r in found]
    rows = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    buckets = max(1, math.ceil(rows / batch_rows))
    spec = DATASETS[dataset]
    if buckets == 1:
        return _run_batches(dataset, [(con.sql(f"SELECT * FROM {table}").pl(), True)],
                            rows, columns, today, required)

    has_key = all(k in columns for k in spec.key)
    keys = ", ".join(f'"{k}"' for k in spec.key)
    bucket = f"hash({keys}) % {buckets}" if has_key else f"rowid % {buckets}"
    order = f" ORDER BY {keys}" if has_key else ""
    sizes = dict(con.execute(f"SELECT {bucket} AS b, count(*) FROM {table} GROUP BY b").fetchall())
    largest = max(sizes, key=lambda b: sizes[b])

    def batches() -> Iterable[tuple[pl.DataFrame, bool]]:
        # A generator: each batch is read when GX is ready for it and dropped after.
        for b in sorted(sizes):
            df = con.sql(f"SELECT * FROM {table} WHERE {bucket} = {b}{order}").pl()
            yield df, b == largest

    return _run_batches(dataset, batches(), rows, columns, today, required)


def _run_batches(dataset: str, batches: Iterable[tuple[pl.DataFrame, bool]], rows: int,
                 columns: list[str], today: dt.date | None, required: bool) -> SuiteOutcome:
    _guard_pyspark_connect()
    import great_expectations as gx

    started = time.perf_counter()
    today = today or dt.date.today()
    spec = DATASETS[dataset]
    notes: list[str] = []
    if rows == 0 and not required:
        notes.append(f"{dataset} is empty (the source lacks it): only its columns and "
                     "types were checked")

    _skip_batch_fingerprint()
    context = _context()
    batch_def = (
        context.data_sources.add_pandas(f"raw_{dataset}")
        .add_dataframe_asset(dataset)
        .add_batch_definition_whole_dataframe("batch")
    )
    validations: dict[bool, Any] = {}

    def validation(with_count: bool) -> Any:
        # Without `required` both suites are the same; with it, only one batch counts rows.
        flag = with_count and required
        if flag not in validations:
            name = f"raw.{dataset}" + (".required" if flag else "")
            suite = build_suite(dataset, today, required=flag)
            validations[flag] = context.validation_definitions.add(gx.ValidationDefinition(
                name=name, data=batch_def, suite=context.suites.add(suite)))
        return validations[flag]

    key_present = [k for k in spec.key if k in columns]
    merged: dict[int, dict[str, Any]] = {}
    for df, with_count in batches:
        frame = _to_pandas(df)
        del df
        result = validation(with_count).run(
            batch_parameters={"dataframe": frame},
            result_format={
                "result_format": "SUMMARY",
                "partial_unexpected_count": MAX_EXAMPLES,
                # Examples name rows by the contract key, which is how a user finds them.
                "unexpected_index_column_names": key_present,
            },
        )
        del frame
        for r in result.results:
            _merge(merged, r)
        del result
        release_memory()  # the batch's pandas buffers go back to the OS before the next

    # GX returns results in no particular order; report them in the suite's order
    # (columns first) so the first line of a failed check is the most basic problem.
    ordered = [merged[k] for k in sorted(merged)]
    failed = [_describe_failure(dataset, spec, SimpleNamespace(**m), set(columns))
              for m in ordered if not m["success"]]
    evaluated = len(ordered)
    good = evaluated - len(failed)
    return SuiteOutcome(
        dataset=dataset,
        success=not failed,
        evaluated=evaluated,
        failed=failed,
        statistics={"evaluated_expectations": evaluated, "successful_expectations": good,
                    "unsuccessful_expectations": len(failed),
                    "success_percent": 100.0 * good / evaluated if evaluated else None},
        rows=rows,
        seconds=round(time.perf_counter() - started, 3),
        notes=notes,
    )


def _merge(merged: dict[int, dict[str, Any]], r: Any) -> None:
    """Add one batch's result of one expectation to the whole table's.

    Counts add up over batches (the batches partition the rows); examples are kept up to
    MAX_EXAMPLES in batch order; an exception or observed value is the first batch's.
    """
    config = r.expectation_config
    order = (config.meta or {}).get("order", 0)
    m = merged.setdefault(order, {"expectation_config": config, "success": True,
                                  "result": {}, "exception_info": None})
    res = dict(r.result or {})
    acc = m["result"]
    for k in ("element_count", "unexpected_count", "missing_count"):
        if k in res:
            acc[k] = acc.get(k, 0) + int(res[k])
    if r.success:
        return
    m["success"] = False
    if m["exception_info"] is None and _exception_message(r):
        m["exception_info"] = r.exception_info
    for k in ("partial_unexpected_index_list", "partial_unexpected_list"):
        if res.get(k):
            acc[k] = (acc.get(k) or []) + list(res[k])
            acc[k] = acc[k][:MAX_EXAMPLES]
    for k in ("observed_value", "details"):
        if k in res and k not in acc:
            acc[k] = res[k]
    if "unexpected_count" in acc:
        judged = acc.get("element_count", 0) - acc.get("missing_count", 0)
        acc["unexpected_percent"] = 100.0 * acc["unexpected_count"] / judged if judged else None


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


def _skip_batch_fingerprint() -> None:
    """Stop GX from hashing every batch it is given.

    GX's pandas engine fingerprints each in-memory batch (`hash_pandas_object` of every
    row, then md5) for a batch marker that nothing here reads: about a quarter of a
    suite's time on 1 M fund-flow rows (8 of 34 s for 2.1 M rows in 3 batches). It skips
    the fingerprint for frames above `HASH_THRESHOLD` bytes; a threshold of 0 skips it
    always. No expectation and no result depends on it.
    """
    from great_expectations.execution_engine import pandas_execution_engine as engine

    if getattr(engine, "HASH_THRESHOLD", 0):
        engine.HASH_THRESHOLD = 0


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
        parts = [f"{what} {sorted(mismatched[what])}" for what in ("missing", "unexpected")
                 if mismatched.get(what)]
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
