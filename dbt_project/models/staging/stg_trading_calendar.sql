with source as (

    select * from {{ source('raw', 'trading_calendar') }}

),

renamed as (

    select
        cast(market as string) as market,
        cast(calendar_date as date) as calendar_date,
        cast(is_trading_day as boolean) as is_trading_day
    from source

)

select * from renamed
