-- Credit for each counted order over its person's touches within the lookback, under five models;
-- credits sum to 1 per order and model, and each order's net revenue is shared out to the cent.
{% set models = ['first_touch', 'last_touch', 'linear', 'position_based', 'time_decay'] %}
{{
    config(
        partition_by={'field': 'converted_at', 'data_type': 'datetime', 'granularity': 'month'}
            if target.type == 'bigquery' else none,
        cluster_by=['attribution_model', 'customer_id'] if target.type == 'bigquery' else none
    )
}}

with touches as (
    select * from {{ ref('int_attribution_touches') }}
),

decayed as (
    select
        *,
        power(2.0, -1.0 * days_before_conversion / {{ var('attribution_half_life_days') }}) as decay_weight
    from touches
),

weighted as (
    select
        *,
        sum(decay_weight) over (partition by order_key) as decay_weight_total
    from decayed
),

credited as (
    {% for model in models %}
    select
        weighted.*,
        '{{ model }}' as attribution_model,
        {% if model == 'first_touch' -%}
        case when touch_index = 1 then 1.0 else 0.0 end
        {%- elif model == 'last_touch' -%}
        case when touch_index = touch_count then 1.0 else 0.0 end
        {%- elif model == 'linear' -%}
        1.0 / touch_count
        {%- elif model == 'position_based' -%}
        -- 40/20/40: first and last 40% each, the middle share 20%; one touch takes all, two split evenly
        case
            when touch_count = 1 then 1.0
            when touch_count = 2 then 0.5
            when touch_index = 1 or touch_index = touch_count then 0.4
            else 0.2 / (touch_count - 2)
        end
        {%- else -%}
        decay_weight / decay_weight_total
        {%- endif %} as credit
    from weighted
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

-- net revenue in cents, shared by credit: each touch gets the floor of its share, and the cents left over
-- go one each to the touches with the largest remainders (ties by touch order), so shares add up exactly
cents as (
    select
        *,
        cast(round(net_revenue * 100) as {{ dbt.type_bigint() }}) as net_cents,
        floor(round(net_revenue * 100) * credit) as floor_cents,
        round(net_revenue * 100) * credit - floor(round(net_revenue * 100) * credit) as remainder_cents
    from credited
),

allocated as (
    select
        *,
        net_cents - sum(floor_cents) over (partition by order_key, attribution_model) as cents_left,
        row_number() over (
            partition by order_key, attribution_model order by remainder_cents desc, touch_index
        ) as remainder_rank
    from cents
),

final as (
    select
        -- ids
        {{ surrogate_key(['order_key', 'touch_id', 'attribution_model']) }} as attribution_id,
        order_key,
        order_id,
        source_account,
        touch_id,
        customer_id,
        -- strings
        attribution_model,
        source_system as touch_source_system,
        channel,
        utm_source,
        utm_medium,
        utm_campaign,
        -- numerics
        touch_index,
        touch_count,
        days_before_conversion,
        credit,
        cast(
            (floor_cents + case when remainder_rank <= cents_left then 1 else 0 end) / 100.0 as {{ money_type() }}
        ) as attributed_net_revenue,
        -- timestamps
        touched_at,
        converted_at
    from allocated
)

-- stored in time order, so readers filtering a date range skip whole row groups (DuckDB zone maps)
select * from final
order by converted_at, order_key, touch_index, attribution_model
