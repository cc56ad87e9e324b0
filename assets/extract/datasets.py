"""One extract asset per canonical dataset, landing in `raw`, each with a blocking GX check."""


import datetime as dt

import dagster as dg
import polars as pl

from assets import DBT_ASSETS_NAME, WRITER_POOL
from selloff.calendars import calendar_frame
from selloff.contracts import DATASETS, empty_frame
from selloff.markdown import markdown_table
from selloff.markets import REGISTRY, market_of_sql
from selloff.preload import preload
from selloff.quality.gx_suites import run_suite_on_table
from selloff.refresh_state import content_hash, record_landing
from selloff.resources import RefreshWindow, SourceResource, WarehouseResource
from selloff.settings import SettingsError
from selloff.sources.base import window_rows
from selloff.sources.live.errors import LiveConfigError, SourceUnreachable
from selloff.validation import DataContractError
from selloff.warehouse import replace_table_parts

CALENDAR_END = dt.date(2027, 12, 31)

# The daily datasets: (date column, `<MARKET>:<code>` id column or None). A windowed refresh
# replaces only their rows of the window (and of its markets); the others are reference
# data and filings, small enough to replace whole on every run.
DAILY_DATASETS: dict[str, tuple[str, str | None]] = {
    "prices_daily": ("trade_date", "security_id"),
    "index_levels_daily": ("trade_date", "index_id"),
    "fund_flows_daily": ("trade_date", "entity_id"),
    "fx_rates_daily": ("trade_date", None),  # one fixing per currency serves every market
    "index_valuation_daily": ("trade_date", "index_id"),
}


def refresh_window_metadata(first: dt.date | None, last: dt.date | None,
                            markets: tuple[str, ...]) -> dict[str, dg.MetadataValue]:
    """The days (and markets) a run replaced, as timestamps the catalog can sort and plot;
    a full refresh has none (it replaced everything)."""
    if first is None or last is None:
        return {"refresh_scope": dg.MetadataValue.text("full")}
    def midnight(d: dt.date) -> float:
        return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp()
    return {"refresh_scope": dg.MetadataValue.text("window"),
            "window_start": dg.MetadataValue.timestamp(midnight(first)),
            "window_end": dg.MetadataValue.timestamp(midnight(last)),
            "window_markets": dg.MetadataValue.text(", ".join(markets) or "all")}


def _preview(df: pl.DataFrame, n: int = 5) -> dg.MetadataValue:
    return dg.MetadataValue.md(markdown_table(df, max_rows=n))


def _runs_dbt_in_process(context: dg.AssetExecutionContext,
                         warehouse: WarehouseResource) -> bool:
    """Whether this run's plan has the dbt step, run in this process (the DuckDB target;
    Spark's dbt is a subprocess)."""
    if warehouse.settings().is_spark:
        return False
    steps = context.run.step_keys_to_execute
    if steps is not None:
        return DBT_ASSETS_NAME in steps
    return context.job_def.graph.has_node_named(DBT_ASSETS_NAME)


def _extract_asset(dataset: str) -> dg.AssetsDefinition:
    spec = DATASETS[dataset]
    daily = DAILY_DATASETS.get(dataset)

    @dg.asset(
        key=["raw", dataset],
        group_name="extract",
        kinds={"duckdb", "polars"},
        pool=WRITER_POOL,
        retry_policy=dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL,
                                    jitter=dg.Jitter.PLUS_MINUS),
        description=f"Canonical `{dataset}` (key {', '.join(spec.key)}) from the configured source."
        + (f" Daily by {daily[0]}: a run with a refresh window replaces only its days."
           if daily else " Replaced whole on every run."),
    )
    def _extract(context: dg.AssetExecutionContext, source: SourceResource,
                 warehouse: WarehouseResource, refresh: RefreshWindow) -> dg.MaterializeResult:
        # The landing gate raises DataContractError naming dataset, row and rule; nothing is
        # written then, so what had landed before stays intact. Neither bad input nor an
        # unreachable service gets better by retrying the step: fail at once, clearly.
        window = refresh.dates() if daily else None
        # This asset's blocking GX check, and on DuckDB the dbt step, run later in this
        # process: their imports overlap the landing (selloff/preload.py).
        preload(dbt=_runs_dbt_in_process(context, warehouse))
        try:
            src = source.make_source()
            # A windowed run lands only the window's rows (of its markets): the source's
            # everything is cut down before the landing gate, which then checks only them.
            keep = (window_rows(daily[0], daily[1], *window, tuple(refresh.markets))
                    if window is not None and daily is not None else None)
            parts = src.load_parts(dataset, keep)
            present = parts is not None
            if not present:
                context.log.warning(f"{src.name} has no {dataset}: landing an empty table; "
                                    "assets that need it report insufficient_data")
                parts = iter([empty_frame(dataset).with_columns(pl.lit(src.name).alias("source"))])
            if window is None or daily is None:
                # A full refresh lands the source's parts (the demo market: slices of at
                # most PART_ROWS of one market) through a staging table swapped in at the
                # end: memory is bounded by the largest part, not by the dataset.
                with warehouse.connect() as con:
                    # Reference data is re-landed whole on every run: whether its content
                    # changed decides whether the analytics recompute every episode
                    # (selloff.refresh_state), so it is hashed before and after.
                    before = content_hash(con, "raw", dataset) if daily is None else None
                    rows, df = replace_table_parts(con, "raw", dataset, parts)
                    after = content_hash(con, "raw", dataset) if daily is None else None
                    changed = daily is not None or before != after
                    if changed:
                        record_landing(con, context.run_id, dataset, None)
                scope, first, last = "all", None, None
            else:
                df = pl.concat(list(parts))
                markets = tuple(refresh.markets)
                rows = warehouse.write_window("raw", dataset, df, daily[0], *window,
                                              entity_column=daily[1], markets=markets)
                first, last = window
                changed = True
                with warehouse.connect() as con:
                    # The daily facts are rebuilt from the window's first day on.
                    record_landing(con, context.run_id, dataset, first, last,
                                   markets if daily[1] else ())
                scope = f"{first} .. {last}" + (f" ({', '.join(markets)})" if markets else "")
            total = warehouse.row_count("raw", dataset)
        except (DataContractError, SourceUnreachable, LiveConfigError, SettingsError) as exc:
            raise dg.Failure(description=f"{dataset}: {exc}", allow_retries=False) from exc
        return dg.MaterializeResult(
            metadata={
                # The catalog's standard keys: the table's size after the run (charted
                # run over run), what this run replaced, and the days it replaced.
                "dagster/row_count": total,
                "rows_replaced": rows,
                "content_changed": changed,
                **({"content_hash": after} if daily is None else {}),
                **refresh_window_metadata(first, last, tuple(refresh.markets) if daily else ()),
                "window": scope,
                "source": src.name,
                "synthetic": src.synthetic,
                "dataset_present": present,
                "preview": _preview(df),
            }
        )

    return _extract


def window_rows_sql(dataset: str, first: dt.date, last: dt.date,
                    markets: tuple[str, ...]) -> str:
    """SQL selecting the rows of raw.`dataset` that a windowed landing replaced (the
    window's days, of its markets when the dataset has a market id): what its GX suite
    checks in a windowed run."""
    date_column, id_column = DAILY_DATASETS[dataset]
    where = f'"{date_column}" BETWEEN DATE \'{first.isoformat()}\' AND DATE \'{last.isoformat()}\''
    if markets and id_column:
        quoted = ", ".join("'" + m.replace("'", "''") + "'" for m in markets)
        where += f' AND {market_of_sql(chr(34) + id_column + chr(34))} IN ({quoted})'
    return where


def _gx_check(dataset: str) -> dg.AssetChecksDefinition:
    daily = DAILY_DATASETS.get(dataset)

    @dg.asset_check(asset=dg.AssetKey(["raw", dataset]), name="gx_suite", blocking=True,
                    pool=WRITER_POOL,
                    description=f"Great Expectations suite for raw.{dataset}, built from its "
                    "contract" + (": in a windowed run, on the rows the window replaced (their "
                                  "keys checked unique against the whole table)." if daily
                                  else "."))
    def _check(warehouse: WarehouseResource, refresh: RefreshWindow) -> dg.AssetCheckResult:
        # As SQL inside the build file: no copy of the table in this process. The writer
        # pool keeps other writers off the file meanwhile; the connection is a plain one,
        # like every other in this process (DuckDB refuses a second configuration of the
        # same file in one process), and GX works on a cursor of it. A windowed run
        # landed only the window's rows of a daily dataset: the rest was checked when
        # it landed, so only those rows are checked now.
        window = refresh.dates() if daily else None
        where = (window_rows_sql(dataset, *window, tuple(refresh.markets))
                 if window is not None else None)
        with warehouse.connect() as con:
            outcome = run_suite_on_table(con, dataset, where=where)
        if outcome is None:
            return dg.AssetCheckResult(passed=False, description=f"raw.{dataset} does not exist")
        return dg.AssetCheckResult(
            passed=outcome.success,
            description=outcome.description,
            metadata={
                "expectations_evaluated": outcome.evaluated,
                "expectations_failed": len(outcome.failed),
                "failures": dg.MetadataValue.json(outcome.failed[:20]),
                "rows": outcome.rows,
                "checked": "window rows" if where else "whole table",
                "seconds": outcome.seconds,
            },
        )

    return _check


@dg.asset(key=["raw", "trading_calendar"], group_name="extract", kinds={"duckdb"},
          pool=WRITER_POOL,
          description="Trading days per market from exchange_calendars ("
          + ", ".join(f"{m.code} {m.calendar}" for m in REGISTRY) + ").")
def trading_calendar(context: dg.AssetExecutionContext,
                     warehouse: WarehouseResource) -> dg.MaterializeResult:
    df = calendar_frame(end=CALENDAR_END)
    with warehouse.connect() as con:
        before = content_hash(con, "raw", "trading_calendar")
    rows = warehouse.write("raw", "trading_calendar", df)
    with warehouse.connect() as con:
        after = content_hash(con, "raw", "trading_calendar")
        if before != after:
            record_landing(con, context.run_id, "trading_calendar", None)
    return dg.MaterializeResult(metadata={"dagster/row_count": rows, "rows_replaced": rows,
                                          "content_changed": before != after,
                                          **refresh_window_metadata(None, None, ()),
                                          "markets": sorted(set(df["market"]))})


extract_assets: list[dg.AssetsDefinition] = [_extract_asset(d) for d in DATASETS] + [trading_calendar]


extract_checks: list[dg.AssetChecksDefinition] = [_gx_check(d) for d in DATASETS]
