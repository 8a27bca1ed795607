with activecampaign_contacts as (
    select * from {{ ref('stg_activecampaign__contacts') }} where not is_deleted
),

hubspot_contacts as (
    select * from {{ ref('stg_hubspot__contacts') }} where not is_deleted
),

shopify_customers as (
    select * from {{ ref('stg_shopify__customers') }}
),

shopify_orders as (
    select * from {{ ref('stg_shopify__orders') }}
),

stripe_customers as (
    select * from {{ ref('stg_stripe__customers') }}
),

unioned as (
    select 'activecampaign' as system, source_account, contact_id as record_id, email, created_at,
        true as is_crm_contact
    from activecampaign_contacts
    union all
    select 'hubspot', source_account, contact_id, email, created_at, true
    from hubspot_contacts
    union all
    select 'shopify_customer', source_account, cast(customer_id as {{ dbt.type_string() }}), email, created_at, false
    from shopify_customers
    union all
    -- guest checkouts are known only by the email on the order
    select 'shopify_order', source_account, cast(order_id as {{ dbt.type_string() }}), email, created_at, false
    from shopify_orders
    union all
    select 'stripe', source_account, customer_id, email, created_at, false
    from stripe_customers
),

keyed as (
    select
        {{ surrogate_key(['system', 'source_account', 'record_id']) }} as record_key,
        *
    from unioned
)

select * from keyed
