{#
  Multi-column referential integrity: every (from_columns) combination of the model,
  where none of them is null, exists as (to_columns) in `to` (optionally restricted by
  `to_condition`, e.g. "is_trading_day").

    data_tests:
      - relationships_multi:
          arguments:
            to: ref('dim_trading_calendar')
            from_columns: [market, trade_date]
            to_columns: [market, calendar_date]
            to_condition: is_trading_day
#}
{% test relationships_multi(model, to, from_columns, to_columns, to_condition=none) %}
with child as (
    select distinct {{ from_columns | join(', ') }}
    from {{ model }}
    where {% for c in from_columns %}{{ c }} is not null{% if not loop.last %} and {% endif %}{% endfor %}
),

parent as (
    select distinct {{ to_columns | join(', ') }}
    from {{ to }}
    {% if to_condition %}where {{ to_condition }}{% endif %}
)

select child.*
from child
left join parent
    on {% for i in range(from_columns | length) %}child.{{ from_columns[i] }} = parent.{{ to_columns[i] }}{% if not loop.last %} and {% endif %}{% endfor %}
where parent.{{ to_columns[0] }} is null
{% endtest %}
