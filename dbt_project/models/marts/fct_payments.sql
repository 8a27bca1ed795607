with payments as (
    select * from {{ ref('int_payments_matched') }}
),

final as (
    select * from payments
)

select * from final
