{# A stable key from one or more columns (dbt-utils' generate_surrogate_key without the package). #}
{% macro surrogate_key(columns) -%}
    {{ dbt.hash(dbt.concat(columns_as_text(columns))) }}
{%- endmacro %}

{% macro columns_as_text(columns) -%}
    {%- set parts = [] -%}
    {%- for column in columns -%}
        {%- do parts.append("coalesce(cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), '_null_')") -%}
        {%- if not loop.last %}{% do parts.append("'|'") %}{% endif -%}
    {%- endfor -%}
    {{ return(parts) }}
{%- endmacro %}
