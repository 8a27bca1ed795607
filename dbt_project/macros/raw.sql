{# A vendor's raw table, as every staging model reads it. When the table exists, the table itself; when it
   does not (the vendor was never loaded, or dlt never saw a row of that table), an empty relation with
   the columns declared on that source table in the vendor's YAML, each cast to its declared dlt data type
   (`text`, `bigint`, `bool`, `timestamp`), so every model, contract and test downstream still builds and
   the marts simply hold nothing from that vendor. Unit-test fixtures (CTEs) pass through unchanged. #}
{% macro raw_table(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute or relation.is_cte -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set existing = adapter.get_relation(
        database=relation.database, schema=relation.schema, identifier=relation.identifier) -%}
    {%- if existing is not none -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set node = graph.sources['source.' ~ project_name ~ '.' ~ source_name ~ '.' ~ table_name] -%}
    {%- set columns = [] -%}
    {%- for column in node.columns.values() -%}
        {%- if not column.data_type -%}
            {{ exceptions.raise_compiler_error(
                "source " ~ source_name ~ "." ~ table_name ~ ": column " ~ column.name ~ " declares no data_type") }}
        {%- endif -%}
        {%- do columns.append('cast(null as ' ~ dlt_data_type(column.data_type) ~ ') as ' ~ adapter.quote(column.name)) -%}
    {%- endfor -%}
    {%- if not columns -%}
        {{ exceptions.raise_compiler_error(
            "source " ~ source_name ~ "." ~ table_name ~ " does not exist and declares no columns to stand in for it") }}
    {%- endif -%}
    {{ return('(select ' ~ columns | join(', ') ~ ' limit 0)') }}
{%- endmacro %}

{# A dlt data type as this warehouse's column type (what dlt creates for it). #}
{% macro dlt_data_type(data_type) -%}
    {%- if data_type == 'text' -%}{{ dbt.type_string() }}
    {%- elif data_type == 'bigint' -%}{{ dbt.type_bigint() }}
    {%- elif data_type == 'bool' -%}{{ dbt.type_boolean() }}
    {%- elif data_type == 'timestamp' -%}{{ adapter.dispatch('dlt_timestamp_type', 'journey')() }}
    {%- else -%}{{ exceptions.raise_compiler_error("no warehouse type for dlt data type " ~ data_type) }}
    {%- endif -%}
{%- endmacro %}

{% macro default__dlt_timestamp_type() -%}timestamp with time zone{%- endmacro %}
{% macro bigquery__dlt_timestamp_type() -%}timestamp{%- endmacro %}
