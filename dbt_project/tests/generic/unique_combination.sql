{#
  The columns together identify a row: no combination appears twice. Grain test for
  multi-column keys (no dbt_utils offline). Rows where a key column is null are counted as
  their own combination; pair with not_null tests on the key columns.

    data_tests:
      - unique_combination:
          arguments:
            columns: [security_id, trade_date]
#}
{# The SQL is a dispatched macro (macros/unique_combination.sql): DuckDB has a faster form. #}
{% test unique_combination(model, columns) %}
    {{ return(adapter.dispatch('unique_combination_sql', 'selloff')(model, columns)) }}
{% endtest %}
