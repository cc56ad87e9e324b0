with source as (

    select * from {{ source('raw', 'indexes') }}

),

renamed as (

    select
        cast(index_id as string) as index_id,
        cast(market as string) as market,
        cast(name as string) as name,
        cast(currency as string) as currency,
        cast(source as string) as source
    from source

)

select * from renamed
