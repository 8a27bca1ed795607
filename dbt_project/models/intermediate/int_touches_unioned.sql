with hubspot_touches as (
    select * from {{ ref('stg_hubspot__contact_touches') }}
),

hubspot_contacts as (
    select * from {{ ref('stg_hubspot__contacts') }} where not is_deleted
),

shopify_orders as (
    select * from {{ ref('stg_shopify__orders') }} where not is_deleted
),

hubspot as (
    -- touches of live contacts only: a deleted contact's history stays in raw, but its person may be gone
    select
        'hubspot' as source_system,
        hubspot_touches.source_account,
        hubspot_touches.contact_id as source_record_id,
        hubspot_contacts.email,
        hubspot_touches.touched_at,
        hubspot_touches.utm_source,
        hubspot_touches.utm_medium,
        hubspot_touches.utm_campaign,
        hubspot_touches.channel
    from hubspot_touches
    inner join hubspot_contacts on hubspot_touches.contact_key = hubspot_contacts.contact_key
),

shopify as (
    -- the converting session's UTM parameters from the order's landing site. Shopify does not record when
    -- that session began, so the touch is stamped at the order's created_at (the session came before it).
    select
        'shopify' as source_system,
        source_account,
        cast(order_id as {{ dbt.type_string() }}) as source_record_id,
        email,
        created_at as touched_at,
        utm_source,
        utm_medium,
        utm_campaign,
        {{ utm_channel('utm_source', 'utm_medium') }} as channel
    from shopify_orders
    where utm_source is not null
),

shopify_unseen_by_hubspot as (
    -- the same session HubSpot tracked (same email and UTM parameters, 0 to 30 minutes before the order)
    -- is kept once, as HubSpot's touch: it has the session's real time
    select shopify.*
    from shopify
    left join hubspot
        on shopify.email = hubspot.email
        and shopify.utm_source = hubspot.utm_source
        and shopify.utm_medium = hubspot.utm_medium
        and coalesce(shopify.utm_campaign, '') = coalesce(hubspot.utm_campaign, '')
        and hubspot.touched_at <= shopify.touched_at
        and hubspot.touched_at >= {{ dbt.dateadd('minute', -30, 'shopify.touched_at') }}
    where hubspot.source_record_id is null
),

unioned as (
    select * from hubspot
    union all
    select * from shopify_unseen_by_hubspot
),

final as (
    select
        {{ surrogate_key(['source_system', 'source_account', 'source_record_id', 'touched_at']) }} as touch_id,
        source_system,
        source_account,
        source_record_id,
        email,
        touched_at,
        utm_source,
        utm_medium,
        utm_campaign,
        channel
    from unioned
)

select * from final
