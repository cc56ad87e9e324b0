{#
  Every row satisfies a SQL boolean expression (rows where it is false are returned; a
  null result counts as passing, so write `x is not null and ...` when null must fail).

    data_tests:
      - expression_is_true:
          arguments:
            expression: "usd_per_unit > 0"
#}
{% test expression_is_true(model, expression, column_name=none) %}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}
