{# DESIGN.md: trim surrounding white space and lower-case; nothing else. An empty result is null. #}
{% macro normalize_email(column) -%}
    {{ return(adapter.dispatch('normalize_email', 'journey')(column)) }}
{%- endmacro %}

{% macro default__normalize_email(column) -%}
    nullif(lower(regexp_replace({{ column }}, '^\s+|\s+$', '', 'g')), '')
{%- endmacro %}

{% macro bigquery__normalize_email(column) -%}
    nullif(lower(regexp_replace({{ column }}, r'^\s+|\s+$', '')), '')
{%- endmacro %}
