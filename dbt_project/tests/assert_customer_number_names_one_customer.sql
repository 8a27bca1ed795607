-- fct_orders.customer_number and customer_id name each other one to one: panels that group or count people by
-- the number (dashboard/queries.py) count the same people as by the id. Any row returned fails.
select 'customer_id with several numbers' as problem, customer_id as value
from {{ ref('fct_orders') }}
group by customer_id
having count(distinct customer_number) > 1
union all
select 'customer_number with several customer_ids', cast(customer_number as {{ dbt.type_string() }})
from {{ ref('fct_orders') }}
where customer_number is not null
group by customer_number
having count(distinct customer_id) > 1
union all
select 'customer_id without a number', customer_id
from {{ ref('fct_orders') }}
where customer_id is not null and customer_number is null
