"""One schedule per market of the registry (selloff/markets.py) after its close, in its
own time zone; a filings schedule.

Each market schedule runs the market_refresh job (the refresh without the filings, which
have their own schedule) with its refresh window set to that local day and that market:
the day's rows of that market are replaced in `raw`, and the daily facts are rebuilt from
that day on. On a day the exchange is closed (the calendar decides) it
skips with the reason.
"""

import datetime as dt

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from selloff.calendars import is_trading_day
from selloff.markets import REGISTRY, Market


def _market_schedule(market: Market, job: UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"daily_{market.code.lower()}_after_close",
        cron_schedule=market.cron,
        execution_timezone=market.timezone,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"{market.code}: that day's session, {market.refresh_time:%H:%M} "
        f"{market.timezone} (close {market.close:%H:%M} + "
        f"{market.refresh_delay.total_seconds() / 60:.0f} min).",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        local_day: dt.date = context.scheduled_execution_time.date()
        if not is_trading_day(market.code, local_day):
            return dg.SkipReason(f"{local_day} is not a trading day in {market.code}")
        return dg.RunRequest(
            run_key=f"{market.code}:{local_day.isoformat()}",
            run_config=refresh_window_config(local_day, local_day, (market.code,)),
            tags={"selloff/market": market.code, "selloff/window": local_day.isoformat()},
        )

    return _schedule


def refresh_window_config(first: dt.date, last: dt.date,
                          markets: tuple[str, ...] = ()) -> dict:
    """Run config that sets the `refresh` resource: the days (and markets) a run refreshes."""
    return {"resources": {"refresh": {"config": {
        "start": first.isoformat(), "end": last.isoformat(), "markets": list(markets)}}}}


def build_schedules(jobs: dict[str, UnresolvedAssetJobDefinition]) -> list[dg.ScheduleDefinition]:
    filings = dg.ScheduleDefinition(
        name="filings_daily",
        cron_schedule="0 7 * * 1-5",
        execution_timezone="America/New_York",
        job=jobs["filings_refresh"],
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Filings (fundamentals, share counts) each weekday morning before the US "
        "open; the marts and analytics follow by their automation conditions.",
    )
    return [*(_market_schedule(m, jobs["market_refresh"]) for m in REGISTRY), filings,
            *(_freshness_schedule(m, jobs["freshness"]) for m in REGISTRY)]


def _freshness_schedule(market: Market, job: UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    # At the deadline, whether or not the market's refresh ran: a stopped refresh or a
    # session that never arrived turns the market's freshness checks red (and alerts).
    return dg.ScheduleDefinition(
        name=f"freshness_{market.code.lower()}",
        cron_schedule=market.freshness_cron,
        execution_timezone=market.timezone,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"{market.code}: freshness checks at {market.fresh_by:%H:%M} "
        f"{market.timezone}, the deadline of that day's session.",
    )
