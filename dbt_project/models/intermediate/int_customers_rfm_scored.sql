-- Recency, frequency and monetary scores of every buyer, and the segment they put the buyer in. Scores
-- are quintiles by rank, so buyers with equal values always share a score (most buyers have one order,
-- and an ntile would split them by id); recency counts from the data's as-of date, never the wall clock.
with as_of as (
    select * from {{ ref('int_as_of_date_resolved') }}
),

orders as (
    select * from {{ ref('int_orders_netted') }}
    where is_counted and customer_id is not null
),

buyers as (
    select
        customer_id,
        count(*) as frequency,
        sum(net_revenue) as monetary,
        max(created_at) as last_order_at
    from orders
    group by customer_id
),

measured as (
    select
        buyers.customer_id,
        {{ dbt.datediff('cast(buyers.last_order_at as date)', 'as_of.as_of_date', 'day') }} as recency_days,
        buyers.frequency,
        buyers.monetary
    from buyers
    cross join as_of
),

ranked as (
    select
        *,
        count(*) over () as buyer_count,
        -- rank 1 is the worst: the longest ago, the fewest orders, the least net revenue
        rank() over (order by recency_days desc) as recency_rank,
        rank() over (order by frequency) as frequency_rank,
        rank() over (order by monetary) as monetary_rank
    from measured
),

scored as (
    select
        customer_id,
        recency_days,
        frequency,
        monetary,
        1 + cast(floor(5.0 * (recency_rank - 1) / buyer_count) as {{ dbt.type_bigint() }}) as r_score,
        1 + cast(floor(5.0 * (frequency_rank - 1) / buyer_count) as {{ dbt.type_bigint() }}) as f_score,
        1 + cast(floor(5.0 * (monetary_rank - 1) / buyer_count) as {{ dbt.type_bigint() }}) as m_score
    from ranked
),

segmented as (
    select
        *,
        {{ rfm_segment('r_score', 'f_score', 'm_score', 'frequency') }} as rfm_segment
    from scored
)

select * from segmented
