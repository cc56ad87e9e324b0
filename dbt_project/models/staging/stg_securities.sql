with source as (

    select * from {{ source('raw', 'securities') }}

),

renamed as (

    select
        cast(security_id as string) as security_id,
        cast(market as string) as market,
        cast(exchange_mic as string) as exchange_mic,
        cast(symbol as string) as symbol,
        cast(name as string) as name,
        cast(name_local as string) as name_local,
        cast(currency as string) as currency,
        cast(sector as string) as sector,
        cast(industry as string) as industry,
        cast(listing_board as string) as listing_board,
        cast(is_ai as boolean) as is_ai,
        cast(cik as string) as cik,
        cast(source as string) as source
    from source

)

select * from renamed
