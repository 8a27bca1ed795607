{# A list of strings (usually a var) as a SQL list of quoted literals, for `in (...)`: ['a', 'b'] -> 'a', 'b'. #}
{% macro sql_list(values) -%}
    {{ "'" ~ values | join("', '") ~ "'" }}
{%- endmacro %}
