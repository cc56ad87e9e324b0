{#
  The columns together identify a row: no combination appears twice. Grain test for
  multi-column keys (no dbt_utils offline). Rows where a key column is null are counted as
  their own combination; pair with not_null tests on the key columns.

    data_tests:
      - unique_combination:
          arguments:
            columns: [security_id, trade_date]
#}
{% test unique_combination(model, columns) %}
select
    {{ columns | join(', ') }},
    count(*) as n_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
