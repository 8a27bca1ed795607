-- The data's "today": the latest source timestamp loaded. Models use it instead of the wall clock, so
-- the same data always builds the same marts (DESIGN.md, "As-of, not wall clock").
with orders as (
    select max(updated_at) as latest_at from {{ ref('stg_shopify__orders') }}
),

refunds as (
    select max(processed_at) as latest_at from {{ ref('stg_shopify__refund_transactions') }}
),

charges as (
    select max(created_at) as latest_at from {{ ref('stg_stripe__charges') }}
),

contacts as (
    select max(updated_at) as latest_at from {{ ref('stg_activecampaign__contacts') }}
    union all
    select max(updated_at) from {{ ref('stg_hubspot__contacts') }}
),

latest as (
    select latest_at from orders
    union all select latest_at from refunds
    union all select latest_at from charges
    union all select latest_at from contacts
)

select
    max(latest_at) as as_of_at,
    cast(max(latest_at) as date) as as_of_date
from latest
