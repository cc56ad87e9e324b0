-- Index valuation as published (trailing P/E, P/B, dividend yield).
with valuation as (

    select * from {{ ref('stg_index_valuation_daily') }}
    {{ incremental_since('trade_date') }}

)

select
    index_id,
    trade_date,
    pe_ttm,
    pb,
    dividend_yield
from valuation
