{# Timestamps are stored in UTC without a zone (`_at` columns); vendor-local offsets are converted here. #}
{% macro to_utc(column) -%}
    {{ return(adapter.dispatch('to_utc', 'journey')(column)) }}
{%- endmacro %}

{% macro default__to_utc(column) -%}
    timezone('UTC', cast({{ column }} as timestamptz))
{%- endmacro %}

{% macro bigquery__to_utc(column) -%}
    datetime(timestamp({{ column }}), 'UTC')
{%- endmacro %}

{% macro from_unix_seconds(column) -%}
    {{ return(adapter.dispatch('from_unix_seconds', 'journey')(column)) }}
{%- endmacro %}

{% macro default__from_unix_seconds(column) -%}
    timezone('UTC', to_timestamp({{ column }}))
{%- endmacro %}

{% macro bigquery__from_unix_seconds(column) -%}
    datetime(timestamp_seconds({{ column }}), 'UTC')
{%- endmacro %}
