with source as (

    select * from {{ source('raw', 'prices_daily') }}

),

renamed as (

    select
        cast(security_id as string) as security_id,
        cast(trade_date as date) as trade_date,
        cast(open as double) as open,
        cast(high as double) as high,
        cast(low as double) as low,
        cast(close as double) as close,
        cast(adj_close as double) as adj_close,
        cast(volume as double) as volume,
        cast(currency as string) as currency,
        cast(source as string) as source
    from source

)

select * from renamed
