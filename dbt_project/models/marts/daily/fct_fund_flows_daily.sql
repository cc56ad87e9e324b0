-- Net buying in local currency and in USD, at the flow's own day's rate (as-of fixing).
with flows as (

    select * from {{ ref('stg_fund_flows_daily') }}
    {{ incremental_since('trade_date') }}

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
    {{ to_usd('f.currency', 'f.trade_date') }}

)

select * from final
