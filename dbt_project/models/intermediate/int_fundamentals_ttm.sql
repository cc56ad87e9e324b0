{#
  Trailing-twelve-month figures per security and knowledge date (point in time).

  A knowledge date is a date on which a new version of one of the security's quarters
  became known (int_fundamentals_discrete_versions.knowledge_date, i.e. a filed_date).
  At knowledge date k, for each metric:
    - the latest fiscal quarter known by k (the frontier), then
    - the sum of the versions known by k of that quarter and the three before it.
  The four quarters must be consecutive and all known: otherwise the TTM is null. A
  restated quarter counts from its own knowledge date only; before it the earlier version
  counts. fct_valuation_multiples_daily as-of-joins these rows to trade dates.

  revenue_ttm and net_income_ttm are in `currency` (the reporting currency); eps_ttm in
  `currency` per share.
#}
{%- set ttm_metrics = {'revenue': 'revenue_ttm', 'net_income': 'net_income_ttm', 'eps_diluted': 'eps_ttm'} %}

with versions as (

    select
        security_id,
        metric,
        fiscal_year * 4 + fiscal_quarter as qidx,
        fiscal_year,
        fiscal_period,
        knowledge_date,
        value,
        unit
    from {{ ref('int_fundamentals_discrete_versions') }}
    where metric in ('{{ ttm_metrics | join("', '") }}')

),

events as (

    select distinct security_id, knowledge_date
    from versions

),

metrics as (

    {%- for m in ttm_metrics %}
    {%- if not loop.first %}
    union all
    {%- endif %}
    select '{{ m }}' as metric
    {%- endfor %}

),

offsets as (

    {%- for n in range(4) %}
    {%- if not loop.first %}
    union all
    {%- endif %}
    select {{ n }}{% if loop.first %} as quarter_offset{% endif %}
    {%- endfor %}

),

frontier as (

    -- latest quarter known per security and metric from each knowledge date on
    select
        security_id,
        metric,
        knowledge_date,
        max(max_qidx) over (
            partition by security_id, metric
            order by knowledge_date
            rows between unbounded preceding and current row
        ) as last_qidx
    from (
        select security_id, metric, knowledge_date, max(qidx) as max_qidx
        from versions
        group by security_id, metric, knowledge_date
    ) as per_date

),

event_metrics as (

    select e.security_id, m.metric, e.knowledge_date
    from events as e
    cross join metrics as m

),

event_frontier as (

    select
        em.security_id,
        em.metric,
        em.knowledge_date,
        f.last_qidx
    from event_metrics as em
    {{ asof_join('frontier', 'f', left_alias='em', by=['security_id', 'metric'],
                 left_time='knowledge_date', right_time='knowledge_date') }}

),

wanted as (

    -- the four quarters that make up the TTM at each knowledge date
    select
        ef.security_id,
        ef.metric,
        ef.knowledge_date,
        o.quarter_offset,
        ef.last_qidx - o.quarter_offset as qidx
    from event_frontier as ef
    cross join offsets as o
    where ef.last_qidx is not null

),

picked as (

    select
        w.security_id,
        w.metric,
        w.knowledge_date,
        w.quarter_offset,
        v.value,
        v.unit,
        v.fiscal_year,
        v.fiscal_period
    from wanted as w
    {{ asof_join('versions', 'v', left_alias='w', by=['security_id', 'metric', 'qidx'],
                 left_time='knowledge_date', right_time='knowledge_date') }}

),

per_metric as (

    select
        security_id,
        metric,
        knowledge_date,
        case when count(value) = 4 then sum(value) end as ttm_value,
        max(case when quarter_offset = 0 then unit end) as unit,
        max(case when quarter_offset = 0 then fiscal_year end) as last_fiscal_year,
        max(case when quarter_offset = 0 then fiscal_period end) as last_fiscal_period
    from picked
    group by security_id, metric, knowledge_date

),

final as (

    select
        security_id,
        knowledge_date,
        {% for m, col in ttm_metrics.items() -%}
        max(case when metric = '{{ m }}' then ttm_value end) as {{ col }},
        {% endfor -%}
        coalesce(
            max(case when metric = 'net_income' then unit end),
            max(case when metric = 'revenue' then unit end)
        ) as currency,
        max(case when metric = 'net_income' then last_fiscal_year end) as last_fiscal_year,
        max(case when metric = 'net_income' then last_fiscal_period end) as last_fiscal_period
    from per_metric
    group by security_id, knowledge_date

)

select * from final
