-- Index closes and close-to-close returns (previous row of the same index).
with levels as (

    select index_id, trade_date, close
    from {{ ref('stg_index_levels_daily') }}

),

final as (

    select
        index_id,
        trade_date,
        {{ market_of('index_id') }} as market,
        close,
        close / lag(close) over (partition by index_id order by trade_date) - 1 as return_1d
    from levels

)

select * from final
{{ incremental_window_filter('trade_date') }}
