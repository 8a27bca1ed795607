with customers as (
    select * from {{ raw_table('shopify', 'customers') }} as customers
    where {{ completed_loads('shopify') }}
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
        -- timestamps
        {{ to_utc('created_at') }} as created_at,
        {{ to_utc('updated_at') }} as updated_at,
        -- the dlt load that last wrote the row: the cursor of incremental models
        _dlt_load_id
    from customers
)

select * from renamed
