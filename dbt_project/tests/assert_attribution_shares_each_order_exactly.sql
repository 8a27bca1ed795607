-- Every attributed order, under every model: credits sum to 1, the attributed net revenue to the order's
-- net revenue to the cent, and every model credits the same touches. Returns the orders that do not.
with shares as (
    select
        order_key,
        attribution_model,
        sum(credit) as credit,
        sum(attributed_net_revenue) as attributed_net_revenue,
        count(*) as touches
    from {{ ref('fct_attribution') }}
    group by order_key, attribution_model
),

compared as (
    select
        shares.*,
        min(touches) over (partition by order_key) as fewest_touches,
        max(touches) over (partition by order_key) as most_touches
    from shares
),

orders as (
    select order_key, net_revenue from {{ ref('fct_orders') }}
)

select compared.*, orders.net_revenue
from compared
inner join orders on compared.order_key = orders.order_key
where abs(compared.credit - 1) > 1e-9
    or compared.attributed_net_revenue <> orders.net_revenue
    or compared.fewest_touches <> compared.most_touches
