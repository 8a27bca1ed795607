{# Events at the same instant in the order they happen in a journey (a touch before the contact it
   creates, an order before its payment), so sequences are the same on every engine. #}
{% macro event_type_order(column) -%}
    case {{ column }}
        when 'marketing_touch' then 1
        when 'contact_created' then 2
        when 'lifecycle_stage_changed' then 3
        when 'deal_created' then 4
        when 'order_placed' then 5
        when 'payment_failed' then 6
        when 'payment_succeeded' then 7
        when 'deal_won' then 8
        when 'deal_lost' then 8
        when 'refund_issued' then 9
        else 10
    end
{%- endmacro %}
