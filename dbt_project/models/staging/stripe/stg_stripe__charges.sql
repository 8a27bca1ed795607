with charges as (
    select * from {{ raw_table('stripe', 'charges') }} as charges
    where {{ completed_loads('stripe') }}
),

renamed as (
    select
        -- ids
        {{ surrogate_key(['source_account', 'id']) }} as charge_key,
        source_account,
        id as charge_id,
        customer as customer_id,
        payment_intent as payment_intent_id,
        metadata__shopify_order_id as shopify_order_id,
        -- strings
        status,
        upper(currency) as currency,
        failure_code,
        {{ normalize_email('billing_details__email') }} as billing_email,
        -- numerics
        {{ minor_to_major('amount', 'currency') }} as amount,
        {{ minor_to_major('amount_refunded', 'currency') }} as amount_refunded,
        -- timestamps
        {{ from_unix_seconds('created') }} as created_at,
        -- the dlt load that last wrote the row: the cursor of incremental models
        _dlt_load_id
    from charges
)

select * from renamed
