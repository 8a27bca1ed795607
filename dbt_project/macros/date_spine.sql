{# One row per day from start_date to end_date inclusive, as `date_day` (dbt-utils' date_spine, without
   the package). Arguments are SQL expressions of type date. #}
{% macro date_spine(start_date, end_date) -%}
    {{ return(adapter.dispatch('date_spine', 'journey')(start_date, end_date)) }}
{%- endmacro %}

{% macro default__date_spine(start_date, end_date) -%}
    select cast(day as date) as date_day
    from generate_series(cast({{ start_date }} as date), cast({{ end_date }} as date), interval 1 day) as t(day)
{%- endmacro %}

{% macro bigquery__date_spine(start_date, end_date) -%}
    select date_day
    from unnest(generate_date_array({{ start_date }}, {{ end_date }}, interval 1 day)) as date_day
{%- endmacro %}

{# One row per integer from low to high inclusive, as `n`. #}
{% macro integer_spine(low, high) -%}
    {{ return(adapter.dispatch('integer_spine', 'journey')(low, high)) }}
{%- endmacro %}

{% macro default__integer_spine(low, high) -%}
    select n from generate_series({{ low }}, {{ high }}) as t(n)
{%- endmacro %}

{% macro bigquery__integer_spine(low, high) -%}
    select n from unnest(generate_array({{ low }}, {{ high }})) as n
{%- endmacro %}
