with deal_contacts as (
    select * from {{ raw_table('hubspot', 'deal_contacts') }} as deal_contacts
    where {{ completed_loads('hubspot') }}
),

renamed as (
    select
        -- ids
        {{ surrogate_key(['source_account', 'deal_id', 'contact_id']) }} as deal_contact_key,
        {{ surrogate_key(['source_account', 'deal_id']) }} as deal_key,
        {{ surrogate_key(['source_account', 'contact_id']) }} as contact_key,
        source_account,
        deal_id,
        contact_id,
        -- strings
        association_type,
        -- the dlt load that last wrote the row: the cursor of incremental models
        _dlt_load_id
    from deal_contacts
)

select * from renamed
