"""Data-quality findings: input that is valid row by row but suspicious (DESIGN §8: findings,
not silence). The detection is SQL (DuckDB) over the warehouse frames, so it reads like the
dbt models it sits beside and runs the same on a Spark-built warehouse (the frames are
read by the warehouse resource, then queried in an in-memory DuckDB).

Kinds and what is done about them:
- shares_jump_reverted, shares_split_without_price_move: from the dbt model
  int_shares_outstanding_glitches; the as-of share count holds the last good count over
  them, so the decomposition books no shares channel for them.
- shares_step_unconfirmed: a lasting step the price does not explain (a merger, an
  issuance or a vendor basis change): recorded, count used as given.
- price_spike_reverted: a close more than ln(1.25) away from the day before in logs
  (+25 % or -20 %) that is back within 5 % within three sessions: recorded (the close is as the vendor gave it).
- stale_close: the same close on five or more sessions in a row (a suspension or a stale
  feed): recorded.
- fx_outlier: a fixing >3 % away from the day before and back within 1 % the next day:
  recorded (an inverted or implausible rate is refused at the gate instead).
A real split (price and count move together by the inverse ratio) is no finding.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from selloff.analytics.tables import FINDINGS_SCHEMA

PRICE_SPIKE = 0.25         # a day's move that is a spike if it comes back
PRICE_REVERT = 0.05        # back within this of the pre-spike close, within 3 sessions
STALE_SESSIONS = 5         # identical closes in a row
FX_JUMP = 0.03             # these currencies rarely move 3 % in a day, and never back next day
FX_REVERT = 0.01

_SHARES = """
select
    'shares_outstanding' as dataset,
    security_id as entity,
    episode_from as date_from,
    max(as_of_date) as date_to,
    'shares_' || glitch_kind as kind,
    case glitch_kind
        when 'jump_reverted' then
            printf('count %.0f vs %.0f before (%+.1f %%), back near it on %s',
                   min(shares), any_value(reference_shares),
                   100 * (min(shares) / any_value(reference_shares) - 1), any_value(episode_to))
        when 'split_without_price_move' then
            printf('count x%.3f on %s while the price moved x%.3f: prices look split-adjusted,'
                   ' counts are not', min(shares) / any_value(reference_shares), episode_from,
                   any_value(price_ratio))
        else
            printf('count x%.3f on %s, price x%.3f around it: not a split the price shows',
                   min(shares) / any_value(reference_shares), episode_from, any_value(price_ratio))
    end as detail,
    case
        when bool_or(held_back) then
            printf('held last good count %.0f (the decomposition books no shares channel)',
                   any_value(reference_shares))
        else 'recorded only: count used as given'
    end as action
from glitches
group by security_id, glitch_kind, episode_from
"""

# One window pass over every close (one sort by security and date) finds both price
# kinds: a spike needs the close before and the three after; a stale run of n >= S
# (STALE_SESSIONS) sessions shows as the n - S + 1 rows whose close equals each of the
# S - 1 before it (`fifth_same`), consecutive in row number, so grouping those few rows
# (an island of consecutive row numbers) gives the run: it starts S - 1 rows before its
# first such row and ends on its last. Only the flagged rows leave the window pass.
_PRICES = f"""
with p as (
    select
        security_id, trade_date, close,
        lag(close) over w as prev_close,
        lead(close, 1) over w as c1, lead(close, 2) over w as c2, lead(close, 3) over w as c3,
        lead(trade_date, 1) over w as d1, lead(trade_date, 2) over w as d2,
        lag(trade_date, {STALE_SESSIONS - 1}) over w as run_start,
        row_number() over w as rn,
        {" and ".join(f"close = lag(close, {k}) over w" for k in range(1, STALE_SESSIONS))}
            as fifth_same
    from prices
    window w as (partition by security_id order by trade_date)
),
flagged as materialized (
    select *,
        case when prev_close > 0 and close > 0
             then abs(ln(close / prev_close)) > ln(1 + {PRICE_SPIKE}) else false end as spike
    from p
    where fifth_same
       or case when prev_close > 0 and close > 0
               then abs(ln(close / prev_close)) > ln(1 + {PRICE_SPIKE}) else false end
),
spikes as (
    select *,
        case
            when abs(ln(c1 / prev_close)) <= ln(1 + {PRICE_REVERT}) then trade_date
            when abs(ln(c2 / prev_close)) <= ln(1 + {PRICE_REVERT}) then d1
            when abs(ln(c3 / prev_close)) <= ln(1 + {PRICE_REVERT}) then d2
        end as last_spike_day
    from flagged
    where spike
),
stale as (
    select *, rn - row_number() over (partition by security_id order by rn) as island
    from flagged
    where fifth_same
)
select
    'prices_daily' as dataset, security_id as entity, trade_date as date_from,
    last_spike_day as date_to, 'price_spike_reverted' as kind,
    printf('close %g vs %g the session before (%+.1f %%), back within %.0f %% after',
           close, prev_close, 100 * (close / prev_close - 1), {100 * PRICE_REVERT}) as detail,
    'recorded only: close kept as given' as action
from spikes
where last_spike_day is not null
union all
select
    'prices_daily' as dataset, security_id as entity, min(run_start) as date_from,
    max(trade_date) as date_to, 'stale_close' as kind,
    printf('close %g on %d sessions in a row', any_value(close),
           max(rn) - min(rn) + {STALE_SESSIONS}) as detail,
    'recorded only: a suspension or a stale feed' as action
from stale
group by security_id, island
"""

_FX = f"""
with f as (
    select currency, rate_date, usd_per_unit,
        lag(usd_per_unit) over w as prev_rate, lead(usd_per_unit) over w as next_rate
    from fx
    window w as (partition by currency order by rate_date)
)
select
    'fx_rates_daily' as dataset, currency as entity, rate_date as date_from,
    rate_date as date_to, 'fx_outlier' as kind,
    printf('usd_per_unit %g vs %g the day before and %g the day after',
           usd_per_unit, prev_rate, next_rate) as detail,
    'recorded only: rate kept as given' as action
from f
where abs(ln(usd_per_unit / prev_rate)) > ln(1 + {FX_JUMP})
  and abs(ln(next_rate / prev_rate)) <= ln(1 + {FX_REVERT})
"""


def findings_from(con: duckdb.DuckDBPyConnection, inputs: set[str]) -> pl.DataFrame:
    """The findings table (FINDINGS_SCHEMA), sorted by dataset, kind, entity, date, from
    the relations `glitches` (staging.int_shares_outstanding_glitches), `prices`
    (security_id, trade_date, close) and `fx` (currency, rate_date, usd_per_unit) that
    `con` has, named in `inputs`. The window functions run in DuckDB, where the data is:
    only the findings reach polars."""
    parts: list[pl.DataFrame] = []
    for name, queries in (("glitches", (_SHARES,)), ("prices", (_PRICES,)),
                          ("fx", (_FX,))):
        if name in inputs:
            parts.extend(con.sql(q).pl() for q in queries)
    out = pl.DataFrame(schema=FINDINGS_SCHEMA)
    for part in parts:
        out = pl.concat([out, part.select(
            [pl.col(c).cast(t) for c, t in FINDINGS_SCHEMA.items()])])
    return out.sort("dataset", "kind", "entity", "date_from")


def data_quality_findings(glitches: pl.DataFrame | None, prices: pl.DataFrame | None,
                          fx: pl.DataFrame | None) -> pl.DataFrame:
    """`findings_from` on frames: `glitches` is staging.int_shares_outstanding_glitches,
    `prices` has (security_id, trade_date, close), `fx` has (currency, rate_date,
    usd_per_unit); an absent or empty input gives no findings of its kinds."""
    with duckdb.connect() as con:
        present = set()
        for name, frame in (("glitches", glitches), ("prices", prices), ("fx", fx)):
            if frame is not None and frame.height:
                con.register(name, frame)
                present.add(name)
        return findings_from(con, present)


def price_cuts(con: duckdb.DuckDBPyConnection, changed_from: dt.date,
               window_start: dt.date, source: str = "prices") -> pl.DataFrame:
    """Where each security's price findings may have changed, when the closes changed
    only from `changed_from` on (a windowed refresh): (security_id, cut, read_from).

    Findings of a security dated before its `cut` are as they were: with r_-k its k-th
    close before `changed_from` (the same before and after the change),

        cut = min(r_-4, start of the run of equal closes holding r_-1),

    since a spike at t reads the closes up to three sessions after t (t < r_-4 reads
    none from `changed_from` on) and a stale run ending before r_-1's run ends where it
    did. Findings from `cut` on are recomputed from the closes from `read_from` on (the
    session before `cut`, which a spike's and a run's first day compare with).

    Only the closes from `window_start` (before `changed_from`) are read, from the
    relation `source` (security_id, trade_date, close): a security with fewer than five
    of them before `changed_from`, or whose run holding r_-1 may reach back beyond them
    (no change of close among them), or with no close before `changed_from` in them,
    gets a null cut: recompute from its whole history. A security with no close from
    `window_start` on does not appear (its findings are all dated before it: none can
    have changed unless its closes from `changed_from` on were removed; the caller
    recomputes those whose kept findings reach that far)."""
    return con.sql(f"""
        with win as (
            select security_id, trade_date,
                lag(trade_date) over w as prev_date,
                coalesce(close = lag(close) over w, false) as same_as_prev,
                row_number() over w as rn
            from {source}
            where trade_date >= DATE '{window_start.isoformat()}'
            window w as (partition by security_id order by trade_date)
        ),
        before as (
            select *, row_number() over (partition by security_id order by trade_date desc)
                as back
            from win
            where trade_date < DATE '{changed_from.isoformat()}'
        ),
        cuts as (
            select security_id,
                -- r_-4 and the close before it are read; least() skips nulls, so no
                -- change of close among the rows must give null by itself.
                case when count(*) >= 5
                      and count(*) filter (where not same_as_prev and rn > 1) > 0
                     then least(max(trade_date) filter (where back = 4),
                                max(trade_date) filter (where not same_as_prev and rn > 1))
                end as cut
            from before
            group by security_id
        ),
        ids as (select distinct security_id from win)
        select ids.security_id, cuts.cut, win.prev_date as read_from
        from ids
        left join cuts on cuts.security_id = ids.security_id
        left join win on win.security_id = ids.security_id and win.trade_date = cuts.cut
        order by ids.security_id
    """).pl()
