{#
  The marts' one FX join: attaches `alias`.usd_per_unit, the as-of USD rate of the
  `currency` column on the `on_date` column (int_fx_rates_asof_daily: the latest fixing
  on or before that day), as a LEFT join so a missing rate leaves the USD figure null
  (never defaulted). `only_when` narrows the join (a condition on the left row). Rates
  are read from the window's first day on in a windowed incremental build.
#}
{% macro to_usd(currency, on_date, alias='fx', only_when=none) -%}
left join (
        select currency, rate_date, usd_per_unit
        from {{ ref('int_fx_rates_asof_daily') }}
        {{ incremental_since('rate_date') }}
    ) as {{ alias }}
        on {{ alias }}.currency = {{ currency }}
       and {{ alias }}.rate_date = {{ on_date }}
    {%- if only_when %}
       and {{ only_when }}
    {%- endif %}
{%- endmacro %}
