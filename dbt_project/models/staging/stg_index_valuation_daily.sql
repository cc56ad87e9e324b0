with source as (

    select * from {{ source('raw', 'index_valuation_daily') }}

),

renamed as (

    select
        cast(index_id as string) as index_id,
        cast(trade_date as date) as trade_date,
        cast(pe_ttm as double) as pe_ttm,
        cast(pb as double) as pb,
        cast(dividend_yield as double) as dividend_yield,
        cast(source as string) as source
    from source

)

select * from renamed
