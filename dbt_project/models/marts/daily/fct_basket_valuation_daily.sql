{#
  Cap-weighted valuation of each basket per trading day.
  Constituents of a day: members valid that day (valid_from / valid_to null = always)
  with a market-cap row that day.
    n_constituents     members counted that day
    market_cap_usd     sum of their USD market caps (members with a known cap)
    n_with_earnings    members with both a USD market cap and a net income TTM
    net_income_ttm_usd sum of net income TTM in USD over those members
    earnings_coverage  share of market_cap_usd held by the members with earnings
    pe_ttm             sum(market_cap_usd) / sum(net_income_ttm_usd) over those members;
                       null when the net income sum is <= 0, no member has both, or the
                       members with earnings hold less than var('min_earnings_coverage')
                       (0.8) of the basket's cap: a P/E of 1 member in 8 is not the basket's
#}
with members as (

    select basket_id, security_id, valid_from, valid_to
    from {{ ref('dim_basket_member') }}

),

market_cap as (

    select security_id, trade_date, market_cap_usd, usd_per_unit
    from {{ ref('fct_market_cap_daily') }}
    {{ incremental_since('trade_date') }}

),

valuation as (

    select security_id, trade_date, net_income_ttm
    from {{ ref('fct_valuation_multiples_daily') }}
    {{ incremental_since('trade_date') }}

),

member_days as (

    select
        b.basket_id,
        m.security_id,
        m.trade_date,
        m.market_cap_usd,
        v.net_income_ttm * m.usd_per_unit as net_income_ttm_usd
    from members as b
    inner join market_cap as m
        on m.security_id = b.security_id
       and (b.valid_from is null or m.trade_date >= b.valid_from)
       and (b.valid_to is null or m.trade_date <= b.valid_to)
    left join valuation as v
        on v.security_id = m.security_id
       and v.trade_date = m.trade_date

),

flagged as (

    select
        *,
        case
            when market_cap_usd is not null and net_income_ttm_usd is not null then 1 else 0
        end as has_both
    from member_days

),

aggregated as (

    select
        basket_id,
        trade_date,
        cast(count(*) as bigint) as n_constituents,
        cast(sum(has_both) as bigint) as n_with_earnings,
        sum(market_cap_usd) as market_cap_usd,
        sum(case when has_both = 1 then market_cap_usd end) as market_cap_usd_with_earnings,
        sum(case when has_both = 1 then net_income_ttm_usd end) as net_income_ttm_usd
    from flagged
    group by basket_id, trade_date

),

final as (

    select
        basket_id,
        trade_date,
        n_constituents,
        n_with_earnings,
        market_cap_usd,
        net_income_ttm_usd,
        market_cap_usd_with_earnings / nullif(market_cap_usd, 0) as earnings_coverage,
        case
            when net_income_ttm_usd > 0
             and market_cap_usd_with_earnings
                 >= {{ var('min_earnings_coverage', 0.8) }} * market_cap_usd
                then market_cap_usd_with_earnings / net_income_ttm_usd
        end as pe_ttm
    from aggregated

)

select * from final
