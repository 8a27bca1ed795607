{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='merge' if target.type == 'bigquery' else 'delete+insert',
        on_schema_change='append_new_columns'
    )
}}
-- Every event of the customer journey, keyed by the source record it comes from (not by person: the
-- mart resolves people at build time, so a later identity merge re-keys past events). Incremental on the
-- dlt load that wrote each source row: a run reprocesses exactly the rows its loads rewrote, however old
-- their timestamps (late updates, backfills, a newly added account), and merges them by event id.
{% set since %}
    {%- if is_incremental() -%}
        _dlt_load_id > (select coalesce(max(_dlt_load_id), '') from {{ this }})
    {%- else -%}
        1 = 1
    {%- endif -%}
{% endset %}

with activecampaign_contacts as (
    select * from {{ ref('stg_activecampaign__contacts') }} where {{ since }}
),

hubspot_contacts as (
    select * from {{ ref('stg_hubspot__contacts') }} where {{ since }}
),

lifecycle_stages as (
    select * from {{ ref('stg_hubspot__lifecycle_stages') }} where {{ since }}
),

activecampaign_deals as (
    select * from {{ ref('stg_activecampaign__deals') }} where {{ since }}
),

hubspot_deals as (
    select * from {{ ref('stg_hubspot__deals') }} where not is_deleted
),

hubspot_deal_contacts as (
    select * from {{ ref('stg_hubspot__deal_contacts') }}
),

orders as (
    select * from {{ ref('stg_shopify__orders') }} where {{ since }}
),

refunds as (
    select * from {{ ref('stg_shopify__refund_transactions') }} where is_successful_refund and {{ since }}
),

-- a payment belongs to the person of the order it paid (by the matching), else to its Stripe customer;
-- either side's load brings it in, since a charge may be matched only when its order arrives
charges as (
    select
        charges.*,
        orders.source_account as order_account,
        cast(orders.order_id as {{ dbt.type_string() }}) as paid_order_id,
        {{ greatest_load_id('charges._dlt_load_id', 'orders._dlt_load_id') }} as event_load_id
    from {{ ref('stg_stripe__charges') }} as charges
    left join {{ ref('int_payments_matched') }} as payments
        on charges.source_account = payments.stripe_account
        and charges.charge_id = payments.stripe_charge_id
        and payments.is_matched
    left join {{ ref('stg_shopify__orders') }} as orders on payments.order_key = orders.order_key
    where charges.status in ('succeeded', 'failed')
),

-- also a charge whose match changed with no load of its own or of its order (a closer charge took its
-- transaction, or its transaction stopped naming it): the person it belongs to is not the one recorded
charges_changed as (
    select charges.* from charges
    {% if is_incremental() -%}
    left join {{ this }} as recorded
        on recorded.source_system = 'stripe'
        and recorded.source_account = charges.source_account
        and recorded.source_record_id = charges.charge_id
        and recorded.event_type = {{ dbt.concat(["'payment_'", 'charges.status']) }}
    where charges.event_load_id > (select coalesce(max(_dlt_load_id), '') from {{ this }})
        or recorded.event_id is null
        or recorded.identity_system <> case when charges.paid_order_id is not null then 'shopify_order' else 'stripe' end
        or recorded.identity_account <> coalesce(charges.order_account, charges.source_account)
        or coalesce(recorded.identity_record_id, '') <> coalesce(charges.paid_order_id, charges.customer_id, '')
    {%- endif %}
),

-- a HubSpot deal is an event of each contact it is associated with; either side's load brings it in
hubspot_deals_per_contact as (
    select
        hubspot_deals.*,
        hubspot_deal_contacts.contact_id,
        {{ dbt.concat(["hubspot_deals.deal_id", "'/'", "hubspot_deal_contacts.contact_id"]) }} as deal_contact_id,
        {{ greatest_load_id('hubspot_deals._dlt_load_id', 'hubspot_deal_contacts._dlt_load_id') }} as event_load_id
    from hubspot_deals
    inner join hubspot_deal_contacts on hubspot_deals.deal_key = hubspot_deal_contacts.deal_key
),

hubspot_deals_changed as (
    select * from hubspot_deals_per_contact
    {% if is_incremental() -%}
    where event_load_id > (select coalesce(max(_dlt_load_id), '') from {{ this }})
    {%- endif %}
),

deals as (
    select 'activecampaign' as source_system, source_account, deal_id as source_record_id, contact_id,
        deal_name, deal_status, amount, currency, created_at, closed_at, _dlt_load_id
    from activecampaign_deals
    union all
    select 'hubspot', source_account, deal_contact_id, contact_id, deal_name, deal_status, amount, 'USD',
        created_at, closed_at, event_load_id
    from hubspot_deals_changed
),

events as (
    -- event_type, event_at, source system/account/record, identity system/account/record, amount, currency,
    -- detail, the load that wrote it
    select 'contact_created' as event_type, created_at as event_at, 'activecampaign' as source_system,
        source_account, contact_id as source_record_id, 'activecampaign' as identity_system,
        source_account as identity_account, contact_id as identity_record_id, cast(null as {{ money_type() }}) as amount,
        cast(null as {{ dbt.type_string() }}) as currency, cast(null as {{ dbt.type_string() }}) as detail,
        _dlt_load_id
    from activecampaign_contacts
    where not is_deleted
    union all
    select 'contact_created', created_at, 'hubspot', source_account, contact_id, 'hubspot', source_account,
        contact_id, null, null, null, _dlt_load_id
    from hubspot_contacts
    where not is_deleted
    union all
    select 'lifecycle_stage_changed', changed_at, 'hubspot', source_account,
        {{ dbt.concat(["contact_id", "'/'", "lifecycle_stage"]) }}, 'hubspot', source_account, contact_id,
        null, null, lifecycle_stage, _dlt_load_id
    from lifecycle_stages
    union all
    select 'deal_created', created_at, source_system, source_account, source_record_id, source_system,
        source_account, contact_id, amount, currency, deal_name, _dlt_load_id
    from deals
    union all
    select {{ dbt.concat(["'deal_'", "deal_status"]) }}, closed_at, source_system, source_account, source_record_id,
        source_system, source_account, contact_id, amount, currency, deal_name, _dlt_load_id
    from deals
    where deal_status in ('won', 'lost') and closed_at is not null
    union all
    select 'order_placed', created_at, 'shopify', source_account, cast(order_id as {{ dbt.type_string() }}),
        'shopify_order', source_account, cast(order_id as {{ dbt.type_string() }}), gross_revenue, shop_currency,
        financial_status, _dlt_load_id
    from orders
    union all
    select 'refund_issued', processed_at, 'shopify', source_account, cast(transaction_id as {{ dbt.type_string() }}),
        'shopify_order', source_account, cast(order_id as {{ dbt.type_string() }}), amount, currency, null,
        _dlt_load_id
    from refunds
    union all
    select {{ dbt.concat(["'payment_'", "status"]) }}, created_at, 'stripe', source_account, charge_id,
        case when paid_order_id is not null then 'shopify_order' else 'stripe' end,
        coalesce(order_account, source_account), coalesce(paid_order_id, customer_id), amount, currency,
        failure_code, event_load_id
    from charges_changed
),

keyed as (
    select
        {{ surrogate_key(['event_type', 'source_system', 'source_account', 'source_record_id']) }} as event_id,
        *
    from events
)

select * from keyed
