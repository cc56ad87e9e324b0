with source as (

    select * from {{ source('raw', 'baskets') }}

),

renamed as (

    select
        cast(basket_id as string) as basket_id,
        cast(security_id as string) as security_id,
        cast(valid_from as date) as valid_from,
        cast(valid_to as date) as valid_to,
        cast(source as string) as source
    from source

)

select * from renamed
