with transactions as (
    select * from {{ raw_table('shopify', 'orders__transactions') }} as orders__transactions
),

orders as (
    -- only to carry the shop (source account) onto the child rows and keep completed loads
    select _dlt_id, source_account from {{ raw_table('shopify', 'orders') }} as orders
    where {{ completed_loads('shopify') }}
),

renamed as (
    select
        -- ids
        {{ surrogate_key(['orders.source_account', 'transactions.id']) }} as transaction_key,
        {{ surrogate_key(['orders.source_account', 'transactions.order_id']) }} as order_key,
        orders.source_account,
        transactions.id as transaction_id,
        transactions.order_id,
        transactions.parent_id,
        -- what the payment provider recorded: for Stripe the charge id and the payment intent, either of
        -- which a checkout app may leave empty
        nullif(trim(transactions.{{ adapter.quote('authorization') }}), '') as authorization_code,
        nullif(trim(transactions.receipt__payment_intent), '') as payment_intent_id,
        -- strings
        transactions.kind,
        transactions.status,
        transactions.gateway,
        upper(transactions.currency) as currency,
        -- numerics
        {{ to_money('transactions.amount') }} as amount,
        -- booleans
        transactions.kind in ('sale', 'capture', 'authorization') as is_payment,
        transactions.test as is_test,
        -- timestamps
        {{ to_utc('transactions.processed_at') }} as processed_at
    from transactions
    inner join orders on transactions._dlt_root_id = orders._dlt_id
)

select * from renamed
