{#
  Incremental daily facts (DESIGN §7). A run with a refresh window gives its first and
  last day (`min_date` / `max_date`) to dbt. A daily fact then
    - deletes its rows from `min_date` on (pre-hook `delete_incremental_window`),
    - reads its inputs only from `min_date` on (`incremental_since` in the import CTEs,
      so DuckDB scans and joins only those days: nothing before is recomputed),
    - takes each series' last row before `min_date` from the table itself
      (`previous_rows`), so the first day's return_1d compares with the day before.
  It rebuilds from `min_date` to the end of the data, not only to `max_date`: a replaced
  day changes the next day's return and any as-of share count or FX rate carried forward
  from it. For the market schedules' run (the newest session) that is one day. A full
  build (no window) replaces the whole table, so a refresh of any window gives exactly
  the table a full build gives (tests/test_orchestration.py).

  Where the window comes from (`refresh_window_start`): the vars `min_date` / `max_date`
  when given (dbt by hand, Spark), else, on DuckDB, the one-row table
  main.selloff_refresh_window that the Dagster dbt asset writes into the build file just
  before `dbt build` and drops after it (selloff/dbt_runner.py). The table is read when
  the models run, not when dbt parses, so a windowed run has the same vars as a full
  build and reuses its parse state: window vars made dbt parse the whole project again
  on every refresh (dbt compares all vars with those of the saved parse).
#}

{% macro refresh_window_start() -%}
    {%- set start = var('min_date', none) -%}
    {%- if start is not none -%}{{ return(start) }}{%- endif -%}
    {#- Parse time (no database) and other engines: no window. -#}
    {%- if not execute or target.type != 'duckdb' -%}{{ return(none) }}{%- endif -%}
    {%- set present = run_query(
        "select count(*) from duckdb_tables() where database_name = current_database() "
        ~ "and schema_name = 'main' and table_name = 'selloff_refresh_window'") -%}
    {%- if present.columns[0].values()[0] == 0 -%}{{ return(none) }}{%- endif -%}
    {%- set found = run_query(
        "select cast(min(min_date) as varchar) from main.selloff_refresh_window") -%}
    {{ return(found.columns[0].values()[0]) }}
{%- endmacro %}

{% macro window_start_literal() -%}
    {%- set start = refresh_window_start() -%}
    {%- if start -%}cast('{{ start }}' as date){%- endif -%}
{%- endmacro %}

{% macro is_windowed() -%}
    {{ return(is_incremental() and refresh_window_start() is not none) }}
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
        {%- if refresh_window_start() -%}
            delete from {{ relation }} where {{ date_column }} >= {{ window_start_literal() }}
        {%- else -%}
            delete from {{ relation }} where true
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#
  The data tests of the daily facts (meta `window_column`, dbt_project.yml) on a windowed
  run test the rebuilt rows only: the rows before the window were tested when they were
  built. dbt's own get_where_subquery otherwise (the `where` config). Here, not in the
  `where` config, because configs are rendered when dbt parses and the window is known
  only when the tests run.
#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set column = (config.get('meta') or {}).get('window_column') -%}
    {%- set start = refresh_window_start() if column else none -%}
    {%- if start -%}
        {%- set window = column ~ " >= cast('" ~ start ~ "' as date)" -%}
        {%- set where = '(' ~ where ~ ') and ' ~ window if where else window -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}
