{#
  Unit-test fixtures (given inputs and expected rows) as one relation on Spark.

  dbt writes a fixture as `select <row 1> union all select <row 2> ...`. Spark plans each
  branch as its own one-row scan, so a 12-row fixture is a 12-partition input, and a
  fixture CTE read several times is planned and scheduled that many times over: on a
  cluster the unit tests were the slowest nodes of the build. `values (...), (...) as
  t(cols)` is the same rows (same literals, same casts, same column order) as one local
  relation. Other adapters keep dbt's own SQL: the root project's macro of the same name
  takes precedence over dbt's, and the default__ versions hand back dbt's untouched.
#}

{% macro get_fixture_sql(rows, column_name_to_data_types) %}
  {{- return(adapter.dispatch('get_fixture_sql', 'selloff')(rows, column_name_to_data_types)) -}}
{% endmacro %}

{% macro default__get_fixture_sql(rows, column_name_to_data_types) %}
  {{- return(dbt.get_fixture_sql(rows, column_name_to_data_types)) -}}
{% endmacro %}

{% macro spark__get_fixture_sql(rows, column_name_to_data_types) %}
{%- if (rows | length) == 0 -%}
  {{- return(dbt.get_fixture_sql(rows, column_name_to_data_types)) -}}
{%- endif -%}
{#-- The column names and types as dbt.get_fixture_sql finds them. --#}
{%- set column_name_to_quoted = {} -%}
{%- if not column_name_to_data_types -%}
{%-   set this_or_defer_relation = defer_relation if (defer_relation and not load_relation(this)) else this -%}
{%-   set columns_in_relation = adapter.get_columns_in_relation(this_or_defer_relation) -%}
{%-   set column_name_to_data_types = {} -%}
{%-   for column in columns_in_relation -%}
{%-     do column_name_to_data_types.update({column.name|lower: column.data_type}) -%}
{%-     do column_name_to_quoted.update({column.name|lower: column.quoted}) -%}
{%-   endfor -%}
{%- endif -%}
{%- if not column_name_to_data_types -%}
    {{ exceptions.raise_compiler_error("Not able to get columns for unit test '" ~ model.name ~ "' from relation " ~ this ~ " because the relation doesn't exist") }}
{%- endif -%}
{%- set default_row = {} -%}
{%- for column_name, column_type in column_name_to_data_types.items() -%}
{%-   do default_row.update({column_name: (safe_cast("null", column_type) | trim)}) -%}
{%- endfor -%}
{{ validate_fixture_rows(rows, row_number) }}
-- Fixture for {{ model.name }}
select * from values
{%- for row in rows -%}
{%-   set row_values = default_row.copy() -%}
{%-   do row_values.update(format_row(row, column_name_to_data_types)) %}
    ({{ row_values.values() | join(', ') }}){% if not loop.last %},{% endif %}
{%- endfor %}
    as fixture({% for name in column_name_to_data_types %}{{ column_name_to_quoted[name] if name in column_name_to_quoted else adapter.quote(name) }}{% if not loop.last %}, {% endif %}{% endfor %})
{% endmacro %}

{% macro get_expected_sql(rows, column_name_to_data_types, column_name_to_quoted) %}
  {{- return(adapter.dispatch('get_expected_sql', 'selloff')(rows, column_name_to_data_types, column_name_to_quoted)) -}}
{% endmacro %}

{% macro default__get_expected_sql(rows, column_name_to_data_types, column_name_to_quoted) %}
  {{- return(dbt.get_expected_sql(rows, column_name_to_data_types, column_name_to_quoted)) -}}
{% endmacro %}

{% macro spark__get_expected_sql(rows, column_name_to_data_types, column_name_to_quoted) %}
{#-- One VALUES relation needs every row to name the same columns in the same order. --#}
{%- set formatted = [] -%}
{%- for row in rows -%}
{%-   do formatted.append(format_row(row, column_name_to_data_types)) -%}
{%- endfor -%}
{%- set names = (formatted[0].keys() | list) if formatted else [] -%}
{%- set odd_rows = [] -%}
{%- for f in formatted -%}
{%-   if (f.keys() | list) != names -%}{%- do odd_rows.append(f) -%}{%- endif -%}
{%- endfor -%}
{%- if not formatted or odd_rows -%}
  {{- return(dbt.get_expected_sql(rows, column_name_to_data_types, column_name_to_quoted)) -}}
{%- endif -%}
select * from values
{%- for f in formatted %}
    ({{ f.values() | join(', ') }}){% if not loop.last %},{% endif %}
{%- endfor %}
    as expected({% for name in names %}{{ column_name_to_quoted[name] }}{% if not loop.last %}, {% endif %}{% endfor %})
{% endmacro %}
