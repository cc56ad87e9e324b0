"""One schedule per market after its close, in its own time zone; a filings schedule.

Each market schedule runs the refresh job with its refresh window set to that local day
and that market: the day's rows of that market are replaced in `raw`, and the daily facts
are rebuilt from that day on. On a day the exchange is closed (the calendar decides) it
skips with the reason.
"""

import datetime as dt
from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from selloff.calendars import MARKET_TIMEZONES, is_trading_day


@dataclass(frozen=True)
class MarketClose:
    market: str
    cron: str  # local time, weekdays: half an hour after the close, for late prints

    @property
    def timezone(self) -> str:
        return MARKET_TIMEZONES[self.market]


MARKET_CLOSES = (
    MarketClose("US", "30 16 * * 1-5"),  # NYSE/Nasdaq close 16:00 New York
    MarketClose("CN", "30 15 * * 1-5"),  # SSE/SZSE close 15:00 Shanghai
    MarketClose("KR", "0 16 * * 1-5"),   # KRX close 15:30 Seoul
    MarketClose("JP", "0 16 * * 1-5"),   # TSE close 15:30 Tokyo (since Nov 2024)
)


def _market_schedule(close: MarketClose, job: UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"daily_{close.market.lower()}_after_close",
        cron_schedule=close.cron,
        execution_timezone=close.timezone,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"{close.market}: that day's session, after the close ({close.timezone}).",
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        local_day: dt.date = context.scheduled_execution_time.date()
        if not is_trading_day(close.market, local_day):
            return dg.SkipReason(f"{local_day} is not a trading day in {close.market}")
        return dg.RunRequest(
            run_key=f"{close.market}:{local_day.isoformat()}",
            run_config=refresh_window_config(local_day, local_day, (close.market,)),
            tags={"selloff/market": close.market, "selloff/window": local_day.isoformat()},
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
    return [*(_market_schedule(c, jobs["refresh"]) for c in MARKET_CLOSES), filings]
