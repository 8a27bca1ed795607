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

charges as (
    select * from {{ ref('stg_stripe__charges') }}
    where customer_id is not null
),

-- a Stripe customer without an email is the person whose orders their charges paid
paid_order_emails as (
    select
        charges.source_account,
        charges.customer_id,
        min(shopify_orders.email) as email
    from charges
    inner join shopify_orders on charges.shopify_order_id = cast(shopify_orders.order_id as {{ dbt.type_string() }})
    where shopify_orders.email is not null
    group by charges.source_account, charges.customer_id
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
