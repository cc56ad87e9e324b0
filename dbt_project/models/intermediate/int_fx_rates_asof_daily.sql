{#
  As-of FX: for every currency and every date a price or a flow needs, the latest fixing on
  or before that date (never after: no look-ahead). USD is 1 by definition. A currency with
  no fixing yet on a date keeps usd_per_unit null: a missing rate is never defaulted.

  The spine is small (distinct dates x distinct currencies), so the marts join it on
  (currency, date) with a plain equi-join.
#}
with fixings as (

    select currency, rate_date, usd_per_unit
    from {{ ref('stg_fx_rates_daily') }}
    where currency <> 'USD'

),

needed_dates as (

    select distinct trade_date as rate_date from {{ ref('stg_prices_daily') }}
    union
    select distinct trade_date as rate_date from {{ ref('stg_fund_flows_daily') }}

),

currencies as (

    select distinct currency from {{ ref('stg_prices_daily') }}
    union
    select distinct currency from {{ ref('stg_fund_flows_daily') }}
    union
    select distinct currency from {{ ref('stg_fx_rates_daily') }}
    union
    select 'USD' as currency

),

spine as (

    select c.currency, d.rate_date
    from currencies as c
    cross join needed_dates as d

),

looked_up as (

    select
        spine.currency,
        spine.rate_date,
        fx.usd_per_unit,
        fx.rate_date as fixing_date
    from spine
    {{ asof_join('fixings', 'fx', left_alias='spine', by=['currency'],
                 left_time='rate_date', right_time='rate_date') }}

),

final as (

    select
        currency,
        rate_date,
        case when currency = 'USD' then cast(1.0 as double) else usd_per_unit end as usd_per_unit,
        case when currency = 'USD' then rate_date else fixing_date end as fixing_date
    from looked_up

)

select * from final
