{#
  Models land in the schema named in their config, as is: `staging` and `marts`, not
  `main_staging` (ARCHITECTURE.md pins the schema names analysts query). Nodes without a
  custom schema go to the target schema.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
