{# One query parameter's value from a URL or path ("/?utm_source=google&..."), null when absent or empty.
   Not URL-decoded: the values the stack reads (the sandbox's UTM values) are query-safe as written; decode
   here if a real shop's landing sites carry percent-encoded values. #}
{% macro query_parameter(column, name) -%}
    {{ return(adapter.dispatch('query_parameter', 'journey')(column, name)) }}
{%- endmacro %}

{% macro default__query_parameter(column, name) -%}
    nullif(regexp_extract({{ column }}, '[?&]{{ name }}=([^&#]*)', 1), '')
{%- endmacro %}

{% macro bigquery__query_parameter(column, name) -%}
    nullif(regexp_extract({{ column }}, r'[?&]{{ name }}=([^&#]*)'), '')
{%- endmacro %}
