with history as (
    select * from {{ raw_table('hubspot', 'contacts_lifecyclestage_history') }} as contacts_lifecyclestage_history
    where {{ completed_loads('hubspot') }}
),

renamed as (
    select
        -- ids
        {{ surrogate_key(['source_account', 'contact_id', 'changed_at']) }} as stage_change_key,
        {{ surrogate_key(['source_account', 'contact_id']) }} as contact_key,
        source_account,
        contact_id,
        -- strings
        value as lifecycle_stage,
        source_type as changed_by,
        -- timestamps
        {{ to_utc('changed_at') }} as changed_at,
        -- the dlt load that last wrote the row: the cursor of incremental models
        _dlt_load_id
    from history
)

select * from renamed
