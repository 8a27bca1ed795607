{# From candidate pairs (transaction_key, transaction_id, charge_key, charge_id, seconds_apart), the pairs in
   which each is the other's closest candidate, ties broken by id: every transaction and every charge ends up
   in at most one pair, and the same candidates always give the same pairs on every engine. A candidate
   whose closest partner prefers someone else stays unpaired rather than take a second choice. #}
{% macro mutual_closest(candidates) -%}
    select transaction_key, charge_key
    from (
        select
            transaction_key,
            charge_key,
            row_number() over (
                partition by transaction_key order by seconds_apart, charge_id, charge_key
            ) as charge_rank,
            row_number() over (
                partition by charge_key order by seconds_apart, transaction_id, transaction_key
            ) as transaction_rank
        from {{ candidates }}
    ) as ranked
    where charge_rank = 1 and transaction_rank = 1
{%- endmacro %}
