with records as (
    select * from {{ ref('int_identity_records_unioned') }}
    where email is not null
),

people as (
    select
        {{ surrogate_key(['email']) }} as customer_id,
        email,
        min(case when system = 'activecampaign' then record_id end) as activecampaign_contact_id,
        min(case when system = 'hubspot' then record_id end) as hubspot_contact_id,
        min(case when system = 'shopify_customer' then record_id end) as shopify_customer_id,
        min(case when system = 'stripe' then record_id end) as stripe_customer_id,
        min(case when is_crm_contact then created_at end) as contact_created_at,
        min(created_at) as first_seen_at
    from records
    group by email
)

select * from people
