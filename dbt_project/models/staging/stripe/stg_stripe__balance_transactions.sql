with balance_transactions as (
    select * from {{ raw_table('stripe', 'balance_transactions') }} as balance_transactions
    where {{ completed_loads('stripe') }}
),

renamed as (
    select
        -- ids
        {{ surrogate_key(['source_account', 'id']) }} as balance_transaction_key,
        source_account,
        id as balance_transaction_id,
        source as source_id,
        -- strings
        type,
        status,
        upper(currency) as currency,
        -- numerics: signed (refunds negative), fee and net as Stripe settles them
        {{ minor_to_major('amount', 'currency') }} as amount,
        {{ minor_to_major('fee', 'currency') }} as fee,
        {{ minor_to_major('net', 'currency') }} as net,
        -- timestamps
        {{ from_unix_seconds('created') }} as created_at,
        {{ from_unix_seconds('available_on') }} as available_on_at
    from balance_transactions
)

select * from renamed
