with orders as (
    select * from {{ raw_table('shopify', 'orders') }} as orders
    where {{ completed_loads('shopify') }}
),

deletions as (
    select
        source_account as deleted_account,
        id as deleted_order_id,
        deleted_at as destroyed_at,
        _dlt_load_id as deletion_load_id
    from {{ raw_table('shopify', 'order_deletions') }} as deletions
    where {{ completed_loads('shopify') }}
),

renamed as (
    select
        -- ids
        {{ surrogate_key(['source_account', 'id']) }} as order_key,
        source_account,
        id as order_id,
        customer__id as shopify_customer_id,
        name as order_name,
        -- strings
        {{ normalize_email('email') }} as email,
        financial_status,
        currency as shop_currency,
        presentment_currency,
        billing_address__country_code as country,
        landing_site,
        referring_site,
        -- the converting session's UTM parameters, as the landing site recorded them
        {{ query_parameter('landing_site', 'utm_source') }} as utm_source,
        {{ query_parameter('landing_site', 'utm_medium') }} as utm_medium,
        {{ query_parameter('landing_site', 'utm_campaign') }} as utm_campaign,
        -- numerics
        {{ to_money('total_price_set__shop_money__amount') }} as gross_revenue,
        {{ to_money('total_price_set__presentment_money__amount') }} as gross_revenue_presentment,
        -- booleans
        financial_status in ({{ sql_list(var('counted_financial_statuses')) }}) as is_counted,
        cancelled_at is not null as is_cancelled,
        deleted_order_id is not null as is_deleted,
        -- timestamps
        {{ to_utc('created_at') }} as created_at,
        {{ to_utc('updated_at') }} as updated_at,
        {{ to_utc('cancelled_at') }} as cancelled_at,
        {{ to_utc('destroyed_at') }} as deleted_at,
        -- the dlt load that last wrote the row or its deletion: the cursor of incremental models
        {{ greatest_load_id('_dlt_load_id', 'deletion_load_id') }} as _dlt_load_id
    from orders
    left join deletions
        on orders.source_account = deletions.deleted_account and orders.id = deletions.deleted_order_id
)

select * from renamed
