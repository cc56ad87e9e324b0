{#
  One security's share count on one as_of_date from its share-class rows: the 'total'
  row when the vendor gives one, else the sum of the classes (A + B + C). Used by the
  glitch detection and the as-of count, so both read the same count.
#}
{% macro collapsed_share_count(shares='shares', share_class='share_class') -%}
coalesce(
            max(case when {{ share_class }} = 'total' then {{ shares }} end),
            sum(case when {{ share_class }} <> 'total' then {{ shares }} end)
        )
{%- endmacro %}
