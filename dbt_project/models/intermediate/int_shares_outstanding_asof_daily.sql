{{ config(materialized="view") }}

{#
  As-of share count for every security and trading day with a price (point in time).

  A count is usable from its "known_from" date: the later of its as_of_date and its
  filed_date (as_of_date alone when the source gives no filed_date). On a trading day the
  count used is, among the counts already usable, the one with the latest as_of_date.
  Nothing known yet -> null (never defaulted).

  Per security and as-of date the count is the 'total' share class when one is given,
  else the sum of the classes given for that date.

  The per-day lookup is a single as-of join on a small timeline: for each known_from date,
  the latest as_of_date usable by then (running max), so a late-filed older count never
  overrides a newer count that was already known.

  Counts that int_shares_outstanding_glitches holds back (a count that jumps and reverts,
  a split-like step the price does not show) are skipped, so the last good count stays in
  force over them and a vendor glitch is never booked as a shares channel.

  One row per price row, carrying the price columns fct_market_cap_daily needs, so the
  mart reads the ~millions of price rows once (no second join over them). A view: the
  as-of join runs once, inside fct_market_cap_daily.
#}
with prices as (

    select security_id, trade_date, close, adj_close, currency
    from {{ ref('stg_prices_daily') }}

),

held_back as (

    select security_id, as_of_date
    from {{ ref('int_shares_outstanding_glitches') }}
    where held_back

),

share_rows as (

    select
        r.security_id,
        r.as_of_date,
        r.share_class,
        r.shares,
        case
            when r.filed_date is null or r.filed_date < r.as_of_date then r.as_of_date
            else r.filed_date
        end as known_from
    from {{ ref('stg_shares_outstanding') }} as r
    left join held_back as h
        on h.security_id = r.security_id and h.as_of_date = r.as_of_date
    where h.security_id is null

),

counts as (

    select
        security_id,
        as_of_date,
        {{ collapsed_share_count() }} as shares,
        case
            when max(case when share_class = 'total' then 1 else 0 end) = 1
                then max(case when share_class = 'total' then known_from end)
            else max(known_from)
        end as known_from
    from share_rows
    group by security_id, as_of_date

),

running_best as (

    select
        security_id,
        known_from,
        max(as_of_date) over (
            partition by security_id
            order by known_from, as_of_date
            rows between unbounded preceding and current row
        ) as best_as_of_date
    from counts

),

timeline as (

    -- one row per security and known_from date: the count in force from that date on
    select
        b.security_id,
        b.known_from,
        b.best_as_of_date as shares_as_of_date,
        c.shares
    from (
        select security_id, known_from, max(best_as_of_date) as best_as_of_date
        from running_best
        group by security_id, known_from
    ) as b
    inner join counts as c
        on c.security_id = b.security_id
       and c.as_of_date = b.best_as_of_date

),

final as (

    select
        p.security_id,
        p.trade_date,
        p.close,
        p.adj_close,
        p.currency,
        s.shares,
        s.shares_as_of_date,
        s.known_from as shares_known_from
    from prices as p
    {{ asof_join('timeline', 's', left_alias='p', by=['security_id'],
                 left_time='trade_date', right_time='known_from') }}

)

select * from final
