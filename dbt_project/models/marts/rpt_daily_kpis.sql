with as_of as (
    select * from {{ ref('int_as_of_date_resolved') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
    where is_counted
),

refunds as (
    select refund_transactions.*
    from {{ ref('stg_shopify__refund_transactions') }} as refund_transactions
    inner join orders on refund_transactions.order_key = orders.order_key
    where refund_transactions.is_successful_refund
),

people as (
    select * from {{ ref('int_people_resolved') }}
),

failed_charges as (
    select * from {{ ref('stg_stripe__charges') }}
    where status = 'failed'
),

bounds as (
    select
        least(
            (select min(order_date) from orders),
            (select cast(min(contact_created_at) as date) from people)
        ) as first_day,
        (select as_of_date from as_of) as last_day
),

days as (
    {{ date_spine('(select first_day from bounds)', '(select last_day from bounds)') }}
),

order_days as (
    select
        order_date as date_day,
        sum(gross_revenue) as gross_revenue,
        count(*) as orders,
        sum(case when is_first_order then 1 else 0 end) as new_customers
    from orders
    group by order_date
),

refund_days as (
    select cast(processed_at as date) as date_day, sum(shop_amount) as refunds
    from refunds
    group by 1
),

contact_days as (
    select cast(contact_created_at as date) as date_day, count(*) as contacts_created
    from people
    where contact_created_at is not null
    group by 1
),

failed_days as (
    select cast(created_at as date) as date_day, count(*) as failed_payments
    from failed_charges
    group by 1
),

final as (
    select
        days.date_day,
        cast(coalesce(order_days.gross_revenue, 0) as {{ money_type() }}) as gross_revenue,
        cast(coalesce(refund_days.refunds, 0) as {{ money_type() }}) as refunds,
        cast(coalesce(order_days.gross_revenue, 0) - coalesce(refund_days.refunds, 0) as {{ money_type() }})
            as net_revenue,
        cast(coalesce(order_days.orders, 0) as {{ dbt.type_bigint() }}) as orders,
        cast(coalesce(order_days.new_customers, 0) as {{ dbt.type_bigint() }}) as new_customers,
        cast(coalesce(contact_days.contacts_created, 0) as {{ dbt.type_bigint() }}) as contacts_created,
        cast(coalesce(failed_days.failed_payments, 0) as {{ dbt.type_bigint() }}) as failed_payments
    from days
    left join order_days on days.date_day = order_days.date_day
    left join refund_days on days.date_day = refund_days.date_day
    left join contact_days on days.date_day = contact_days.date_day
    left join failed_days on days.date_day = failed_days.date_day
)

select * from final
