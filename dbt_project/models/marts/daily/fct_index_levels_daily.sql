-- Index closes and close-to-close returns (previous row of the same index).
-- Incremental: a windowed build reads levels from min_date on and the index's last row
-- before the window from the table itself (macros/incremental_window.sql).
with levels as (

    select index_id, trade_date, close, false as is_previous
    from {{ ref('stg_index_levels_daily') }}
    {{ incremental_since('trade_date') }}
    {%- if is_windowed() %}
    union all
    select index_id, trade_date, close, true as is_previous
    from ({{ previous_rows('index_id', 'trade_date', ['close']) }}) as p
    {%- endif %}

),

final as (

    select
        index_id,
        trade_date,
        {{ market_of('index_id') }} as market,
        close,
        close / lag(close) over (partition by index_id order by trade_date) - 1 as return_1d,
        is_previous
    from levels

)

select index_id, trade_date, market, close, return_1d
from final
where not is_previous
