-- One row per security, with its sector group (seed sector_groups; AI names are ai_tech).
with securities as (

    select * from {{ ref('stg_securities') }}

),

sector_groups as (

    select sector, sector_group from {{ ref('sector_groups') }}

),

final as (

    select
        s.security_id,
        s.market,
        s.exchange_mic,
        s.symbol,
        s.name,
        s.name_local,
        s.currency,
        s.sector,
        case
            when s.is_ai then 'ai_tech'
            else coalesce(g.sector_group, 'other')
        end as sector_group,
        s.industry,
        s.listing_board,
        s.is_ai,
        s.cik
    from securities as s
    left join sector_groups as g
        on g.sector = s.sector

)

select * from final
