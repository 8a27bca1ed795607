{{
    config(
        materialized='incremental',
        unique_key='order_key',
        incremental_strategy='merge' if target.type == 'bigquery' else 'delete+insert',
        on_schema_change='append_new_columns',
        post_hook="{% if is_incremental() %}delete from {{ this }} where order_key in
            (select order_key from {{ ref('stg_shopify__orders') }} where is_deleted){% endif %}"
    )
}}
-- Each order with its refunds and its person. Incremental on the dlt load that wrote the order: its refund
-- transactions are child rows of the same load, and its person is a function of its own email (people are
-- keyed by normalized email), so an order whose load is older than this table's latest is unchanged. A
-- deleted order (dropped here, as in a full build) is removed by the post-hook.
with orders as (
    select * from {{ ref('stg_shopify__orders') }}
    where not is_deleted
    {%- if is_incremental() %}
        and _dlt_load_id > (select coalesce(max(_dlt_load_id), '') from {{ this }})
    {%- endif %}
),

refund_transactions as (
    select * from {{ ref('stg_shopify__refund_transactions') }}
    {% if is_incremental() -%}
    where _dlt_load_id > (select coalesce(max(_dlt_load_id), '') from {{ this }})
    {%- endif %}
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
