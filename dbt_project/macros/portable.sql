{#
  Small portable helpers (DESIGN §8). Each dispatches, so an adapter whose SQL differs
  can override it without touching the models.
#}

{# The market prefix of an id: 'US:NVDA' -> 'US' (DESIGN §3 ids are <MARKET>:<code>). #}
{% macro market_of(column) %}
    {{ return(adapter.dispatch('market_of', 'selloff')(column)) }}
{% endmacro %}

{% macro default__market_of(column) -%}
    split_part({{ column }}, ':', 1)
{%- endmacro %}

{# Spark has split_part only from 3.3; substring_index works on every 3.x and 4.x. #}
{% macro spark__market_of(column) -%}
    substring_index({{ column }}, ':', 1)
{%- endmacro %}

{#
  A date plus a whole number of days, as a DATE. dbt.dateadd returns a timestamp, and on
  Spark goes through unix seconds in the session time zone; date_add is exact there.
#}
{% macro add_days(date_expr, days) %}
    {{ return(adapter.dispatch('add_days', 'selloff')(date_expr, days)) }}
{% endmacro %}

{% macro default__add_days(date_expr, days) -%}
    cast({{ dbt.dateadd('day', days, date_expr) }} as date)
{%- endmacro %}

{% macro spark__add_days(date_expr, days) -%}
    date_add({{ date_expr }}, {{ days }})
{%- endmacro %}

{#
  Calendar year and quarter a fiscal quarter mostly falls in: the quarter containing the
  day 45 days before its period end (NVIDIA's quarter ending 2025-10-26 is CY 2025 Q3,
  Apple's ending 2025-09-27 is CY 2025 Q3, NVIDIA's ending 2025-01-26 is CY 2024 Q4).
#}
{% macro calendar_year_of_quarter(period_end) -%}
    cast(extract(year from {{ add_days(period_end, -45) }}) as integer)
{%- endmacro %}

{% macro calendar_quarter_of_quarter(period_end) -%}
    cast(extract(quarter from {{ add_days(period_end, -45) }}) as integer)
{%- endmacro %}

{#
  The last non-null value of `expr` over the rows of the partition up to the current row
  (a running "latest known" value). SQL:2011 puts IGNORE NULLS after the call (Spark 3.2+,
  Snowflake, Trino, Oracle); DuckDB wants it inside; Spark's last(x, true) works on all 3.x.
#}
{% macro last_non_null(expr, partition_by, order_by) %}
    {{ return(adapter.dispatch('last_non_null', 'selloff')(expr, partition_by, order_by)) }}
{% endmacro %}

{% macro default__last_non_null(expr, partition_by, order_by) -%}
    last_value({{ expr }}) ignore nulls over (
        partition by {{ partition_by }} order by {{ order_by }}
        rows between unbounded preceding and current row
    )
{%- endmacro %}

{% macro duckdb__last_non_null(expr, partition_by, order_by) -%}
    last_value({{ expr }} ignore nulls) over (
        partition by {{ partition_by }} order by {{ order_by }}
        rows between unbounded preceding and current row
    )
{%- endmacro %}

{% macro spark__last_non_null(expr, partition_by, order_by) -%}
    last({{ expr }}, true) over (
        partition by {{ partition_by }} order by {{ order_by }}
        rows between unbounded preceding and current row
    )
{%- endmacro %}
