-- Share counts as landed; rows without a count (shares null) carry no information and are
-- dropped here, so an as-of lookup falls back to the previous known count instead of null.
with source as (

    select * from {{ source('raw', 'shares_outstanding') }}

),

renamed as (

    select
        cast(security_id as string) as security_id,
        cast(as_of_date as date) as as_of_date,
        cast(share_class as string) as share_class,
        cast(shares as double) as shares,
        cast(filed_date as date) as filed_date,
        cast(source as string) as source
    from source
    where shares is not null

)

select * from renamed
