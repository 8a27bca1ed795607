{# Only rows from dlt loads that completed (status 0 in the dataset's _dlt_loads). #}
{% macro completed_loads(source_name, load_column='_dlt_load_id') -%}
    {{ load_column }} in (select load_id from {{ raw_table(source_name, '_dlt_loads') }} as loads where status = 0)
{%- endmacro %}

{# The later of two dlt load ids (either may be null, as on the outer side of a join): an incremental
   model reprocesses a row when any of the loads it is built from is new. #}
{% macro greatest_load_id(a, b) -%}
    case when {{ b }} is null or {{ a }} >= {{ b }} then {{ a }} else {{ b }} end
{%- endmacro %}
