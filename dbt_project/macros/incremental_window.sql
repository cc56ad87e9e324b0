{#
  Incremental daily facts (DESIGN §7). A run with a refresh window passes the vars
  `min_date` / `max_date`. A daily fact then
    - deletes its rows from `min_date` on (pre-hook `delete_incremental_window`),
    - reads its inputs only from `min_date` on (`incremental_since` in the import CTEs,
      so DuckDB scans and joins only those days: nothing before is recomputed),
    - takes each series' last row before `min_date` from the table itself
      (`previous_rows`), so the first day's return_1d compares with the day before.
  It rebuilds from `min_date` to the end of the data, not only to `max_date`: a replaced
  day changes the next day's return and any as-of share count or FX rate carried forward
  from it. For the market schedules' run (the newest session) that is one day. A full
  build (no vars) replaces the whole table, so a refresh of any window gives exactly the
  table a full build gives (tests/test_orchestration.py).
#}

{% macro window_start_literal() -%}
    {%- set start = var('min_date', none) -%}
    {%- if start -%}cast('{{ start }}' as date){%- endif -%}
{%- endmacro %}

{% macro is_windowed() -%}
    {{ return(is_incremental() and var('min_date', none) is not none) }}
{%- endmacro %}

{# `where <date_column> >= min_date` on a windowed incremental build; nothing otherwise. #}
{% macro incremental_since(date_column, keyword='where') -%}
    {%- if is_windowed() %} {{ keyword }} {{ date_column }} >= {{ window_start_literal() }}{% endif -%}
{%- endmacro %}

{#
  Each key's last row before the window, as already built (`this`): the seed of the
  window's lag() over that key. Only on a windowed incremental build; `columns` are
  selected from `this` as they are.
#}
{% macro previous_rows(key, date_column, columns) -%}
    select {{ key }}, {{ date_column }}, {{ columns | join(', ') }}
    from {{ this }}
    where ({{ key }}, {{ date_column }}) in (
        select {{ key }}, max({{ date_column }})
        from {{ this }}
        where {{ date_column }} < {{ window_start_literal() }}
        group by {{ key }}
    )
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
