with indexes as (

    select * from {{ ref('stg_indexes') }}

)

select
    index_id,
    market,
    name,
    currency
from indexes
