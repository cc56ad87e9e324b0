{{ config(
    materialized=('table' if target.type == 'spark' else 'incremental'),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_incremental_window(this, 'trade_date') }}",
    tags=['daily'],
) }}
-- Index valuation as published (trailing P/E, P/B, dividend yield).
with valuation as (

    select * from {{ ref('stg_index_valuation_daily') }}

)

select
    index_id,
    trade_date,
    pe_ttm,
    pb,
    dividend_yield
from valuation
{{ incremental_window_filter('trade_date') }}
