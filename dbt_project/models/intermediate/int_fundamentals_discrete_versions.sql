{#
  Discrete fiscal quarters, point in time: every version of every quarter's value, with
  the date from which it is known (knowledge_date = the filed_date of the newest fact it
  uses). The latest version of a quarter is the "latest filing" figure; older versions
  say what was known before a restatement.

  Facts come as reported (stg_fundamentals): a quarter alone ('discrete') or fiscal year
  to date ('ytd'); FY rows (and Q4 rows on a ytd basis) are the whole year. For flow
  metrics (anything not counted in 'shares': revenue, net income, capex, cash flow, EPS)
  per security, metric and fiscal year, at each filing date k of that year:
    cumulative C_n = latest ytd fact for Qn known at k, else C_(n-1) + D_n
    discrete   D_n = latest discrete fact for Qn known at k, else C_n - C_(n-1)
  so Q2 = H1 - Q1, Q3 = 9M - H1, Q4 = FY - 9M (= FY - (Q1 + Q2 + Q3)), each known only
  once every fact it needs is filed. A restated fact (a later filing of the same period)
  gives a new version from its own filed_date; earlier versions stand before it.
  Share-count metrics (unit 'shares') are not differenced: only their discrete quarters
  are kept.
#}
{%- set slots = ['D1', 'D2', 'D3', 'D4', 'C1', 'C2', 'C3', 'C4'] %}

with facts as (

    select
        security_id,
        metric,
        fiscal_year,
        fiscal_period,
        value_basis,
        period_start,
        period_end,
        filed_date,
        value,
        unit,
        coalesce(unit <> 'shares', true) as is_flow
    from {{ ref('stg_fundamentals') }}

),

slotted as (

    -- D1..D4: a quarter alone; C1..C4: cumulative from the start of the fiscal year
    select
        *,
        case
            when fiscal_period = 'FY' then 'C4'
            when value_basis = 'ytd' then 'C' || substr(fiscal_period, 2, 1)
            else 'D' || substr(fiscal_period, 2, 1)
        end as slot
    from facts
    where is_flow or (value_basis = 'discrete' and fiscal_period <> 'FY')

),

per_filing as (

    -- the facts of one filing date, one column per slot
    select
        security_id,
        metric,
        fiscal_year,
        filed_date as knowledge_date,
        max(unit) as unit,
        {%- for slot in slots %}
        max(case when slot = '{{ slot }}' then value end) as {{ slot | lower }}_new,
        max(case when slot = '{{ slot }}' then period_start end) as {{ slot | lower }}_start_new,
        max(case when slot = '{{ slot }}' then period_end end) as {{ slot | lower }}_end_new
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from slotted
    group by security_id, metric, fiscal_year, filed_date

),

pivoted as (

    -- each slot's latest fact filed on or before each knowledge date (running latest)
    select
        security_id,
        metric,
        fiscal_year,
        knowledge_date,
        unit,
        {%- set by = 'security_id, metric, fiscal_year' %}
        {%- for slot in slots %}
        {%- set s = slot | lower %}
        {{ last_non_null(s ~ '_new', by, 'knowledge_date') }} as {{ s }}_fact,
        {{ last_non_null(s ~ '_start_new', by, 'knowledge_date') }} as {{ s }}_start,
        {{ last_non_null(s ~ '_end_new', by, 'knowledge_date') }} as {{ s }}_end
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from per_filing

),

cumulated as (

    select
        *,
        coalesce(c1_fact, d1_fact) as c1,
        coalesce(d1_end, c1_end) as q1_end,
        coalesce(d2_end, c2_end) as q2_end,
        coalesce(d3_end, c3_end) as q3_end,
        coalesce(d4_end, c4_end) as q4_end
    from pivoted

),

cumulated2 as (

    select *, coalesce(c2_fact, c1 + d2_fact) as c2
    from cumulated

),

cumulated3 as (

    select *, coalesce(c3_fact, c2 + d3_fact) as c3
    from cumulated2

),

quarters as (

    -- Q1 is its own fact; Qn (n > 1) its discrete fact, else the cumulative difference
    -- C_n - C_(n-1), starting the day after Q(n-1) ends (derived).
    {%- for n in range(1, 5) %}
    {%- if not loop.first %}

    union all
    {% endif %}

    select
        security_id, metric, fiscal_year, knowledge_date, unit,
        'Q{{ n }}' as fiscal_period,
        {%- if n == 1 %}
        coalesce(d1_fact, c1_fact) as value,
        coalesce(d1_start, c1_start) as period_start,
        q1_end as period_end,
        false as is_derived
        {%- else %}
        coalesce(d{{ n }}_fact, c{{ n }}_fact - c{{ n - 1 }}) as value,
        coalesce(d{{ n }}_start, {{ add_days('q' ~ (n - 1) ~ '_end', 1) }}) as period_start,
        q{{ n }}_end as period_end,
        d{{ n }}_fact is null as is_derived
        {%- endif %}
    from cumulated3
    {%- endfor %}

),

changes as (

    -- keep a version only when the quarter's figure is new or differs from the one before
    select
        *,
        lag(value) over (
            partition by security_id, metric, fiscal_year, fiscal_period
            order by knowledge_date
        ) as previous_value,
        row_number() over (
            partition by security_id, metric, fiscal_year, fiscal_period
            order by knowledge_date
        ) as version_number
    from quarters
    where value is not null and period_end is not null

),

final as (

    select
        security_id,
        metric,
        fiscal_year,
        fiscal_period,
        cast(substr(fiscal_period, 2, 1) as integer) as fiscal_quarter,
        period_start,
        period_end,
        knowledge_date,
        value,
        unit,
        is_derived
    from changes
    where version_number = 1 or value <> previous_value

)

select * from final
