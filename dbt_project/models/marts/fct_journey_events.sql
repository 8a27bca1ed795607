-- The customer journey: every event of every person, in order, with the time since their previous one.
-- People are resolved here, at build time, from each event's source record, so when later data merges
-- two identities their past events follow the person.
{{
    config(
        partition_by={'field': 'event_at', 'data_type': 'datetime', 'granularity': 'month'}
            if target.type == 'bigquery' else none,
        cluster_by=['customer_id', 'event_type'] if target.type == 'bigquery' else none
    )
}}
with recorded as (
    select * from {{ ref('int_journey_events_unioned') }}
),

-- touches are rebuilt whole each run (int_touches_unioned folds a Shopify landing into the HubSpot visit
-- it repeats, which can change as either loads), so they join here rather than the incremental union
touches as (
    select
        {{ surrogate_key(["'marketing_touch'", 'source_system', 'source_account', 'source_record_id', 'touched_at']) }}
            as event_id,
        'marketing_touch' as event_type,
        touched_at as event_at,
        source_system,
        source_account,
        source_record_id,
        case source_system when 'shopify' then 'shopify_order' else source_system end as identity_system,
        source_account as identity_account,
        source_record_id as identity_record_id,
        cast(null as {{ money_type() }}) as amount,
        cast(null as {{ dbt.type_string() }}) as currency,
        -- "source / medium / campaign", as analytics tools show a touch
        {{ dbt.concat(["coalesce(utm_source, '')", "' / '", "coalesce(utm_medium, '')", "' / '",
                       "coalesce(utm_campaign, '')"]) }} as detail
    from {{ ref('int_touches_unioned') }}
),

events as (
    select event_id, event_type, event_at, source_system, source_account, source_record_id, identity_system,
        identity_account, identity_record_id, amount, currency, detail
    from recorded
    union all
    select * from touches
),

identity as (
    select * from {{ ref('int_identity_records_unioned') }}
    where customer_id is not null
),

resolved as (
    select
        events.*,
        identity.customer_id
    from events
    inner join identity
        on events.identity_system = identity.system
        and events.identity_account = identity.source_account
        and events.identity_record_id = identity.record_id
),

{%- set in_sequence -%}
    partition by customer_id order by event_at, {{ event_type_order('event_type') }}, event_id
{%- endset %}

sequenced as (
    -- the previous event by the sequence's own order (a lag over the same window, not a self-join on the
    -- sequence number: at 1M people that join matched 8M rows against 8M)
    select
        *,
        row_number() over ({{ in_sequence }}) as event_sequence,
        lag(event_at) over ({{ in_sequence }}) as previous_event_at
    from resolved
),

final as (
    select
        -- ids
        event_id,
        customer_id,
        source_account,
        source_record_id,
        -- the Shopify order the event belongs to (orders placed, refunds issued, payments of an order, landings),
        -- so a refund can be sent as the refund of its order's transaction (activation)
        case when identity_system = 'shopify_order'
            then cast(identity_record_id as {{ dbt.type_bigint() }}) end as order_id,
        -- strings
        event_type,
        source_system,
        detail,
        currency,
        -- numerics
        amount,
        event_sequence,
        {{ dbt.datediff('previous_event_at', 'event_at', 'second') }} as seconds_since_previous_event,
        -- timestamps
        event_at,
        previous_event_at
    from sequenced
)

select * from final
