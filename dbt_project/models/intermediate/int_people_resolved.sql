with records as (
    select * from {{ ref('int_identity_records_unioned') }}
    where customer_id is not null
),

people as (
    select
        customer_id,
        min(email) as email,
        min(case when system = 'activecampaign' then record_id end) as activecampaign_contact_id,
        min(case when system = 'hubspot' then record_id end) as hubspot_contact_id,
        min(case when system = 'shopify_customer' then record_id end) as shopify_customer_id,
        min(case when system = 'stripe' then record_id end) as stripe_customer_id,
        count(*) as source_records,
        min(case when is_crm_contact then created_at end) as contact_created_at,
        min(created_at) as first_seen_at,
        -- consent only where some system records it and none records a refusal
        coalesce(min(case when marketing_consent then 1 when not marketing_consent then 0 end) = 1, false)
            as has_marketing_consent
    from records
    group by customer_id
)

select * from people
