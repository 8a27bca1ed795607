with contacts as (
    select * from {{ raw_table('hubspot', 'contacts') }} as contacts
    where {{ completed_loads('hubspot') }}
),

renamed as (
    select
        -- ids
        {{ surrogate_key(['source_account', 'id']) }} as contact_key,
        source_account,
        id as contact_id,
        -- strings
        {{ normalize_email('properties__email') }} as email,
        properties__email as email_raw,
        properties__firstname as first_name,
        properties__lastname as last_name,
        properties__lifecyclestage as lifecycle_stage,
        -- booleans
        archived as is_deleted,
        properties__hs_email_optout = 'true' as has_opted_out,
        -- timestamps
        {{ to_utc('properties__createdate') }} as created_at,
        {{ to_utc('properties__lastmodifieddate') }} as updated_at,
        -- the dlt load that last wrote the row: the cursor of incremental models
        _dlt_load_id
    from contacts
)

select * from renamed
