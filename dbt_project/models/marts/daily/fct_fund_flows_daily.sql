-- Net buying in local currency and in USD, at the flow's own day's rate (as-of fixing).
with flows as (

    select * from {{ ref('stg_fund_flows_daily') }}
    {{ incremental_since('trade_date') }}

),

fx as (

    select currency, rate_date, usd_per_unit
    from {{ ref('int_fx_rates_asof_daily') }}
    {{ incremental_since('rate_date') }}

),

final as (

    select
        f.flow_scope,
        f.entity_id,
        f.trade_date,
        f.investor_type,
        f.period,
        f.currency,
        f.net_buy_local,
        fx.usd_per_unit,
        f.net_buy_local * fx.usd_per_unit as net_buy_usd
    from flows as f
    left join fx
        on fx.currency = f.currency
       and fx.rate_date = f.trade_date

)

select * from final
