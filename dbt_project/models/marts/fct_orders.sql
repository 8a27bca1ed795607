{{
    config(
        partition_by={'field': 'created_at', 'data_type': 'datetime', 'granularity': 'month'}
            if target.type == 'bigquery' else none,
        cluster_by=['customer_id'] if target.type == 'bigquery' else none
    )
}}
with orders as (
    select * from {{ ref('int_orders_netted') }}
),

payments as (
    select * from {{ ref('int_payments_matched') }}
),

-- the charge that paid each order: a successful sale matched to a succeeded charge of the same amount
paid_by as (
    select
        order_key,
        min(stripe_charge_id) as stripe_charge_id,
        sum(stripe_amount) as stripe_amount
    from payments
    where is_matched
        and shopify_kind in ('sale', 'capture')
        and shopify_status = 'success'
        and stripe_status = 'succeeded'
        and amount_difference = 0
    group by order_key
),

sequenced as (
    select
        orders.*,
        case when orders.is_counted then
            row_number() over (
                partition by orders.customer_id, orders.is_counted
                order by orders.created_at, orders.order_id
            )
        end as order_sequence
    from orders
),

final as (
    select
        -- ids
        sequenced.order_key,
        sequenced.source_account,
        sequenced.order_id,
        sequenced.order_name,
        sequenced.customer_id,
        -- the person as a number within this build, for panels that group or count people over many orders:
        -- an integer groups several times faster than the text id, and a rank cannot collide as a hash could
        case when sequenced.customer_id is not null
            then dense_rank() over (order by sequenced.customer_id) end as customer_number,
        sequenced.shopify_customer_id,
        paid_by.stripe_charge_id,
        -- strings
        sequenced.email,
        sequenced.financial_status,
        sequenced.shop_currency as currency,
        sequenced.country,
        -- numerics
        sequenced.gross_revenue,
        cast(sequenced.refunds as {{ money_type() }}) as refunds,
        cast(sequenced.net_revenue as {{ money_type() }}) as net_revenue,
        sequenced.order_sequence,
        -- booleans
        sequenced.is_counted,
        sequenced.is_cancelled,
        sequenced.order_sequence = 1 as is_first_order,
        sequenced.order_sequence > 1 as is_repeat_order,
        paid_by.stripe_charge_id is not null as is_paid_by_stripe,
        coalesce(paid_by.stripe_amount = sequenced.gross_revenue_presentment, false) as is_payment_reconciled,
        -- timestamps
        sequenced.created_at,
        cast(sequenced.created_at as date) as order_date,
        sequenced.cancelled_at
    from sequenced
    left join paid_by on sequenced.order_key = paid_by.order_key
)

select * from final
