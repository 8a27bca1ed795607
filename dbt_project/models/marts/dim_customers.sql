with people as (
    select * from {{ ref('int_people_resolved') }}
),

orders as (
    select * from {{ ref('int_orders_netted') }}
    where is_counted
),

rfm as (
    select * from {{ ref('int_customers_rfm_scored') }}
),

touches as (
    select * from {{ ref('int_touches_unioned') }}
),

-- the touch that brought the person in: their earliest, ties by touch id
first_touches as (
    select
        email,
        channel,
        utm_source,
        utm_medium,
        utm_campaign,
        touched_at,
        row_number() over (partition by email order by touched_at, touch_id) as touch_order
    from touches
),

order_totals as (
    select
        customer_id,
        count(*) as lifetime_orders,
        sum(gross_revenue) as lifetime_gross_revenue,
        sum(refunds) as lifetime_refunds,
        sum(net_revenue) as lifetime_net_revenue,
        min(created_at) as first_order_at,
        max(created_at) as last_order_at
    from orders
    group by customer_id
),

final as (
    select
        -- ids
        people.customer_id,
        people.activecampaign_contact_id,
        people.hubspot_contact_id,
        people.shopify_customer_id,
        people.stripe_customer_id,
        -- strings
        people.email,
        case
            when order_totals.lifetime_orders is null then 'prospect'
            when order_totals.lifetime_orders = 1 then 'new'
            else 'returning'
        end as customer_type,
        coalesce(rfm.rfm_segment, 'prospect') as rfm_segment,
        first_touches.channel as acquisition_channel,
        first_touches.utm_source as acquisition_source,
        first_touches.utm_medium as acquisition_medium,
        first_touches.utm_campaign as acquisition_campaign,
        -- numerics
        people.source_records,
        coalesce(order_totals.lifetime_orders, 0) as lifetime_orders,
        cast(coalesce(order_totals.lifetime_gross_revenue, 0) as {{ money_type() }}) as lifetime_gross_revenue,
        cast(coalesce(order_totals.lifetime_refunds, 0) as {{ money_type() }}) as lifetime_refunds,
        cast(coalesce(order_totals.lifetime_net_revenue, 0) as {{ money_type() }}) as lifetime_net_revenue,
        cast({{ money_divide('order_totals.lifetime_gross_revenue', 'order_totals.lifetime_orders') }}
            as {{ money_type() }}) as average_order_value,
        rfm.recency_days as days_since_last_order,
        rfm.r_score,
        rfm.f_score,
        rfm.m_score,
        -- booleans
        people.has_marketing_consent,
        coalesce(order_totals.lifetime_orders > 1, false) as is_repeat_buyer,
        -- timestamps
        people.contact_created_at,
        people.first_seen_at,
        first_touches.touched_at as first_touch_at,
        order_totals.first_order_at,
        order_totals.last_order_at
    from people
    left join order_totals on people.customer_id = order_totals.customer_id
    left join rfm on people.customer_id = rfm.customer_id
    left join first_touches on people.email = first_touches.email and first_touches.touch_order = 1
)

select * from final
