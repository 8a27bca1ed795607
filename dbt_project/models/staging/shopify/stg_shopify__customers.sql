with customers as (
    select * from {{ raw_table('shopify', 'customers') }} as customers
    where {{ completed_loads('shopify') }}
),

-- Shopify has no deletion feed for customers: each run lists every id, and a loaded customer missing from
-- its account's last listing was deleted (an account never listed flags nothing)
seen as (
    select source_account as seen_account, id as seen_id
    from {{ raw_table('shopify', 'customer_ids_seen') }} as seen
),

seen_accounts as (
    select distinct seen_account as listed_account from seen
),

renamed as (
    select
        -- ids
        {{ surrogate_key(['source_account', 'id']) }} as customer_key,
        source_account,
        id as customer_id,
        -- strings
        {{ normalize_email('email') }} as email,
        first_name,
        last_name,
        email_marketing_consent__state as email_marketing_consent,
        -- booleans
        email_marketing_consent__state = 'subscribed' as accepts_marketing,
        listed_account is not null and seen_id is null as is_deleted,
        -- timestamps
        {{ to_utc('created_at') }} as created_at,
        {{ to_utc('updated_at') }} as updated_at,
        -- the dlt load that last wrote the row: the cursor of incremental models
        _dlt_load_id
    from customers
    left join seen_accounts on customers.source_account = seen_accounts.listed_account
    left join seen on customers.source_account = seen.seen_account and customers.id = seen.seen_id
)

select * from renamed
