{#
  Discrete fiscal quarters (latest filing per period) of revenue, net income, capex and
  operating cash flow; YTD facts differenced and Q4 = FY - (Q1 + Q2 + Q3) upstream
  (int_fundamentals_discrete_versions). calendar_year / calendar_quarter: the calendar
  quarter the fiscal quarter mostly falls in, for cross-company sums.
#}
{%- set metrics = ['revenue', 'net_income', 'capex', 'operating_cash_flow'] %}

with versions as (

    select *
    from {{ ref('int_fundamentals_discrete_versions') }}
    where metric in ('{{ metrics | join("', '") }}')

),

latest as (

    select *
    from (
        select
            *,
            row_number() over (
                partition by security_id, metric, fiscal_year, fiscal_period
                order by knowledge_date desc
            ) as rn
        from versions
    ) as ranked
    where rn = 1

),

final as (

    select
        security_id,
        fiscal_year,
        fiscal_period,
        min(period_start) as period_start,
        max(period_end) as period_end,
        {{ calendar_year_of_quarter('max(period_end)') }} as calendar_year,
        {{ calendar_quarter_of_quarter('max(period_end)') }} as calendar_quarter,
        max(knowledge_date) as filed_date,
        max(unit) as currency,
        {% for m in metrics -%}
        max(case when metric = '{{ m }}' then value end) as {{ m }}{% if not loop.last %},{% endif %}
        {% endfor %}
    from latest
    group by security_id, fiscal_year, fiscal_period

)

select * from final
