with deals as (
    select * from {{ raw_table('activecampaign', 'deals') }} as deals
    where {{ completed_loads('activecampaign') }}
),

renamed as (
    select
        -- ids
        {{ surrogate_key(['source_account', 'id']) }} as deal_key,
        {{ surrogate_key(['source_account', 'contact']) }} as contact_key,
        source_account,
        id as deal_id,
        contact as contact_id,
        stage as stage_id,
        -- strings
        title as deal_name,
        -- ActiveCampaign's status: 0 open, 1 won, 2 lost
        case status when '1' then 'won' when '2' then 'lost' else 'open' end as deal_status,
        upper(currency) as currency,
        -- numerics: ActiveCampaign deal values are in cents
        cast(cast(value as {{ money_type() }}) * 0.01 as {{ money_type() }}) as amount,
        -- timestamps
        {{ to_utc('cdate') }} as created_at,
        case when status in ('1', '2') then {{ to_utc('edate') }} end as closed_at,
        {{ to_utc('mdate') }} as updated_at,
        -- the dlt load that last wrote the row: the cursor of incremental models
        _dlt_load_id
    from deals
)

select * from renamed
