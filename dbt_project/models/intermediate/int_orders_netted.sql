with orders as (
    select * from {{ ref('stg_shopify__orders') }} where not is_deleted
),

refund_transactions as (
    select * from {{ ref('stg_shopify__refund_transactions') }}
),

people as (
    select * from {{ ref('int_people_resolved') }}
),

refunds as (
    select order_key, sum(shop_amount) as refunds
    from refund_transactions
    where is_successful_refund
    group by order_key
),

netted as (
    select
        orders.*,
        people.customer_id,
        coalesce(refunds.refunds, 0) as refunds,
        orders.gross_revenue - coalesce(refunds.refunds, 0) as net_revenue
    from orders
    left join refunds on orders.order_key = refunds.order_key
    left join people on orders.email = people.email
)

select * from netted
