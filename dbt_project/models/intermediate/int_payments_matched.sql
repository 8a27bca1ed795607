{#- Shopify payment transactions matched to Stripe charges in three tiers, each charge used at most once:
    (1) the transaction's authorization is the charge id; (2) its receipt's payment intent is the charge's,
    with the same outcome; (3) for transactions that name neither, the charge's billing email or its
    customer's email is the order's, with the same amount, currency and outcome, created within the window.
    Tiers 2 and 3 pair each with its closest candidate in time (ties by id). No person / identity join here:
    the identity model reads this one. -#}
{%- set window_seconds = var('payment_match_window_hours') * 3600 -%}

with transactions as (
    select * from {{ ref('stg_shopify__transactions') }}
    where is_payment
        -- a deleted order's payments go with it (int_orders_netted and fct_orders drop the order); a charge
        -- that paid it is listed alone
        and order_key not in (select order_key from {{ ref('stg_shopify__orders') }} where is_deleted)
),

orders as (
    select * from {{ ref('stg_shopify__orders') }}
),

charges as (
    select * from {{ ref('stg_stripe__charges') }}
),

stripe_customers as (
    select * from {{ ref('stg_stripe__customers') }}
),

balance_transactions as (
    select * from {{ ref('stg_stripe__balance_transactions') }}
    where type in ('charge', 'payment')
),

fees as (
    select source_account, source_id as charge_id, sum(fee) as fee
    from balance_transactions
    group by source_account, source_id
),

shopify_payments as (
    select
        transactions.*,
        orders.email,
        -- the outcome in Stripe's words, so a failed attempt pairs with the failed charge
        case transactions.status
            when 'success' then 'succeeded'
            when 'failure' then 'failed'
            when 'error' then 'failed'
            else transactions.status
        end as outcome
    from transactions
    left join orders on transactions.order_key = orders.order_key
),

stripe_payments as (
    select
        charges.*,
        stripe_customers.email as customer_email,
        fees.fee
    from charges
    left join stripe_customers
        on charges.source_account = stripe_customers.source_account
        and charges.customer_id = stripe_customers.customer_id
    left join fees
        on charges.source_account = fees.source_account
        and charges.charge_id = fees.charge_id
),

-- tier 1: the transaction names its charge
charge_id_candidates as (
    select
        shopify_payments.transaction_key,
        shopify_payments.transaction_id,
        stripe_payments.charge_key,
        stripe_payments.charge_id,
        abs({{ dbt.datediff('shopify_payments.processed_at', 'stripe_payments.created_at', 'second') }})
            as seconds_apart
    from shopify_payments
    inner join stripe_payments on shopify_payments.authorization_code = stripe_payments.charge_id
),

charge_id_matches as (
    {{ mutual_closest('charge_id_candidates') }}
),

-- tier 2: the transaction names the payment intent, which may hold a failed attempt and the charge that paid
payment_intent_candidates as (
    select
        shopify_payments.transaction_key,
        shopify_payments.transaction_id,
        stripe_payments.charge_key,
        stripe_payments.charge_id,
        abs({{ dbt.datediff('shopify_payments.processed_at', 'stripe_payments.created_at', 'second') }})
            as seconds_apart
    from shopify_payments
    inner join stripe_payments
        on shopify_payments.payment_intent_id = stripe_payments.payment_intent_id
        and shopify_payments.outcome = stripe_payments.status
    where shopify_payments.transaction_key not in (select transaction_key from charge_id_matches)
        and stripe_payments.charge_key not in (select charge_key from charge_id_matches)
),

payment_intent_matches as (
    {{ mutual_closest('payment_intent_candidates') }}
),

-- a charge's emails, its billing email and its customer's, one row each (once if they are the same): tier 3 joins
-- on them by equality. A join on "either email" cannot hash on the email, so it paired each transaction with
-- every charge of the same amount, currency and outcome before testing emails, a cost that grows with the square
-- of the data: this model alone, one thread, 1M people, took 43 s that way and 14 s this way, same rows.
stripe_payment_emails as (
    select charge_key, billing_email as email from stripe_payments where billing_email is not null
    union distinct
    select charge_key, customer_email from stripe_payments where customer_email is not null
),

-- tier 3: only transactions that name no charge and no intent (one that names its charge is never matched to
-- another by email), only Stripe gateways, never a charge whose metadata names another order
email_amount_time_candidates as (
    select
        shopify_payments.transaction_key,
        shopify_payments.transaction_id,
        stripe_payments.charge_key,
        stripe_payments.charge_id,
        abs({{ dbt.datediff('shopify_payments.processed_at', 'stripe_payments.created_at', 'second') }})
            as seconds_apart
    from shopify_payments
    inner join stripe_payment_emails on shopify_payments.email = stripe_payment_emails.email
    inner join stripe_payments
        on stripe_payment_emails.charge_key = stripe_payments.charge_key
        and shopify_payments.amount = stripe_payments.amount
        and shopify_payments.currency = stripe_payments.currency
        and shopify_payments.outcome = stripe_payments.status
    where shopify_payments.authorization_code is null
        and shopify_payments.payment_intent_id is null
        and shopify_payments.gateway in ({{ sql_list(var('stripe_gateways')) }})
        and coalesce(stripe_payments.shopify_order_id, cast(shopify_payments.order_id as {{ dbt.type_string() }}))
            = cast(shopify_payments.order_id as {{ dbt.type_string() }})
        and stripe_payments.charge_key not in (select charge_key from charge_id_matches)
        and stripe_payments.charge_key not in (select charge_key from payment_intent_matches)
        and abs({{ dbt.datediff('shopify_payments.processed_at', 'stripe_payments.created_at', 'second') }})
            <= {{ window_seconds }}
),

email_amount_time_matches as (
    {{ mutual_closest('email_amount_time_candidates') }}
),

matches as (
    select transaction_key, charge_key, 'charge_id' as match_method from charge_id_matches
    union all
    select transaction_key, charge_key, 'payment_intent' as match_method from payment_intent_matches
    union all
    select transaction_key, charge_key, 'email_amount_time' as match_method from email_amount_time_matches
),

-- every transaction with its charge if any, and every charge no transaction took
paired as (
    select
        shopify_payments.transaction_key,
        shopify_payments.source_account,
        shopify_payments.transaction_id,
        shopify_payments.order_key,
        shopify_payments.order_id,
        shopify_payments.authorization_code,
        shopify_payments.payment_intent_id as shopify_payment_intent_id,
        shopify_payments.kind,
        shopify_payments.status,
        shopify_payments.gateway,
        shopify_payments.currency,
        shopify_payments.amount,
        shopify_payments.email,
        shopify_payments.processed_at,
        matches.match_method,
        stripe_payments.charge_key,
        stripe_payments.source_account as stripe_account,
        stripe_payments.charge_id,
        stripe_payments.customer_id as stripe_customer_id,
        stripe_payments.payment_intent_id as stripe_payment_intent_id,
        stripe_payments.shopify_order_id as stripe_metadata_order_id,
        stripe_payments.status as stripe_status,
        stripe_payments.currency as stripe_currency,
        stripe_payments.amount as stripe_amount,
        stripe_payments.amount_refunded as stripe_amount_refunded,
        cast(stripe_payments.fee as {{ money_type() }}) as stripe_fee,
        coalesce(stripe_payments.billing_email, stripe_payments.customer_email) as stripe_email,
        stripe_payments.created_at as stripe_created_at
    from shopify_payments
    left join matches on shopify_payments.transaction_key = matches.transaction_key
    full outer join stripe_payments on matches.charge_key = stripe_payments.charge_key
),

final as (
    select
        -- ids
        case
            when transaction_key is not null
                then {{ surrogate_key(["'shopify'", 'source_account', 'transaction_id']) }}
            else {{ surrogate_key(["'stripe'", 'stripe_account', 'charge_id']) }}
        end as payment_id,
        match_method,
        source_account,
        stripe_account,
        transaction_id as shopify_transaction_id,
        order_id as shopify_order_id,
        order_key,
        charge_id as stripe_charge_id,
        stripe_customer_id,
        coalesce(stripe_payment_intent_id, shopify_payment_intent_id) as payment_intent_id,
        authorization_code as shopify_authorization,
        stripe_metadata_order_id,
        -- strings
        kind as shopify_kind,
        status as shopify_status,
        gateway as shopify_gateway,
        stripe_status,
        coalesce(currency, stripe_currency) as currency,
        coalesce(email, stripe_email) as email,
        -- numerics
        amount as shopify_amount,
        stripe_amount,
        cast(amount - stripe_amount as {{ money_type() }}) as amount_difference,
        stripe_amount_refunded,
        stripe_fee,
        -- booleans
        match_method is not null as is_matched,
        -- timestamps
        processed_at as shopify_processed_at,
        stripe_created_at
    from paired
)

select * from final
