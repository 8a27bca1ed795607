with touches as (
    -- a side table with its own load ids: completed loads are filtered on it directly
    select * from {{ raw_table('hubspot', 'contacts_latest_source_history') }} as contacts_latest_source_history
    where {{ completed_loads('hubspot') }}
),

renamed as (
    select
        -- ids
        {{ surrogate_key(['source_account', 'contact_id', 'changed_at']) }} as contact_touch_key,
        {{ surrogate_key(['source_account', 'contact_id']) }} as contact_key,
        source_account,
        contact_id,
        -- strings
        channel,
        nullif(utm_source, '') as utm_source,
        {{ channel_utm_medium('channel') }} as utm_medium,
        nullif(utm_campaign, '') as utm_campaign,
        source_type,
        -- timestamps
        {{ to_utc('changed_at') }} as touched_at
    from touches
)

select * from renamed
