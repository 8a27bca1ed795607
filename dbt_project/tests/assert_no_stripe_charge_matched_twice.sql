-- Each Stripe charge is one payment: matched to at most one Shopify transaction, or listed alone once.
select stripe_account, stripe_charge_id, count(*) as rows_with_charge
from {{ ref('fct_payments') }}
where stripe_charge_id is not null
group by stripe_account, stripe_charge_id
having count(*) > 1
