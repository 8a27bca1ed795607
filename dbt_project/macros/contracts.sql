{# A contracted model's column list in its CREATE TABLE. BigQuery enforces contracts with
   `create table t (col type, ...) as (select ...)`; a BigQuery emulator (BIGQUERY_EMULATOR_HOST set, bqemulator
   1.4.0 translates to DuckDB, which has no column list on CREATE TABLE AS) gets none: the contract's column
   names and types are still checked before the build (dbt's assert_columns_equivalent). #}
{% macro bigquery__get_table_columns_and_constraints() -%}
    {%- if env_var('BIGQUERY_EMULATOR_HOST', '') -%}
    {%- else -%}
        {{ default__get_table_columns_and_constraints() }}
    {%- endif -%}
{%- endmacro %}
