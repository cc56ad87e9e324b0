with source as (

    select * from {{ source('raw', 'fund_flows_daily') }}

),

renamed as (

    select
        cast(flow_scope as string) as flow_scope,
        cast(entity_id as string) as entity_id,
        cast(trade_date as date) as trade_date,
        cast(investor_type as string) as investor_type,
        cast(period as string) as period,
        cast(net_buy_value as double) as net_buy_local,
        cast(currency as string) as currency,
        cast(source as string) as source
    from source

)

select * from renamed
