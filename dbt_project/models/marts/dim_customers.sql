with people as (
    select * from {{ ref('int_people_resolved') }}
),

orders as (
    select * from {{ ref('int_orders_netted') }}
    where is_counted
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
        people.customer_id,
        people.email,
        people.activecampaign_contact_id,
        people.hubspot_contact_id,
        people.shopify_customer_id,
        people.stripe_customer_id,
        people.contact_created_at,
        people.first_seen_at,
        order_totals.first_order_at,
        order_totals.last_order_at,
        coalesce(order_totals.lifetime_orders, 0) as lifetime_orders,
        cast(coalesce(order_totals.lifetime_gross_revenue, 0) as {{ money_type() }}) as lifetime_gross_revenue,
        cast(coalesce(order_totals.lifetime_refunds, 0) as {{ money_type() }}) as lifetime_refunds,
        cast(coalesce(order_totals.lifetime_net_revenue, 0) as {{ money_type() }}) as lifetime_net_revenue
    from people
    left join order_totals on people.customer_id = order_totals.customer_id
)

select * from final
