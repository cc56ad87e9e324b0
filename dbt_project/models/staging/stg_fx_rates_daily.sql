with source as (

    select * from {{ source('raw', 'fx_rates_daily') }}

),

renamed as (

    select
        cast(trade_date as date) as rate_date,
        cast(currency as string) as currency,
        cast(usd_per_unit as double) as usd_per_unit,
        cast(source as string) as source
    from source

)

select * from renamed
