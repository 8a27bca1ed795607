-- Buyers grouped by the month of their first counted order, followed month by month up to the data's
-- as-of month: every cohort has a row for every month since it began, active or not.
with as_of as (
    select * from {{ ref('int_as_of_date_resolved') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
    where is_counted
),

first_orders as (
    select
        customer_id,
        {{ dbt.date_trunc('month', 'min(order_date)') }} as cohort_month
    from orders
    group by customer_id
),

cohorts as (
    select cohort_month, count(*) as cohort_size
    from first_orders
    group by cohort_month
),

months as (
    select
        cohorts.cohort_month,
        cohorts.cohort_size,
        spine.month_number
    from cohorts
    cross join as_of
    inner join (select n as month_number from ({{ integer_spine(0, 1200) }}) as numbers) as spine
        on spine.month_number
        <= {{ dbt.datediff('cohorts.cohort_month', dbt.date_trunc('month', 'as_of.as_of_date'), 'month') }}
),

activity as (
    select
        first_orders.cohort_month,
        {{ dbt.datediff('first_orders.cohort_month', dbt.date_trunc('month', 'orders.order_date'), 'month') }}
            as month_number,
        count(distinct orders.customer_id) as active_customers,
        count(*) as orders,
        sum(orders.net_revenue) as net_revenue
    from orders
    inner join first_orders on orders.customer_id = first_orders.customer_id
    group by 1, 2
),

final as (
    select
        {{ surrogate_key(['cast(months.cohort_month as date)', 'months.month_number']) }} as cohort_month_key,
        cast(months.cohort_month as date) as cohort_month,
        months.month_number,
        months.cohort_size,
        coalesce(activity.active_customers, 0) as active_customers,
        coalesce(activity.orders, 0) as orders,
        cast(coalesce(activity.net_revenue, 0) as {{ money_type() }}) as net_revenue,
        round(1.0 * coalesce(activity.active_customers, 0) / months.cohort_size, 4) as retention_rate,
        cast({{ money_divide(
            'sum(coalesce(activity.net_revenue, 0)) over (
                partition by months.cohort_month order by months.month_number
                rows between unbounded preceding and current row
            )', 'months.cohort_size') }} as {{ money_type() }}
        ) as cumulative_net_revenue_per_customer
    from months
    left join activity
        on months.cohort_month = activity.cohort_month and months.month_number = activity.month_number
)

select * from final
