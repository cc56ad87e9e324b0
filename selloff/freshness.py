"""Is each market's newest session in the data? Deadlines from the market registry.

A market's session is due once its local close + refresh delay + grace has passed
(`Market.fresh_by`, selloff/markets.py), on the market's own exchange calendar
(selloff/calendars.py): a holiday or a weekend has no session, so it is never late.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import duckdb

from selloff.calendars import trading_days
from selloff.markets import market, market_of_sql

# Sessions further back than this are not searched for the due one: no exchange in the
# registry closes for longer (Golden Week, Lunar New Year and National Day are < 10 days).
LOOKBACK = dt.timedelta(days=21)


def session_deadline(code: str, session: dt.date) -> dt.datetime:
    """The instant (UTC) after which `session` of market `code` is late."""
    m = market(code)
    local = dt.datetime.combine(session, m.fresh_by, tzinfo=ZoneInfo(m.timezone))
    return local.astimezone(dt.UTC)


def due_session(code: str, now: dt.datetime) -> dt.date | None:
    """The newest session of `code` whose deadline has passed at `now` (aware datetime);
    None when the calendar knows no session in the LOOKBACK before it."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local_today = now.astimezone(ZoneInfo(market(code).timezone)).date()
    for session in reversed(trading_days(code, local_today - LOOKBACK, local_today)):
        if session_deadline(code, session) <= now:
            return session
    return None


@dataclass(frozen=True)
class Freshness:
    market: str
    newest: dt.date | None  # newest session of the market in the data
    due: dt.date | None  # newest session whose deadline has passed at `now`
    now: dt.datetime

    @property
    def tracked(self) -> bool:
        """A market with no rows at all is not in this source: nothing to be late with."""
        return self.newest is not None

    @property
    def late(self) -> bool:
        return self.tracked and self.due is not None and self.newest < self.due

    @property
    def missing_sessions(self) -> int:
        if not self.late:
            return 0
        return len(trading_days(self.market, self.newest + dt.timedelta(days=1), self.due))

    def describe(self, dataset: str) -> str:
        m = market(self.market)
        if not self.tracked:
            return f"{dataset}: no {self.market} rows in this source, not tracked"
        if self.due is None:
            return f"{dataset}: {self.market} newest {self.newest}; no {m.calendar} session due"
        deadline = f"{m.fresh_by:%H:%M} {m.timezone}"
        if self.late:
            return (f"{dataset}: {self.market} is late: newest session {self.newest}, but "
                    f"{self.due} was due by {self.due} {deadline} "
                    f"({self.missing_sessions} {m.calendar} session(s) missing; "
                    f"checked at {self.now:%Y-%m-%d %H:%M} UTC)")
        return (f"{dataset}: {self.market} fresh: newest session {self.newest}, due "
                f"{self.due} (deadline {deadline}; checked at {self.now:%Y-%m-%d %H:%M} UTC)")


def market_freshness(code: str, newest: dt.date | None, now: dt.datetime) -> Freshness:
    return Freshness(market=code, newest=newest, due=due_session(code, now), now=now)


def newest_by_market(con: duckdb.DuckDBPyConnection, table: str, date_column: str,
                     id_column: str) -> dict[str, dt.date] | None:
    """Newest `date_column` per market (the id's prefix) in `table` (schema-qualified,
    trusted names); None when the table does not exist."""
    schema, name = table.split(".")
    exists = con.execute("SELECT count(*) FROM information_schema.tables "
                         "WHERE table_schema = ? AND table_name = ?", [schema, name]).fetchall()
    if not exists[0][0]:
        return None
    rows = con.execute(f"SELECT {market_of_sql(id_column)} AS market, max({date_column}) "
                       f"FROM {table} GROUP BY 1").fetchall()
    return {m: d for m, d in rows if m is not None and d is not None}


def replay_now(newest: dict[str, dt.date]) -> dt.datetime | None:
    """The clock of a replayed source (demo, snapshot): the end of its newest day, UTC.

    Every registered market's deadline falls inside its session's UTC day, so at that
    instant each market's newest session up to that day is due: a market that lacks it
    is late, a market whose exchange was closed that day is not."""
    if not newest:
        return None
    last = max(newest.values())
    return dt.datetime.combine(last, dt.time(23, 59, 59), tzinfo=dt.UTC)
