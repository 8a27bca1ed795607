with contacts as (
    select * from {{ raw_table('activecampaign', 'contacts') }} as contacts
    where {{ completed_loads('activecampaign') }}
),

renamed as (
    select
        -- ids
        {{ surrogate_key(['source_account', 'id']) }} as contact_key,
        source_account,
        id as contact_id,
        -- strings
        {{ normalize_email('email') }} as email,
        email as email_raw,
        first_name,
        last_name,
        -- booleans
        deleted = '1' as is_deleted,
        -- timestamps
        {{ to_utc('cdate') }} as created_at,
        {{ to_utc('udate') }} as updated_at,
        -- the dlt load that last wrote the row: the cursor of incremental models
        _dlt_load_id
    from contacts
)

select * from renamed
