"""Every query the dashboard runs: pure functions of a connection to the published marts, a date range and
the filters, so each panel can be tested and timed without the UI.

The connection comes from `open_published` (read-only, short-lived: one per batch of queries, so one batch
reads one published run and the next batch sees a newer one). Figures follow DESIGN.md's metric
definitions. Figures over a range that are not sums of days (customers, returning share, conversion) are
computed from the facts for exactly the range and filters; additive ones come from `rpt_daily_kpis` when no
filter is set, and from the facts otherwise.

How the filters apply (the marts decide what is possible):
- **acquisition source** is a person's: it restricts people everywhere (orders, contacts, refunds, failed
  payments, segments).
- **country, currency, new vs returning** are an order's (its shipping country, shop currency, and whether
  it was the person's first counted order): they restrict orders and what is derived from orders. Contacts
  and failed payments have no country, currency or order sequence, so they follow the acquisition source
  only. Refunds under an order filter are the matching orders' refunds dated by their order's date: the
  marts have no refund-level fact that names its order (refund events carry the person only).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd

from dashboard.ranges import DateRange, comparison_range, preset_range
from flows import published as layer
from flows.published import NotPublished, ReadFailed  # noqa: F401  (the app catches them from here)

GRAINS = ("day", "week", "month")
ATTRIBUTION_COLUMNS = {"order_key", "attribution_model", "channel", "utm_source", "credit",
                       "attributed_net_revenue", "converted_at"}
PAYMENT_COLUMNS = {"payment_id", "match_method", "is_matched", "shopify_transaction_id", "shopify_gateway",
                   "stripe_charge_id", "shopify_order_id", "currency", "email", "shopify_amount", "stripe_amount",
                   "stripe_status", "shopify_status", "shopify_processed_at", "stripe_created_at"}


@dataclass(frozen=True)
class Filters:
    """What every panel is restricted to; an empty tuple means no restriction."""

    sources: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    currencies: tuple[str, ...] = ()
    customer_type: str = "all"  # all | new (first orders) | returning (repeat orders)

    @property
    def active(self) -> bool:
        return bool(self.sources) or self.order_filtered

    @property
    def order_filtered(self) -> bool:
        return bool(self.countries or self.currencies) or self.customer_type != "all"


NO_FILTERS = Filters()


def load_hint(path: Path | str) -> str:
    return layer.load_hint(str(path))


def file_identity(path: Path) -> tuple | None:
    """Changes with every publish, None while nothing is published (flows/published.py `identity`: the file's
    inode, mtime and size on DuckDB; the pointer table's metadata on BigQuery)."""
    return layer.identity(path)


@contextmanager
def open_published(path: Path) -> Iterator[layer.DuckDBMarts | layer.BigQueryMarts]:
    """The published marts for one batch of queries, closed after it (flows/published.py): on DuckDB the file
    at `path`, never held across a publish; on BigQuery the version current when the batch opens (`path` is
    not used). Either way the next batch sees whichever run is published then."""
    with layer.open_published(path, required=("rpt_daily_kpis", "run_history")) as con:
        yield con


def tables(con) -> dict[str, set[str]]:
    """Each published mart table with its columns: panels whose table or columns are not published yet
    show a note instead of failing."""
    return con.columns()


def has(con, table: str, columns: set[str] | frozenset = frozenset()) -> bool:
    found = tables(con)
    return table in found and set(columns) <= found[table]


@dataclass(frozen=True)
class Run:
    run_id: str
    published_at: datetime
    rows_per_table: dict[str, int] = field(default_factory=dict)


def latest_run(con) -> Run | None:
    row = con.execute("select run_id, published_at, rows_per_table from marts.run_history "
                      "order by published_at desc, run_id desc limit 1").fetchone()
    return Run(row[0], row[1], json.loads(row[2] or "{}")) if row else None


def as_of_date(con) -> date | None:
    """The data's as-of date: the last day of `rpt_daily_kpis` (DESIGN.md: never the wall clock)."""
    return con.execute("select max(date_day) from marts.rpt_daily_kpis").fetchone()[0]


def first_date(con) -> date | None:
    return con.execute("select min(date_day) from marts.rpt_daily_kpis").fetchone()[0]


@dataclass(frozen=True)
class FilterOptions:
    sources: list[str]
    countries: list[str]
    currencies: list[str]


def filter_options(con) -> FilterOptions:
    """The values each filter offers; acquisition sources only once `dim_customers` carries them."""
    def values(sql: str) -> list[str]:
        return [value for (value,) in con.execute(sql).fetchall() if value is not None]

    sources = values("select distinct acquisition_source from marts.dim_customers order by 1") \
        if has(con, "dim_customers", {"acquisition_source"}) else []
    return FilterOptions(sources, values("select distinct country from marts.fct_orders order by 1"),
                         values("select distinct currency from marts.fct_orders order by 1"))


# --- filter clauses -------------------------------------------------------------------------------------

def _people_clause(filters: Filters, column: str) -> tuple[str, list]:
    """`column` (a customer_id) belongs to a person the person-level filters keep."""
    if not filters.sources:
        return "true", []
    return (f"{column} in (select customer_id from marts.dim_customers where list_contains(?, acquisition_source))",
            [list(filters.sources)])


def _orders_clause(filters: Filters, alias: str = "o", customer_type: bool = True) -> tuple[str, list]:
    """Counted orders that every filter keeps (`customer_type=False`: all but new vs returning)."""
    clauses, params = [f"{alias}.is_counted"], []
    if filters.countries:
        clauses.append(f"list_contains(?, {alias}.country)")
        params.append(list(filters.countries))
    if filters.currencies:
        clauses.append(f"list_contains(?, {alias}.currency)")
        params.append(list(filters.currencies))
    if customer_type and filters.customer_type == "new":
        clauses.append(f"{alias}.is_first_order")
    elif customer_type and filters.customer_type == "returning":
        clauses.append(f"{alias}.order_sequence > 1")
    people, people_params = _people_clause(filters, f"{alias}.customer_id")
    return " and ".join([*clauses, people]), params + people_params


def _refund_days(rng: DateRange, filters: Filters) -> tuple[str, list]:
    """A query of (day, refunds) rows over the range, by refund date where the marts allow it."""
    if not filters.active:
        return ("select date_day as day, refunds from marts.rpt_daily_kpis where date_day between ? and ?",
                [rng.start, rng.end])
    if filters.order_filtered:  # refunds of the matching orders, by order date (see the module's docstring)
        where, params = _orders_clause(filters)
        return (f"select o.order_date as day, o.refunds from marts.fct_orders as o "
                f"where {where} and o.order_date between ? and ?", [*params, rng.start, rng.end])
    people, params = _people_clause(filters, "e.customer_id")
    return ("select cast(e.event_at as date) as day, e.amount as refunds from marts.fct_journey_events as e "
            f"where e.event_type = 'refund_issued' and e.event_at >= ? and e.event_at < ? and {people}",
            [*_moments(rng), *params])


def _moments(rng: DateRange) -> tuple[datetime, datetime]:
    """[start, end + 1 day) as times: the bounds a query puts on a timestamp partition column itself, which
    BigQuery requires on the published fct_journey_events and fct_attribution (a filter on a function of it,
    like its date, does not count), and which lets DuckDB skip row groups by their min/max."""
    return datetime.combine(rng.start, time()), datetime.combine(rng.end + timedelta(days=1), time())


def _period(grain: str, column: str) -> str:
    """The first day of `column`'s day, ISO week (from Monday) or month, as a date. Written so that SQLGlot's
    BigQuery translation truncates a date (DATE_TRUNC), not a timestamp."""
    if grain not in GRAINS:
        raise ValueError(f"grain is one of {GRAINS}")
    return f"cast(date_trunc('{grain}', cast({column} as date)) as date)"


def _periods(rng: DateRange, grain: str) -> list[date]:
    """Every period that [start, end] touches, as `_period` names them."""
    first = {"day": rng.start, "week": rng.start - timedelta(days=rng.start.weekday()),
             "month": rng.start.replace(day=1)}[grain]
    periods = []
    while first <= rng.end:
        periods.append(first)
        if grain == "day":
            first += timedelta(days=1)
        elif grain == "week":
            first += timedelta(days=7)
        else:
            first = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return periods


# --- scorecards -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kpis:
    """The scorecards' figures for one range and set of filters. Ratios are None where the denominator
    is zero."""

    gross_revenue: Decimal
    refunds: Decimal
    orders: int
    new_customers: int
    customers: int
    returning_customers: int
    contacts_created: int
    failed_payments: int

    @property
    def net_revenue(self) -> Decimal:
        return self.gross_revenue - self.refunds

    @property
    def average_order_value(self) -> Decimal | None:
        return (self.gross_revenue / self.orders).quantize(Decimal("0.01")) if self.orders else None

    @property
    def returning_share(self) -> float | None:
        return self.returning_customers / self.customers if self.customers else None

    @property
    def conversion_rate(self) -> float | None:
        return self.new_customers / self.contacts_created if self.contacts_created else None

    @property
    def refund_rate(self) -> float | None:
        return float(self.refunds / self.gross_revenue) if self.gross_revenue else None


def kpis(con, rng: DateRange, filters: Filters = NO_FILTERS) -> Kpis:
    """The scorecards: additive figures from `rpt_daily_kpis` without filters, from the facts with them;
    customers and returning customers always from the facts for exactly this range."""
    where, params = _orders_clause(filters)
    gross, orders, new, customers, returning = con.execute(
        "select coalesce(sum(o.gross_revenue), 0), count(*), count(*) filter (where o.is_first_order), "
        "count(distinct o.customer_id), count(distinct o.customer_id) filter (where o.order_sequence > 1) "
        f"from marts.fct_orders as o where {where} and o.order_date between ? and ?",
        [*params, rng.start, rng.end]).fetchone()
    refund_sql, refund_params = _refund_days(rng, filters)
    refunds = con.execute(f"select coalesce(sum(refunds), 0) from ({refund_sql})", refund_params).fetchone()[0]
    if not filters.active:
        gross, orders, new, contacts, failed = con.execute(
            "select coalesce(sum(gross_revenue), 0), coalesce(sum(orders), 0), coalesce(sum(new_customers), 0), "
            "coalesce(sum(contacts_created), 0), coalesce(sum(failed_payments), 0) "
            "from marts.rpt_daily_kpis where date_day between ? and ?", [rng.start, rng.end]).fetchone()
    else:
        people, people_params = _people_clause(filters, "customer_id")
        contacts = con.execute(
            "select count(*) from marts.dim_customers "
            f"where cast(contact_created_at as date) between ? and ? and {people}",
            [rng.start, rng.end, *people_params]).fetchone()[0]
        failed = con.execute(
            "select count(*) from marts.fct_journey_events where event_type = 'payment_failed' "
            f"and event_at >= ? and event_at < ? and {people}",
            [*_moments(rng), *people_params]).fetchone()[0]
    return Kpis(Decimal(gross), Decimal(refunds), int(orders), int(new), int(customers), int(returning),
                int(contacts), int(failed))


# --- trends ---------------------------------------------------------------------------------------------

def trend(con, rng: DateRange, filters: Filters = NO_FILTERS,
          grain: str = "day") -> pd.DataFrame:
    """Revenue and orders per day, week (ISO, from Monday) or month, every period present; orders and
    customers split into new (first counted order) and returning (a later one)."""
    if grain not in GRAINS:
        raise ValueError(f"grain is one of {GRAINS}")
    where, params = _orders_clause(filters)
    refund_sql, refund_params = _refund_days(rng, filters)
    return con.execute(f"""
        with periods as (
            select period from unnest(?) as periods(period)
        ),
        orders as (
            select {_period(grain, "o.order_date")} as period,
                sum(o.gross_revenue) as gross_revenue, count(*) as orders,
                count(*) filter (where o.is_first_order) as new_orders,
                count(*) filter (where o.order_sequence > 1) as returning_orders,
                sum(o.net_revenue) filter (where o.is_first_order) as new_net_revenue,
                sum(o.net_revenue) filter (where o.order_sequence > 1) as returning_net_revenue
            from marts.fct_orders as o
            where {where} and o.order_date between ? and ?
            group by 1
        ),
        refunds as (
            select {_period(grain, "day")} as period, sum(refunds) as refunds
            from ({refund_sql}) group by 1
        )
        select periods.period,
            coalesce(orders.gross_revenue, 0) - coalesce(refunds.refunds, 0) as net_revenue,
            coalesce(orders.gross_revenue, 0) as gross_revenue,
            coalesce(refunds.refunds, 0) as refunds,
            coalesce(orders.orders, 0) as orders,
            coalesce(orders.new_orders, 0) as new_orders,
            coalesce(orders.returning_orders, 0) as returning_orders
        from periods
        left join orders on periods.period = orders.period
        left join refunds on periods.period = refunds.period
        order by periods.period
    """, [_periods(rng, grain), *params, rng.start, rng.end, *refund_params]).df()


# --- the journey ----------------------------------------------------------------------------------------

def funnel(con, rng: DateRange, filters: Filters = NO_FILTERS) -> pd.DataFrame:
    """Contacts created in the range, how many of them have placed a first counted order by the as-of date,
    and how many a repeat order (new vs returning is the funnel itself, so that filter does not apply)."""
    people, people_params = _people_clause(filters, "c.customer_id")
    where, params = _orders_clause(filters, customer_type=False)
    return con.execute(f"""
        with contacts as (
            select c.customer_id from marts.dim_customers as c
            where cast(c.contact_created_at as date) between ? and ? and {people}
        ),
        buyers as (
            select o.customer_id, count(*) as orders from marts.fct_orders as o
            where {where} and o.customer_id in (select customer_id from contacts)
            group by 1
        )
        select 1 as step, 'Contact created' as stage, (select count(*) from contacts) as people
        union all select 2, 'First order', (select count(*) from buyers)
        union all select 3, 'Repeat order', (select count(*) from buyers where orders >= 2)
        order by step
    """, [rng.start, rng.end, *people_params, *params]).df()


def cohort_retention(con, rng: DateRange, filters: Filters = NO_FILTERS,
                     months: int = 12) -> pd.DataFrame:
    """Retention of the first-order cohorts that began in the range, widened to the `months` months ending
    with it (a week holds one cohort at most). Without filters from `rpt_cohort_retention`; with them,
    cohorts of the filtered orders (new vs returning does not apply: a cohort is its first orders)."""
    first_month = min(rng.start.replace(day=1), _months_before(rng.end.replace(day=1), months - 1))
    if not filters.active:
        return con.execute(
            "select cohort_month, month_number, cohort_size, active_customers, retention_rate "
            "from marts.rpt_cohort_retention where cohort_month between ? and ? order by 1, 2",
            [first_month, rng.end]).df()
    where, params = _orders_clause(filters, customer_type=False)
    # people by `customer_number`, not the text id: at a million people the aggregates below took 270 ms on
    # the id and 170 on the number (benchmarks/README.md, "What bounds the missed targets")
    return con.execute(f"""
        with orders as (
            select o.customer_number, o.order_date from marts.fct_orders as o where {where}
        ),
        firsts as (
            select customer_number, min({_period("month", "order_date")}) as cohort_month from orders group by 1
        ),
        sizes as (select cohort_month, count(*) as cohort_size from firsts group by 1),
        active as (
            select firsts.cohort_month,
                datediff('month', firsts.cohort_month, {_period("month", "orders.order_date")}) as month_number,
                count(distinct orders.customer_number) as active_customers
            from orders inner join firsts on orders.customer_number = firsts.customer_number
            group by 1, 2
        )
        select active.cohort_month, active.month_number, sizes.cohort_size, active.active_customers,
            round(active.active_customers / sizes.cohort_size, 4) as retention_rate
        from active inner join sizes on active.cohort_month = sizes.cohort_month
        where active.cohort_month between ? and ?
        order by 1, 2
    """, [*params, first_month, rng.end]).df()


def _months_before(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 - count
    return date(index // 12, index % 12 + 1, 1)


def rfm_segments(con, rng: DateRange, filters: Filters = NO_FILTERS) -> pd.DataFrame:
    """Customers who placed a matching counted order in the range, by their RFM segment (scored at the
    as-of date), with their lifetime figures."""
    where, params = _orders_clause(filters)
    return con.execute(f"""
        select c.rfm_segment, count(*) as customers,
            sum(c.lifetime_net_revenue) as lifetime_net_revenue,
            round(avg(c.lifetime_orders), 2) as average_orders,
            round(avg(c.r_score), 2) as r, round(avg(c.f_score), 2) as f, round(avg(c.m_score), 2) as m
        from marts.dim_customers as c
        where c.customer_id in (
            select o.customer_id from marts.fct_orders as o where {where} and o.order_date between ? and ?)
        group by 1
        order by customers desc, c.rfm_segment
    """, [*params, rng.start, rng.end]).df()


def attribution(con, rng: DateRange, filters: Filters = NO_FILTERS) -> pd.DataFrame | None:
    """Attributed conversions and net revenue by model, channel and source for conversions in the range;
    None until `fct_attribution` is published."""
    if not has(con, "fct_attribution", ATTRIBUTION_COLUMNS):
        return None
    # fct_attribution holds counted orders only: the join to fct_orders is needed only to apply filters
    where, params = _orders_clause(filters) if filters.active else ("true", [])
    join = "inner join marts.fct_orders as o on a.order_key = o.order_key" if filters.active else ""
    # a range on the partition column itself (see _moments)
    return con.execute(f"""
        select a.attribution_model, coalesce(a.channel, '(none)') as channel,
            coalesce(a.utm_source, '(none)') as source,
            round(sum(a.credit), 2) as conversions, sum(a.attributed_net_revenue) as attributed_net_revenue
        from marts.fct_attribution as a
        {join}
        where a.converted_at >= ? and a.converted_at < ? and {where}
        group by 1, 2, 3
        order by 1, attributed_net_revenue desc, 2, 3
    """, [*_moments(rng), *params]).df()


# --- data health ----------------------------------------------------------------------------------------

def run_history(con, limit: int = 10) -> pd.DataFrame:
    return con.execute("select run_id, published_at, mode, rows_per_table from marts.run_history "
                       "order by published_at desc, run_id desc limit ?", [limit]).df()


UNMATCHED_SIDES = {
    "charge": "Stripe charge, no transaction",
    "transaction": "Stripe-gateway transaction, no charge",
}


def unmatched_payments(con, limit: int = 50) -> dict | None:
    """Payments by how they matched, and the unmatched ones, reported apart by side: Stripe charges with no
    Shopify transaction, and Shopify transactions on the Stripe gateway with no charge. Transactions on other
    gateways (manual, ...) have no charge to match and are never counted as unmatched. About the published
    data as a whole, so the range and filters do not apply; None until `fct_payments` is published."""
    if not has(con, "fct_payments", PAYMENT_COLUMNS):
        return None
    side = ("case when p.shopify_transaction_id is null then 'charge' "
            "when p.shopify_gateway = 'stripe' then 'transaction' end")
    rows = f"""
        select p.*, case when p.is_matched then null else {side} end as unmatched_side
        from marts.fct_payments as p"""
    summary = con.execute(f"""
        select case when is_matched then coalesce(match_method, 'matched')
                when unmatched_side = 'charge' then 'unmatched: {UNMATCHED_SIDES["charge"]}'
                when unmatched_side = 'transaction' then 'unmatched: {UNMATCHED_SIDES["transaction"]}'
                else 'no charge expected: ' || coalesce(shopify_gateway, '(none)') || ' gateway' end as match_method,
            count(*) as payments
        from ({rows}) group by 1 order by 2 desc, 1""").df()
    unmatched = con.execute(f"""
        select case unmatched_side when 'charge' then '{UNMATCHED_SIDES["charge"]}'
                else '{UNMATCHED_SIDES["transaction"]}' end as side,
            coalesce(stripe_created_at, shopify_processed_at) as paid_at, stripe_charge_id, shopify_order_id,
            shopify_transaction_id, currency, coalesce(stripe_amount, shopify_amount) as amount, stripe_status,
            shopify_status, email
        from ({rows}) where unmatched_side is not null
        order by unmatched_side, paid_at desc, payment_id limit ?""", [limit]).df()
    count = dict(zip(summary["match_method"], summary["payments"], strict=True))
    charges = int(count.get(f"unmatched: {UNMATCHED_SIDES['charge']}", 0))
    transactions = int(count.get(f"unmatched: {UNMATCHED_SIDES['transaction']}", 0))
    stripe_payments = int(sum(n for label, n in count.items() if not label.startswith("no charge expected")))
    return {"summary": summary, "unmatched": unmatched, "unmatched_charges": charges,
            "unmatched_transactions": transactions, "stripe_payments": stripe_payments}


def unreconciled_orders(con) -> int:
    """Counted orders whose Stripe charge does not match their amount (or that no charge paid)."""
    return con.execute("select count(*) from marts.fct_orders where is_counted and not is_payment_reconciled"
                       ).fetchone()[0]



# --- one page view --------------------------------------------------------------------------------------

def page_queries(con, filters: Filters = NO_FILTERS,
                 preset: str = "last_28") -> dict[str, Callable[[], object]]:
    """Every query one page view asks, by panel, for `preset` (compared with the previous period): each a
    call without arguments, so the tests can check every panel answers and `benchmarks/dashboard_latency.py`
    can time them, on the same list the page asks."""
    as_of = as_of_date(con)
    current = preset_range(preset, as_of)
    previous = comparison_range(current, "previous_period")
    return {
        "run": lambda: latest_run(con),
        "as_of": lambda: as_of_date(con),
        "first_date": lambda: first_date(con),
        "filter_options": lambda: filter_options(con),
        "scorecards": lambda: (kpis(con, current, filters), kpis(con, previous, filters)),
        "trend_day": lambda: trend(con, current, filters, "day"),
        "trend_month": lambda: trend(con, preset_range("year_to_date", as_of), filters, "month"),
        "funnel": lambda: funnel(con, current, filters),
        "cohort_retention": lambda: cohort_retention(con, current, filters),
        "rfm_segments": lambda: rfm_segments(con, current, filters),
        "attribution": lambda: attribution(con, current, filters),
        "run_history": lambda: run_history(con),
        "unmatched_payments": lambda: unmatched_payments(con),
        "unreconciled_orders": lambda: unreconciled_orders(con),
    }
