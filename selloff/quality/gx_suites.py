"""Great Expectations suites for the landed raw tables (DESIGN §3, §8).

Every suite is generated from the dataset's contract in `selloff.contracts`, so a rule
added there is checked here without touching this module. The suites run on GX 1.x
directly (ephemeral context) because the `dagster-ge` integration only speaks the pre-1.0
API; the Dagster asset checks that call `run_suite_on_table` live in `assets/extract/`.

Where the data is: the suite runs on the landed table inside DuckDB, through GX's SQL
data source (SQLAlchemy + `duckdb_engine`). Every expectation becomes an aggregate query
that DuckDB answers over the whole table (counts of unexpected rows, the uniqueness of
the key by GROUP BY, the column set and types from the catalog); only the few example
rows of a failure come back to Python. No table is copied into pandas, so the check
needs no batches and its memory is DuckDB's, whatever the table size. A frame
(`run_suite`) is validated the same way, as a table of a throwaway in-memory DuckDB.

Dropped (it merely repeated the landing gate): the trading-calendar expectation ("<date>
must be a trading day of the market", which needed a derived `_on_trading_calendar` column
joined from exchange_calendars in Python). The landing gate (`selloff.validation`) checks
exactly that rule, against the same calendars, on every row before it lands, and a landed
row's market and date cannot change afterwards. Every other expectation stays: column set
and types, key uniqueness, not-null, signs and finiteness, accepted values, id format and
no future dates (they also guard `raw` against writes that bypass the gate and against
partition windows merged into an existing table). The id format is an
`UnexpectedRowsExpectation` (a SQL query) because GX's regex expectation has no
translation for DuckDB's dialect; the query uses the contract's own pattern. The key and
id queries run through `UnexpectedRowsOnceExpectation`, GX's class with its `_validate`
overridden so that DuckDB runs each query once, not once for its rows and again for
their count.

GX is imported inside the functions: importing it takes seconds, and every process that
loads the Dagster definitions would pay it at start-up.
"""

from __future__ import annotations

import atexit
import datetime as dt
import enum
import functools
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from selloff.contracts import DATASETS, ID_PATTERN, Dataset

if TYPE_CHECKING:
    import great_expectations as gx

MAX_EXAMPLES = 3
# DuckDB's memory for a suite's queries (the key's GROUP BY is the largest: 60 M fund-flow
# rows at 18,000 x 10); past it DuckDB spills to the build file's temp folder.
GX_MEMORY_LIMIT = "1GB"


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


# The names GX's SQL type check sees for each contract type: duckdb_engine reflects
# DuckDB's catalog as SQLAlchemy types (VARCHAR as String, DOUBLE as FLOAT, BIGINT as
# BigInteger), and GX compares those types' names.
_SQL_TYPE = {pl.String: "String", pl.Float64: "FLOAT", pl.Int64: "BigInteger",
             pl.Boolean: "BOOLEAN", pl.Date: "DATE"}

# An upper bound on the sign checks makes them reject inf (and DuckDB's NaN, which sorts
# above every number) in the same query.
_FLOAT_MAX = sys.float_info.max

# result_format keys GX fills per expectation; anything else is left out of the outcome.
_STAT_KEYS = ("element_count", "unexpected_count", "unexpected_percent", "missing_count")

ID_RULE = "must look like <MARKET>:<code>"


class _DuckDBDialect(enum.StrEnum):
    """GX's dialect names are a str Enum; `duckdb` is not one of them."""

    DUCKDB = "duckdb"


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


def _unexpected_query(spec: Dataset, rule: str, column: str | None = None, *,
                      table: str = "{batch}", whole: str | None = None) -> str:
    """The SQL of a rule that GX runs as an `UnexpectedRowsExpectation`: the rows that
    break it, as the key columns (and the offending value).

    - `key`: each contract key that appears more than once, with its number of rows
      (`n_rows`). GX's own compound uniqueness joins the table to its group counts and
      sums a CASE per row (27 s on 10 M fund-flow rows); this GROUP BY ... HAVING, on
      the rows whose key hash repeats, takes about 1.5 s of CPU. GX counts the duplicated keys; a failure's row count is their sum.
    - `id`: `column` is not a `<MARKET>:<code>` id (GX's regex expectation has no
      translation for DuckDB).

    `{batch}` is GX's placeholder for the table under test. GX formats the query with
    `str.format` and then runs it as SQLAlchemy `text()`, so for GX the pattern's braces
    are doubled and its colons escaped (`:US` would be a bind parameter); its quotes are
    escaped for SQL either way.
    """
    keys = ", ".join(f'"{k}"' for k in spec.key)
    if rule == "key" and whole is not None:
        # `table` holds only some rows (a refresh window's): their keys are checked
        # against the whole table, where a duplicate of them may lie.
        return (f"SELECT {keys}, count(*) AS n_rows FROM {whole} SEMI JOIN "
                f"(SELECT DISTINCT {keys} FROM {table}) AS __batch USING ({keys}) "
                f"GROUP BY {keys} HAVING count(*) > 1")
    if rule == "key":
        # Grouping 10 M rows by four columns (two of them text) is the suite's costliest
        # query, and GX runs it twice (its rows, then their count). Grouping first by the
        # key's 64-bit hash is cheaper; equal keys hash alike, so every repeated key is
        # among the rows whose hash repeats, and the exact grouping runs on those alone
        # (none, or a few hash collisions, in a table without repeats).
        return (f"SELECT {keys}, count(*) AS n_rows FROM {table} "
                f"WHERE hash({keys}) IN (SELECT hash({keys}) FROM {table} GROUP BY 1 "
                f"HAVING count(*) > 1) GROUP BY {keys} HAVING count(*) > 1")
    assert rule == "id" and column is not None
    shown = ", ".join(f'"{c}"' for c in dict.fromkeys([*spec.key, column]))
    pattern = ID_PATTERN.replace("'", "''")
    if table == "{batch}":
        pattern = pattern.replace("{", "{{").replace("}", "}}").replace(":", "\\:")
    return (f'SELECT {shown} FROM {table} WHERE "{column}" IS NOT NULL '
            f"AND NOT regexp_full_match(\"{column}\", '{pattern}')")


def _unexpected_rows_once() -> type:
    """`UnexpectedRowsOnceExpectation` (selloff.quality.gx_expectations), imported on first
    use: GX is imported lazily, and the class lives in a module without DuckDB in its
    globals (issue 25)."""
    from selloff.quality.gx_expectations import UnexpectedRowsOnceExpectation

    return UnexpectedRowsOnceExpectation


def build_suite(dataset: str, today: dt.date, *, required: bool = False,
                whole: str | None = None) -> gx.ExpectationSuite:
    """The expectation suite of `raw.<dataset>`, generated from its contract.

    The suite validates the contract's columns as landed in `raw`. `required` adds "at
    least one row": a dataset a source lacks lands as an empty table and must then pass,
    so emptiness only fails where the caller says the dataset is needed. `whole` (the
    whole table, when the suite runs on some of its rows) is where key uniqueness is
    checked for the batch's keys.
    """
    _guard_pyspark_connect()
    import great_expectations as gx
    import great_expectations.expectations as gxe

    spec = DATASETS[dataset]
    suite = gx.ExpectationSuite(name=f"raw.{dataset}" + (".required" if required else ""))

    def add(expectation: Any, rule: str, column: str | None = None, *,
            show_value: bool = True, query: str | None = None) -> None:
        # The rule text travels in `meta` so a run can explain a failure from the result
        # alone, and the same words show in Data Docs if anyone renders them.
        expectation.meta = {"rule": rule, "column": column, "show_value": show_value,
                            "order": len(suite.expectations), "query": query}
        expectation.description = rule
        suite.add_expectation(expectation)

    add(gxe.ExpectTableColumnsToMatchSet(column_set=spec.column_names, exact_match=True),
        "columns must be exactly the contract's")
    if required:
        add(gxe.ExpectTableRowCountToBeBetween(min_value=1),
            "must have at least 1 row (the dataset is required)")

    for col in spec.columns:
        sql_type = _SQL_TYPE.get(col.dtype.base_type())
        if sql_type:
            add(gxe.ExpectColumnValuesToBeOfType(column=col.name, type_=sql_type),
                f"{col.name} must be of type {col.dtype}", col.name)

    key = spec.key[0] if len(spec.key) == 1 else f"({', '.join(spec.key)})"
    rows_once = _unexpected_rows_once()
    add(rows_once(unexpected_rows_query=_unexpected_query(spec, "key",
                                                                              whole=whole),
                                      description=f"key {key} must be unique"),
        f"key {key} must be unique", None, show_value=False, query="key")

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
        add(rows_once(unexpected_rows_query=_unexpected_query(spec, "id", name),
                                          description=f"{name} {ID_RULE}"),
            f"{name} {ID_RULE} ({ID_PATTERN})", name, query="id")

    for name in spec.date_columns_not_future:
        add(gxe.ExpectColumnValuesToBeBetween(column=name, max_value=today),
            f"{name} must not be after today ({today.isoformat()})", name)

    return suite


def run_suite(dataset: str, df: pl.DataFrame, today: dt.date | None = None, *,
              required: bool = False) -> SuiteOutcome:
    """Validate one frame with the dataset's generated suite.

    The frame becomes `raw.<dataset>` of a throwaway in-memory DuckDB, so it meets exactly
    the SQL the landed tables meet. `today` bounds the no-future-dates rule (default: the
    local date). An empty frame passes unless `required`, with a note saying so.
    """
    with duckdb.connect() as con:
        con.execute("CREATE SCHEMA raw")
        con.register("__gx_incoming", df.to_arrow())
        con.execute(f'CREATE TABLE raw."{dataset}" AS SELECT * FROM __gx_incoming')
        con.unregister("__gx_incoming")
        outcome = run_suite_on_table(con, dataset, today, required=required)
    assert outcome is not None  # the table was just created
    return outcome


def run_suite_on_table(con: duckdb.DuckDBPyConnection, dataset: str,
                       today: dt.date | None = None, *,
                       required: bool = False, where: str | None = None) -> SuiteOutcome | None:
    """Validate `raw.<dataset>` where it is, in DuckDB; None if the table is absent.

    `where` (SQL over the table's columns, from code: a refresh window's days and markets)
    validates only the rows it selects, through a view (`refresh_state.gx_<dataset>`,
    dropped after): every rule is a row rule but key uniqueness, which checks those rows'
    keys against the whole table.

    GX runs on its own cursor of `con`'s database (one DuckDB instance per file and
    process: a second `duckdb.connect` of the file would be refused while `con` is open),
    with `raw` as its default schema. The cursor is closed before returning, so nothing
    keeps the file open after the check.
    """
    found = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'raw' AND table_name = ? ORDER BY ordinal_position", [dataset],
    ).fetchall()
    if not found:
        return None
    columns = [r[0] for r in found]
    view = None
    if where is not None:
        view = f"gx_{dataset}"
        con.execute("CREATE SCHEMA IF NOT EXISTS refresh_state")
        con.execute(f'CREATE OR REPLACE VIEW refresh_state."{view}" AS '
                    f'SELECT * FROM raw."{dataset}" WHERE {where}')
    source = f'refresh_state."{view}"' if view else f'raw."{dataset}"'
    rows = int(con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0])
    cursors: list[duckdb.DuckDBPyConnection] = []
    # DuckDB's limit is the database's, not the cursor's: bounded for the suite's
    # aggregates (they spill past it), then put back as the caller had it.
    before = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    con.execute(f"SET memory_limit = '{GX_MEMORY_LIMIT}'")
    try:
        return _validate(con, cursors, dataset, rows, columns, today or dt.date.today(),
                         required, view)
    finally:
        if view is not None:
            con.execute(f'DROP VIEW IF EXISTS refresh_state."{view}"')
        for cursor in cursors:
            cursor.close()
        cursors.clear()
        con.execute(f"SET memory_limit = '{before}'")


def _validate(con: duckdb.DuckDBPyConnection, cursors: list[duckdb.DuckDBPyConnection],
              dataset: str, rows: int, columns: list[str], today: dt.date,
              required: bool, view: str | None = None) -> SuiteOutcome:
    _guard_pyspark_connect()
    duckdb_engine = _duckdb_engine()
    import great_expectations as gx

    started = time.perf_counter()
    spec = DATASETS[dataset]
    notes: list[str] = []
    if rows == 0 and not required:
        notes.append(f"{dataset} is empty (the source lacks it): only its columns and "
                     "types were checked")

    # SQLAlchemy keeps the creator for the engine's life (a disposed engine recreates its
    # pool with it), so it reaches `con` through a holder emptied after the suite, not a
    # closure over `con` that would keep the connection alive until exit.
    holder = {"con": con}

    def session() -> Any:
        cursor = holder["con"].cursor()
        cursors.append(cursor)
        cursor.execute("USE raw")
        return duckdb_engine.ConnectionWrapper(cursor)

    _keep_duckdb_connection()
    # GX warns on every type check that it has no dialect module for duckdb and compares
    # SQLAlchemy's generic types: exactly what `_SQL_TYPE` is written for.
    logging.getLogger("great_expectations.expectations.type_comparison").setLevel(logging.ERROR)
    context = _context()
    datasource = context.data_sources.add_sql(
        f"raw_{dataset}", connection_string="duckdb:///:memory:", kwargs={"creator": session})
    whole = f'raw."{dataset}"' if view else None
    batch_def = (datasource.add_table_asset(dataset, table_name=view or dataset,
                                            schema_name="refresh_state" if view else None)
                 .add_batch_definition_whole_table("table"))
    suite = context.suites.add(build_suite(dataset, today, required=required, whole=whole))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch_def, suite=suite))
    key_present = [k for k in spec.key if k in columns]
    try:
        result = validation.run(result_format={
            "result_format": "SUMMARY",
            "partial_unexpected_count": MAX_EXAMPLES,
            # Examples name rows by the contract key, which is how a user finds them.
            "unexpected_index_column_names": key_present,
        })
    finally:
        _close_engine(datasource)
        _release_context(context, datasource.name)
        holder.clear()

    # GX returns results in no particular order; report them in the suite's order
    # (columns first) so the first line of a failed check is the most basic problem.
    ordered = sorted(result.results, key=lambda r: (r.expectation_config.meta or {}).get("order", 0))
    failed = [_describe_failure(dataset, spec, r, set(columns), con, view)
              for r in ordered if not r.success]
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


def _close_engine(datasource: Any) -> None:
    """Close GX's kept connection and its SQLAlchemy pool now, while the DuckDB cursor
    under them is still open.

    Left to the garbage collector, SQLAlchemy's pool finalizer rolls back on a cursor
    that is already closed and raises inside the collection; on CPython 3.11.7 such a
    finalizer, run in the middle of `ast.parse`, leaves the parser's recursion counter
    off ("AST constructor recursion depth mismatch" in the next pytest rewrite or Jinja
    compile in the process).
    """
    engine = datasource.get_execution_engine()
    kept = getattr(engine, "_connection", None)
    if kept is not None:
        kept.close()
        engine._connection = None
    engine.close()
    dialect = getattr(getattr(engine, "engine", None), "dialect", None)
    if dialect is not None:
        _release_dialect(dialect)


def _release_context(context: Any, datasource_name: str) -> None:
    """Drop this suite's data source from its context once it has run.

    `gx.get_context` keeps the context it built as the process's current "project" (a
    module-level singleton that `build_suite` relies on, so it stays), and with it the
    data source, whose engine keeps the creator. The creator reaches the DuckDB
    connection only through a holder emptied after the suite (`_validate`).
    """
    context.data_sources.delete(datasource_name)


def _release_dialect(dialect: Any) -> None:
    """Let go of the DuckDB objects a SQLAlchemy dialect keeps after column reflection.

    SQLAlchemy's PostgreSQL dialect (duckdb_engine's base) memoizes its reflection queries
    with `functools.lru_cache` on methods, so the cache keys hold the dialect itself until
    the interpreter exits; the dialect's result-processor memo holds the type codes of the
    rows it read, which DuckDB 2.0 gives as `DuckDBPyType` objects. At exit those outlive
    DuckDB's module and nanobind reports each one ("nanobind: leaked ..."). `lru_cache`
    cannot drop one key, so the caches are cleared: they only hold compiled query shapes,
    rebuilt on the next reflection.
    """
    from sqlalchemy.dialects.postgresql.base import PGDialect

    memos = vars(dialect).get("_type_memos")
    if memos is not None:
        memos.clear()
    for cls in type(dialect).__mro__:
        if issubclass(cls, PGDialect):
            for member in vars(cls).values():
                if hasattr(member, "cache_clear"):
                    member.cache_clear()


@functools.cache
def _duckdb_engine() -> Any:
    """duckdb_engine, imported once, with its SQLAlchemy compile hook dropped at exit.

    Importing duckdb_engine registers `@compiles(TryCast, "duckdb")`: SQLAlchemy's
    `TryCast` class then holds a duckdb_engine function, whose globals hold DuckDB's
    connection type and, through it, the functions and type constants of DuckDB's Python
    modules. `TryCast` outlives the interpreter's last collection, so nanobind finds those
    DuckDB objects alive when DuckDB's module is freed and prints "nanobind: leaked ..."
    at exit (issue 25; `import duckdb_engine, dagster` and an undisposed
    `DagsterInstance.ephemeral()` are enough to show it). Once the interpreter exits no
    SQL is compiled any more, so the hook's entry is removed then, which releases the
    chain at its first link.
    """
    import duckdb_engine

    atexit.register(_drop_duckdb_compile_hook)
    return duckdb_engine


def _drop_duckdb_compile_hook() -> None:
    from sqlalchemy.sql.elements import TryCast

    dispatcher = TryCast.__dict__.get("_compiler_dispatcher")
    if dispatcher is not None:
        dispatcher.specs.pop("duckdb", None)


def _keep_duckdb_connection() -> None:
    """Have GX keep one SQLAlchemy connection open for DuckDB, as it does for SQLite.

    GX reads a query's rows after leaving the `with engine.connect()` block it ran in;
    with duckdb_engine the result is gone by then (`fetchall()` returns no row and every
    metric fails with IndexError). For the dialects that need it GX keeps a single
    connection for the engine's life; DuckDB is added to that list.
    """
    from great_expectations.execution_engine import sqlalchemy_execution_engine as engine

    kept = engine._PERSISTED_CONNECTION_DIALECTS
    if _DuckDBDialect.DUCKDB not in kept:
        engine._PERSISTED_CONNECTION_DIALECTS = (*kept, _DuckDBDialect.DUCKDB)


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


def _describe_failure(dataset: str, spec: Dataset, r: Any, present: set[str],
                      con: duckdb.DuckDBPyConnection, view: str | None = None) -> dict[str, Any]:
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

    if meta.get("query") in ("key", "id"):
        # GX's SUMMARY result holds only the count; the examples are the query's first
        # rows, read from the same table.
        whole = f'raw."{dataset}"'
        query = _unexpected_query(spec, meta["query"], column,
                                  table=f'refresh_state."{view}"' if view else whole,
                                  whole=whole if view else None)
        examples = con.sql(f"{query} LIMIT {MAX_EXAMPLES}").pl().to_dicts()
        # The offending rows (for the key: the rows sharing a repeated key) counted
        # here, since GX's result counts at most the rows it fetched.
        total = "sum(n_rows)" if meta["query"] == "key" else "count(*)"
        count = con.execute(f"SELECT {total} FROM ({query})").fetchall()[0][0]
        res = {"unexpected_count": count, "partial_unexpected_index_list": examples}
    if "unexpected_count" in res:
        count = int(res["unexpected_count"])
        # Without key columns GX gives bare 0-based positions; number them as the landing
        # gate does (1-based data rows).
        rows = [r if isinstance(r, dict) else {"row": int(r) + 1}
                for r in _plain(res.get("partial_unexpected_index_list") or [])]
        value_col = kwargs.get("column") or column
        show_value = meta.get("show_value", True)
        if not rows:
            # SQL column-set expectations list the offending key values as dicts.
            rows = [v if isinstance(v, dict) else {value_col: v}
                    for v in _plain(res.get("partial_unexpected_list") or [])]
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
