"""Daily partitions of the time-series datasets and the daily fact models (DESIGN §7)."""

import datetime as dt

import dagster as dg

# Before any data the project covers; a run over the whole range loads everything anyway
# (see `is_full_range`), so data older than this is never cut off.
PARTITIONS_START = "2020-01-01"

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, end_offset=1)

# One run for a whole backfill range: one extract per dataset and one dbt invocation,
# instead of a run (and a dbt start-up) per day.
single_run = dg.BackfillPolicy.single_run()

TIME_SERIES_DATASETS = {
    "prices_daily": "trade_date",
    "index_levels_daily": "trade_date",
    "fund_flows_daily": "trade_date",
    "fx_rates_daily": "trade_date",
    "index_valuation_daily": "trade_date",
}


def full_range() -> dg.PartitionKeyRange:
    keys = daily_partitions.get_partition_keys()
    return dg.PartitionKeyRange(keys[0], keys[-1])


def is_full_range(key_range: dg.PartitionKeyRange) -> bool:
    """The whole partition set: a full refresh, which replaces tables outright.

    A run launched just before midnight may end after it, when one more key exists.
    """
    keys = daily_partitions.get_partition_keys()
    return key_range.start == keys[0] and key_range.end in keys[-2:]


def window_dates(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date] | None:
    """[first, last] day of the run's partition range, or None for a full refresh."""
    if not context.has_partition_key_range and not context.has_partition_key:
        return None
    if is_full_range(context.partition_key_range):
        return None
    window = context.partition_time_window
    return window.start.date(), (window.end - dt.timedelta(days=1)).date()


def full_range_tags() -> dict[str, str]:
    """Run tags that launch a single run over every partition (what `make run` does)."""
    key_range = full_range()
    return range_tags(key_range.start, key_range.end)


def range_tags(start: str, end: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end}
