{#
  Trailing multiples per security and trading day, point in time: each trading day takes
  the TTM row of the latest knowledge date on or before it (int_fundamentals_ttm), so a
  filing counts from its filed_date and a restatement replaces the earlier figure only
  from its own filed_date.

  TTM figures are expressed in the market cap's currency (the price currency): when the
  reporting currency differs (an ADR of a foreign filer), they are converted at that day's
  as-of rates, and stay null if a rate is missing.
  pe_ttm = market_cap_local / net_income_ttm, null when net income TTM <= 0;
  ps_ttm = market_cap_local / revenue_ttm, null when revenue TTM <= 0.
#}
with market_cap as (

    select security_id, trade_date, currency, market_cap_local, usd_per_unit
    from {{ ref('fct_market_cap_daily') }}
    {{ incremental_since('trade_date') }}

),

ttm as (

    select
        security_id,
        knowledge_date,
        currency as reporting_currency,
        revenue_ttm,
        net_income_ttm,
        eps_ttm
    from {{ ref('int_fundamentals_ttm') }}

),

pit as (

    select
        m.security_id,
        m.trade_date,
        m.currency,
        m.market_cap_local,
        m.usd_per_unit,
        t.reporting_currency,
        t.revenue_ttm,
        t.net_income_ttm,
        t.eps_ttm
    from market_cap as m
    {{ asof_join('ttm', 't', left_alias='m', by=['security_id'],
                 left_time='trade_date', right_time='knowledge_date') }}

),

converted as (

    select
        pit.*,
        case
            when pit.reporting_currency is null or pit.reporting_currency = pit.currency
                then cast(1.0 as double)
            else rfx.usd_per_unit / pit.usd_per_unit
        end as to_local
    from pit
    {{ to_usd('pit.reporting_currency', 'pit.trade_date', alias='rfx',
              only_when='pit.reporting_currency <> pit.currency') }}

),

final as (

    select
        security_id,
        trade_date,
        market_cap_local,
        net_income_ttm * to_local as net_income_ttm,
        revenue_ttm * to_local as revenue_ttm,
        eps_ttm * to_local as eps_ttm,
        case
            when net_income_ttm * to_local > 0 then market_cap_local / (net_income_ttm * to_local)
        end as pe_ttm,
        case
            when revenue_ttm * to_local > 0 then market_cap_local / (revenue_ttm * to_local)
        end as ps_ttm
    from converted

)

select * from final
