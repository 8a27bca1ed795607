{# The RFM segment of a buyer from their 1-5 scores (5 best) and order count; the first branch that holds
   wins. Frequency and monetary are averaged into one loyalty score, as in the common RFM grids. #}
{% macro rfm_segment(r, f, m, orders) -%}
    case
        when {{ r }} >= 4 and ({{ f }} + {{ m }}) >= 8 then 'champions'
        when {{ r }} >= 4 and {{ orders }} = 1 then 'new_customers'
        when {{ r }} >= 3 and ({{ f }} + {{ m }}) >= 6 then 'loyal'
        when {{ r }} >= 3 then 'promising'
        when {{ r }} = 2 and ({{ f }} + {{ m }}) >= 6 then 'at_risk'
        when {{ r }} = 1 and ({{ f }} + {{ m }}) >= 8 then 'cannot_lose'
        when {{ r }} = 2 then 'hibernating'
        else 'lost'
    end
{%- endmacro %}
