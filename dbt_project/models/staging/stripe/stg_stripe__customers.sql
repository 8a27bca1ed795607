with customers as (
    select * from {{ raw_table('stripe', 'customers') }} as customers
    where {{ completed_loads('stripe') }}
),

renamed as (
    select
        -- ids
        {{ surrogate_key(['source_account', 'id']) }} as customer_key,
        source_account,
        id as customer_id,
        -- strings
        {{ normalize_email('email') }} as email,
        name,
        -- booleans
        coalesce(deleted, false) as is_deleted,
        -- timestamps
        {{ from_unix_seconds('created') }} as created_at,
        -- the dlt load that last wrote the row: the cursor of incremental models
        _dlt_load_id
    from customers
)

select * from renamed
