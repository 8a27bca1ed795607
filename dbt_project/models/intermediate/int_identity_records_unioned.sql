with activecampaign_contacts as (
    select * from {{ ref('stg_activecampaign__contacts') }} where not is_deleted
),

hubspot_contacts as (
    select * from {{ ref('stg_hubspot__contacts') }} where not is_deleted
),

shopify_customers as (
    select * from {{ ref('stg_shopify__customers') }} where not is_deleted
),

shopify_orders as (
    select * from {{ ref('stg_shopify__orders') }}
),

stripe_customers as (
    select * from {{ ref('stg_stripe__customers') }} where not is_deleted
),

payments as (
    select * from {{ ref('int_payments_matched') }}
    where is_matched and stripe_customer_id is not null
),

-- a Stripe customer without an email is the person whose orders their charges paid (by the matching)
paid_order_emails as (
    select
        payments.stripe_account as source_account,
        payments.stripe_customer_id as customer_id,
        min(shopify_orders.email) as email
    from payments
    inner join shopify_orders on payments.order_key = shopify_orders.order_key
    where shopify_orders.email is not null
    group by payments.stripe_account, payments.stripe_customer_id
),

stripe_payers as (
    select
        stripe_customers.source_account,
        stripe_customers.customer_id,
        coalesce(stripe_customers.email, paid_order_emails.email) as email,
        stripe_customers.created_at
    from stripe_customers
    left join paid_order_emails
        on stripe_customers.source_account = paid_order_emails.source_account
        and stripe_customers.customer_id = paid_order_emails.customer_id
),

unioned as (
    -- marketing_consent: what the record says of email marketing consent (null: it says nothing)
    select 'activecampaign' as system, source_account, contact_id as record_id, email, created_at,
        true as is_crm_contact, cast(null as {{ dbt.type_boolean() }}) as marketing_consent
    from activecampaign_contacts
    union all
    select 'hubspot', source_account, contact_id, email, created_at, true, not has_opted_out
    from hubspot_contacts
    union all
    select 'shopify_customer', source_account, cast(customer_id as {{ dbt.type_string() }}), email, created_at, false,
        accepts_marketing
    from shopify_customers
    union all
    -- guest checkouts are known only by the email on the order
    select 'shopify_order', source_account, cast(order_id as {{ dbt.type_string() }}), email, created_at, false, null
    from shopify_orders
    union all
    select 'stripe', source_account, customer_id, email, created_at, false, null
    from stripe_payers
),

keyed as (
    select
        {{ surrogate_key(['system', 'source_account', 'record_id']) }} as record_key,
        case when email is not null then {{ surrogate_key(['email']) }} end as customer_id,
        *
    from unioned
)

select * from keyed
