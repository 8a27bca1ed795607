with deals as (
    select * from {{ raw_table('hubspot', 'deals') }} as deals
    where {{ completed_loads('hubspot') }}
),

renamed as (
    select
        -- ids
        {{ surrogate_key(['source_account', 'id']) }} as deal_key,
        source_account,
        id as deal_id,
        -- strings
        properties__dealname as deal_name,
        properties__dealstage as deal_stage,
        case properties__dealstage when 'closedwon' then 'won' when 'closedlost' then 'lost' else 'open' end
            as deal_status,
        -- numerics
        {{ to_money('properties__amount') }} as amount,
        -- booleans
        coalesce(archived, false) as is_deleted,
        -- timestamps
        {{ to_utc('properties__createdate') }} as created_at,
        {{ to_utc('properties__closedate') }} as closed_at,
        {{ to_utc('properties__hs_lastmodifieddate') }} as updated_at,
        -- the dlt load that last wrote the row: the cursor of incremental models
        _dlt_load_id
    from deals
)

select * from renamed
