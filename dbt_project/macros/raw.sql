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
    {%- if relation_exists(relation) -%}
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

{# Whether a table exists, asked of the warehouse itself. Not `adapter.get_relation`: for a schema no model
   lives in, dbt lists the schema on first use and adds what it found to its relation cache one relation at
   a time, and marks the schema cached at the first; another thread compiling at that moment reads the
   partial listing and is told an existing raw table is missing (seen as a staging model built from the
   empty stand-in, in one run in many, with `threads: 2`). #}
{% macro relation_exists(relation) -%}
    {{ return(adapter.dispatch('relation_exists', 'journey')(relation)) }}
{%- endmacro %}

{% macro default__relation_exists(relation) -%}
    {#- dbt-bigquery asks the API for the table itself unless the schema is cached, which raw schemas are not -#}
    {{ return(adapter.get_relation(database=relation.database, schema=relation.schema,
                                   identifier=relation.identifier) is not none) }}
{%- endmacro %}

{% macro duckdb__relation_exists(relation) -%}
    {%- set found = run_query(
        "select count(*) from information_schema.tables where lower(table_catalog) = lower('" ~ relation.database
        ~ "') and lower(table_schema) = lower('" ~ relation.schema ~ "') and lower(table_name) = lower('"
        ~ relation.identifier ~ "')") -%}
    {{ return(found.columns[0].values()[0] > 0) }}
{%- endmacro %}
