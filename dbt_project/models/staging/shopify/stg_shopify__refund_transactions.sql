with transactions as (
    select * from {{ raw_table('shopify', 'orders__refunds__transactions') }} as orders__refunds__transactions
),

orders as (
    -- to carry the shop (source account) onto the child rows, keep completed loads, and convert at the
    -- order's own rate
    select
        _dlt_id,
        _dlt_load_id,
        source_account,
        currency as shop_currency,
        {{ to_money('total_price_set__shop_money__amount') }} as shop_total,
        {{ to_money('total_price_set__presentment_money__amount') }} as presentment_total
    from {{ raw_table('shopify', 'orders') }} as orders
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
        -- strings
        transactions.kind,
        transactions.status,
        transactions.currency,
        -- numerics
        {{ to_money('transactions.amount') }} as amount,
        case
            when upper(transactions.currency) = upper(orders.shop_currency)
                then {{ to_money('transactions.amount') }}
            else {{ convert_at_rate(to_money('transactions.amount'), 'orders.shop_total', 'orders.presentment_total') }}
        end as shop_amount,
        -- booleans
        transactions.kind = 'refund' and transactions.status = 'success' as is_successful_refund,
        -- timestamps
        {{ to_utc('transactions.processed_at') }} as processed_at,
        -- the dlt load that last wrote the row: the cursor of incremental models
        orders._dlt_load_id as _dlt_load_id
    from transactions
    inner join orders on transactions._dlt_root_id = orders._dlt_id
)

select * from renamed
