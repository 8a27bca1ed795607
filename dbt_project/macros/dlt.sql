{# Only rows from dlt loads that completed (status 0 in the dataset's _dlt_loads). #}
{% macro completed_loads(source_name, load_column='_dlt_load_id') -%}
    {{ load_column }} in (select load_id from {{ source(source_name, '_dlt_loads') }} where status = 0)
{%- endmacro %}
