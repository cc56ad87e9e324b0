{#
  Market cap per security and trading day, point in time:
    market_cap_local = close (as traded) x shares (as-of: latest count known by that day)
    market_cap_usd   = market_cap_local x usd_per_unit (as-of fixing of the price currency)
  A missing share count or FX rate leaves the figure null (never defaulted).
  return_1d and mcap_change_usd_1d compare with the security's previous price row.
  Incremental (macros/incremental_window.sql): a windowed build reads prices and rates
  from min_date on, and the row before the window from the table itself.
#}
with prices as (

    -- price rows with the as-of share count (int_shares_outstanding_asof_daily)
    select security_id, trade_date, close, adj_close, currency, shares
    from {{ ref('int_shares_outstanding_asof_daily') }}
    {{ incremental_since('trade_date') }}

),

joined as (

    select
        p.security_id,
        p.trade_date,
        {{ market_of('p.security_id') }} as market,
        p.currency,
        p.close,
        p.adj_close,
        p.shares,
        p.close * p.shares as market_cap_local,
        fx.usd_per_unit,
        p.close * p.shares * fx.usd_per_unit as market_cap_usd
    from prices as p
    {{ to_usd('p.currency', 'p.trade_date') }}

),

series as (

    select *, false as is_previous from joined
    {%- if is_windowed() %}
    union all
    -- the last row before the window: only the lag() below reads it
    select
        security_id, trade_date, null as market, null as currency, close,
        null as adj_close, null as shares, null as market_cap_local, null as usd_per_unit,
        market_cap_usd, true as is_previous
    from ({{ previous_rows('security_id', 'trade_date', ['close', 'market_cap_usd']) }}) as p
    {%- endif %}

),

final as (

    select
        *,
        close / lag(close) over (partition by security_id order by trade_date) - 1 as return_1d,
        market_cap_usd
            - lag(market_cap_usd) over (partition by security_id order by trade_date)
            as mcap_change_usd_1d
    from series

)

select
    security_id,
    trade_date,
    market,
    currency,
    close,
    adj_close,
    shares,
    market_cap_local,
    usd_per_unit,
    market_cap_usd,
    return_1d,
    mcap_change_usd_1d
from final
where not is_previous
