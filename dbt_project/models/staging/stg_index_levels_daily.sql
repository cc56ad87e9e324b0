with source as (

    select * from {{ source('raw', 'index_levels_daily') }}

),

renamed as (

    select
        cast(index_id as string) as index_id,
        cast(trade_date as date) as trade_date,
        cast(open as double) as open,
        cast(high as double) as high,
        cast(low as double) as low,
        cast(close as double) as close,
        cast(source as string) as source
    from source

)

select * from renamed
