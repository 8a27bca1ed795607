{# Money is an exact decimal in the currency's major unit, never a float. #}
{% macro money_type() -%}
    {{ return(adapter.dispatch('money_type', 'journey')()) }}
{%- endmacro %}

{% macro default__money_type() -%}decimal(18, 2){%- endmacro %}
{% macro bigquery__money_type() -%}numeric{%- endmacro %}

{# A vendor's decimal string ("409.94") as money. #}
{% macro to_money(column) -%}
    cast({{ column }} as {{ money_type() }})
{%- endmacro %}

{# Stripe's integer minor units as money: by each currency's exponent (zero-decimal currencies unscaled). #}
{% macro minor_to_major(amount, currency) -%}
    case
        when lower({{ currency }}) in ({{ sql_list(var('zero_decimal_currencies')) }})
            then cast({{ amount }} as {{ money_type() }})
        else cast(cast({{ amount }} as {{ money_type() }}) * 0.01 as {{ money_type() }})
    end
{%- endmacro %}

{# Money divided by a count (an average), rounded half away from zero to the cent, exactly on every engine:
   DuckDB divides decimals as doubles, so there it is done on whole cents; BigQuery divides NUMERIC exactly.
   Null when the count is zero or null. #}
{% macro money_divide(amount, count) -%}
    {{ return(adapter.dispatch('money_divide', 'journey')(amount, count)) }}
{%- endmacro %}

{% macro default__money_divide(amount, count) -%}
    cast(
        sign({{ amount }}) * ((2 * abs(cast({{ amount }} * 100 as hugeint)) + {{ count }}) // (2 * nullif({{ count }}, 0)))
        as {{ money_type() }}
    ) * 0.01
{%- endmacro %}

{% macro bigquery__money_divide(amount, count) -%}
    round(cast({{ amount }} as numeric) / nullif({{ count }}, 0), 2)
{%- endmacro %}
