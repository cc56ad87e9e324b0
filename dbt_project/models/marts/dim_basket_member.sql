-- Basket membership; valid_from / valid_to null mean "always" on that side.
with baskets as (

    select * from {{ ref('stg_baskets') }}

)

select
    basket_id,
    security_id,
    valid_from,
    valid_to
from baskets
