"""Incremental orders and the incremental event timeline: on the session's warehouse, a run with no new load
rewrites no row of int_orders_netted, and after a new dlt load that changes about 1% of the records (orders
that moved to another person, got a refund or were deleted, a new charge closer in time than the one a
transaction was matched to, a charge whose email changed, a transaction that stopped naming its charge, a
Stripe customer's new email, a fee) an incremental build rewrites only the orders those changes reach and
leaves every model exactly as a full refresh builds it, table by table: the timeline's payment events
follow the charges whose match changed though neither they nor their orders were loaded again."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from flows.dbt import dbt_build

pytestmark = [pytest.mark.mart, pytest.mark.slow]

INCREMENTAL = ["intermediate.int_orders_netted"]
COMPARED_SCHEMAS = ("intermediate", "marts")


def mark_rows(warehouse: Path) -> None:
    """Tag every row of the incremental models, so rows a build writes are the untagged ones."""
    with duckdb.connect(str(warehouse)) as con:
        for table in INCREMENTAL:
            con.execute(f"alter table {table} add column test_probe integer")
            con.execute(f"update {table} set test_probe = 1")


def rewritten(warehouse: Path) -> dict[str, tuple[int, int]]:
    """Per incremental model: (rows the last build wrote, rows in all)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {table: con.execute(
                    f"select count(*) filter (where test_probe is null), count(*) from {table}").fetchone()
                for table in INCREMENTAL}


def differences(a: Path, b: Path) -> dict[str, tuple[int, int]]:
    """Tables of the intermediate and marts schemas whose rows differ (EXCEPT ALL both ways, on the columns
    both have): table -> (rows only in a, rows only in b)."""
    found = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{a}' as a (read_only)")
        con.execute(f"attach '{b}' as b (read_only)")
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'b' and schema_name in "
            f"{COMPARED_SCHEMAS} order by 1, 2").fetchall()
        assert len(tables) >= 15
        for schema, table in tables:
            columns = [{c for (c,) in con.execute(
                "select column_name from duckdb_columns() where database_name = ? and schema_name = ? "
                "and table_name = ?", [db, schema, table]).fetchall()} for db in ("a", "b")]
            shared = ", ".join(f'"{c}"' for c in sorted(columns[0] & columns[1] - {"test_probe"}))
            only_a, only_b = (con.execute(
                f"select count(*) from (select {shared} from {x}.{schema}.{table} "
                f"except all select {shared} from {y}.{schema}.{table})").fetchone()[0]
                for x, y in (("a", "b"), ("b", "a")))
            if only_a or only_b:
                found[f"{schema}.{table}"] = (only_a, only_b)
    return found


def load_changes(warehouse: Path) -> str:
    """A new completed dlt load in the Shopify and Stripe datasets that changes about 1% of the records, the
    way dlt's merge would: changed rows rewritten in place with the new load id, new rows appended."""
    with duckdb.connect(str(warehouse)) as con:
        latest = max(con.execute(f"select max(load_id) from raw_{v}._dlt_loads").fetchone()[0]
                     for v in ("activecampaign", "shopify", "stripe", "hubspot"))
        load = f"{float(latest) + 3600:.7f}"
        for vendor in ("shopify", "stripe"):
            con.execute(f"insert into raw_{vendor}._dlt_loads by name select ? as load_id, schema_name, 0 as status, "
                        f"inserted_at + interval 1 hour as inserted_at, schema_version_hash "
                        f"from raw_{vendor}._dlt_loads order by load_id desc limit 1", [load])
        matched = "intermediate.int_payments_matched"

        # every 100th order reloaded; every other one of those moved to the next order's person
        con.execute("""
            create temp table reloaded as
            select id, _dlt_id, email, created_at, row_number() over (order by id) as n,
                lead(email) over (order by id) as next_email
            from raw_shopify.orders qualify row_number() over (order by id) % 100 = 0""")
        con.execute("update raw_shopify.orders set _dlt_load_id = ? where id in (select id from reloaded)", [load])
        con.execute("""update raw_shopify.orders set email = reloaded.next_email from reloaded
                       where orders.id = reloaded.id and reloaded.n % 200 = 0 and reloaded.next_email is not null""")
        # a refund on the first reloaded order
        con.execute("""
            insert into raw_shopify.orders__refunds__transactions by name
            select 990000001 as id, reloaded.id as order_id, 'refund' as kind, 'success' as status, 'USD' as currency,
                '1.00' as amount, reloaded.created_at + interval 1 day as processed_at,
                reloaded.created_at + interval 1 day as created_at, reloaded._dlt_id as _dlt_root_id,
                reloaded._dlt_id as _dlt_parent_id, 0 as _dlt_list_idx, 'test-refund-1' as _dlt_id
            from reloaded order by n limit 1""")
        # the shop deletes an order (dlt appends its destroy event to order_deletions)
        deleted = con.execute("select source_account, id from raw_shopify.orders where _dlt_load_id <> ? "
                              "order by id limit 1 offset 7", [load]).fetchone()
        if con.execute("select count(*) from information_schema.tables where table_schema = 'raw_shopify' "
                       "and table_name = 'order_deletions'").fetchone()[0] == 0:
            con.execute("create table raw_shopify.order_deletions (id bigint, source_account varchar, "
                        "deleted_at timestamp with time zone, _dlt_load_id varchar, _dlt_id varchar)")
        con.execute("insert into raw_shopify.order_deletions by name select ? as source_account, ? as id, "
                    "now() as deleted_at, ? as _dlt_load_id, 'test-deletion-1' as _dlt_id", [*deleted, load])
        # a transaction that named its charge stops naming it (its order reloaded with it)
        transaction_id, order_id = con.execute(
            f"select shopify_transaction_id, shopify_order_id from {matched} where match_method = 'charge_id' "
            "order by shopify_transaction_id limit 1").fetchone()
        con.execute('update raw_shopify.orders__transactions set "authorization" = null where id = ?',
                    [transaction_id])
        con.execute("update raw_shopify.orders set _dlt_load_id = ? where id = ?", [load, order_id])

        # a new charge closer in time to an email-matched transaction than its charge: it takes the match
        charge_id, processed_at = con.execute(
            f"select stripe_charge_id, epoch(shopify_processed_at) from {matched} "
            "where match_method = 'email_amount_time' order by stripe_charge_id limit 1").fetchone()
        con.execute("""insert into raw_stripe.charges by name
                       select * replace (? as id, cast(? as bigint) as created, ? as _dlt_load_id,
                                         'test-charge-1' as _dlt_id)
                       from raw_stripe.charges where id = ?""", ["ch_test_closer", int(processed_at), load, charge_id])
        # another email-matched charge's billing email changes
        con.execute(f"""update raw_stripe.charges
                        set billing_details__email = 'moved-away@example.com', _dlt_load_id = ?
                        where id = (select stripe_charge_id from {matched} where match_method = 'email_amount_time'
                                    order by stripe_charge_id limit 1 offset 1)""", [load])
        # a Stripe customer with charges takes another email; a fee changes
        con.execute("""update raw_stripe.customers set email = 'renamed-customer@example.com', _dlt_load_id = ?
                       where id = (select min(customer) from raw_stripe.charges)""", [load])
        con.execute("""update raw_stripe.balance_transactions set fee = fee + 1, _dlt_load_id = ?
                       where id = (select min(id) from raw_stripe.balance_transactions where type = 'charge')""",
                    [load])
    return load


@pytest.fixture(scope="module")
def builds(elt_run, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("incremental")
    incremental, full = folder / "incremental.duckdb", folder / "full.duckdb"
    shutil.copyfile(elt_run["warehouse"], incremental)
    mark_rows(incremental)
    dbt_build(incremental)
    unchanged = rewritten(incremental)
    before = folder / "before.duckdb"
    shutil.copyfile(incremental, before)
    load_changes(incremental)
    shutil.copyfile(incremental, full)
    dbt_build(incremental)
    dbt_build(full, full_refresh=True)
    return {"incremental": incremental, "full": full, "before": before, "unchanged": unchanged}


def test_a_run_with_no_new_load_rewrites_nothing(builds):
    assert all(written == 0 and rows > 0 for written, rows in builds["unchanged"].values()), builds["unchanged"]


def test_after_a_change_incremental_equals_full_refresh_table_by_table(builds):
    assert differences(builds["incremental"], builds["full"]) == {}


def test_the_changes_changed_the_mart_and_only_their_rows_were_rewritten(builds):
    changed = differences(builds["before"], builds["full"])
    assert {"marts.fct_payments", "marts.fct_orders", "marts.dim_customers"} <= set(changed)
    with duckdb.connect(str(builds["incremental"]), read_only=True) as con:
        closer = con.execute("select match_method from marts.fct_payments where stripe_charge_id = 'ch_test_closer'")
        assert closer.fetchall() == [("email_amount_time",)]
    written = rewritten(builds["incremental"])
    print("\nrows rewritten by the incremental build (written, all):", written)
    for written_rows, rows in written.values():
        assert 0 < written_rows <= rows * 0.1
