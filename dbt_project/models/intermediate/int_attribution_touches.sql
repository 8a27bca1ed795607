-- Each counted order with the touches of its person within the lookback before it: one row per order
-- and touch, numbered in time order (ties by touch id), with how long before the order each came.
with orders as (
    select * from {{ ref('fct_orders') }}
    where is_counted and customer_id is not null
),

people as (
    select * from {{ ref('int_people_resolved') }}
),

touches as (
    select
        touches.*,
        people.customer_id
    from {{ ref('int_touches_unioned') }} as touches
    inner join people on touches.email = people.email
),

paired as (
    select
        orders.order_key,
        orders.order_id,
        orders.source_account,
        orders.customer_id,
        orders.created_at as converted_at,
        orders.net_revenue,
        touches.touch_id,
        touches.touched_at,
        touches.source_system,
        touches.channel,
        touches.utm_source,
        touches.utm_medium,
        touches.utm_campaign,
        {{ dbt.datediff('touches.touched_at', 'orders.created_at', 'second') }} / 86400.0 as days_before_conversion
    from orders
    inner join touches
        on orders.customer_id = touches.customer_id
        and touches.touched_at <= orders.created_at
        and touches.touched_at > {{ dbt.dateadd('day', -1 * var('attribution_lookback_days'), 'orders.created_at') }}
),

numbered as (
    select
        *,
        row_number() over (partition by order_key order by touched_at, touch_id) as touch_index,
        count(*) over (partition by order_key) as touch_count
    from paired
)

select * from numbered
