{#
  Partitioned builds (DESIGN §7): Dagster passes the partition window as vars
  `min_date` / `max_date`. A daily fact is rebuilt from `min_date` to the end of the data,
  not just inside the window, because a late-arriving day changes what follows it
  (the next day's return_1d, an as-of share count or FX rate carried forward). So a
  backfill of any window gives exactly the table a full build gives.
#}

{% macro window_start_literal() -%}
    {%- set start = var('min_date', none) -%}
    {%- if start -%}cast('{{ start }}' as date){%- endif -%}
{%- endmacro %}

{% macro incremental_window_filter(date_column) -%}
    {%- if is_incremental() and var('min_date', none) %}
    where {{ date_column }} >= {{ window_start_literal() }}
    {%- endif -%}
{%- endmacro %}

{% macro delete_incremental_window(relation, date_column) -%}
    {%- if is_incremental() -%}
        {%- if var('min_date', none) -%}
            delete from {{ relation }} where {{ date_column }} >= {{ window_start_literal() }}
        {%- else -%}
            delete from {{ relation }} where true
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
