{#
  As-of join (DESIGN §8: DuckDB-only constructs live in adapter-dispatched macros).

  Renders a LEFT join clause that attaches to each left row the right row with the same
  `by` keys and the latest `right_time` on or before `left_time` (never after: no
  look-ahead). Left rows without such a right row are kept, with nulls on the right.

    from prices as p
    {{ asof_join('share_timeline', 's', left_alias='p', by=['security_id'],
                 left_time='trade_date', right_time='known_from') }}

  `right` is a relation or CTE name; `by` lists key columns named the same on both sides.
  `right_time` must be unique per key in `right` (the models guarantee it); select the
  right-hand columns explicitly (the portable version adds a helper column).

  `dbt build --vars '{selloff_portable_sql: true}'` runs the portable formulations on
  DuckDB too, so the unit tests check the SQL the other adapters get.
#}
{% macro asof_join(right, alias, left_alias, by, left_time, right_time) %}
    {%- if var('selloff_portable_sql', false) -%}
        {{ return(default__asof_join(right, alias, left_alias, by, left_time, right_time)) }}
    {%- endif -%}
    {{ return(adapter.dispatch('asof_join', 'selloff')(right, alias, left_alias, by, left_time, right_time)) }}
{% endmacro %}

{# DuckDB: a native ASOF LEFT JOIN (sort-merge; linear in the inputs). #}
{% macro duckdb__asof_join(right, alias, left_alias, by, left_time, right_time) %}
    asof left join {{ right }} as {{ alias }}
        on {% for k in by %}{{ left_alias }}.{{ k }} = {{ alias }}.{{ k }} and {% endfor -%}
           {{ left_alias }}.{{ left_time }} >= {{ alias }}.{{ right_time }}
{% endmacro %}

{#
  Spark has no ASOF JOIN: the portable range join below, checked on Spark by
  tests/test_spark_parity.py. (Spark plans it as a sort-merge join on the keys with the
  interval as a filter; each left row matches one interval, so the output stays linear.)
#}
{% macro spark__asof_join(right, alias, left_alias, by, left_time, right_time) %}
    {{ return(default__asof_join(right, alias, left_alias, by, left_time, right_time)) }}
{% endmacro %}

{#
  Portable formulation (Spark, Postgres, ...): each right row is valid from its own time up
  to (not including) the next right row's time for the same keys, found with LEAD; the
  left row joins the one interval that contains its time (a range join).
#}
{% macro default__asof_join(right, alias, left_alias, by, left_time, right_time) %}
    left join (
        select
            __asof_r.*,
            lead({{ right_time }}) over (
                partition by {{ by | join(', ') }}
                order by {{ right_time }}
            ) as __asof_valid_to
        from {{ right }} as __asof_r
    ) as {{ alias }}
        on {% for k in by %}{{ left_alias }}.{{ k }} = {{ alias }}.{{ k }} and {% endfor -%}
           {{ left_alias }}.{{ left_time }} >= {{ alias }}.{{ right_time }}
       and ({{ alias }}.__asof_valid_to is null or {{ left_alias }}.{{ left_time }} < {{ alias }}.__asof_valid_to)
{% endmacro %}
