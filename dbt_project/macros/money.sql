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

{# An amount in an order's presentment currency in the shop's currency, at the order's own rate (shop total /
   presentment total), rounded half-even to the cent (DESIGN.md, "Refunds"). #}
{% macro convert_at_rate(amount, shop_total, presentment_total) -%}
    {{ return(adapter.dispatch('convert_at_rate', 'journey')(amount, shop_total, presentment_total)) }}
{%- endmacro %}

{# In whole cents: a product of integers divided once, so an exact half is exact and rounds to even. #}
{% macro default__convert_at_rate(amount, shop_total, presentment_total) -%}
    cast(round_even(
        cast(round({{ amount }} * 100) as bigint) * cast(round({{ shop_total }} * 100) as bigint)
        / cast(round({{ presentment_total }} * 100) as bigint), 0) / 100 as {{ money_type() }})
{%- endmacro %}

{% macro bigquery__convert_at_rate(amount, shop_total, presentment_total) -%}
    round(cast({{ amount }} as numeric) * cast({{ shop_total }} as numeric) / cast({{ presentment_total }} as numeric),
        2, 'ROUND_HALF_EVEN')
{%- endmacro %}
