"""The conversions that may go out, read from the published marts only: counted, deduplicated, reconciled
orders (`fct_orders`), their successful refunds (`fct_journey_events`), each with its customer's consent
and lifetime figures (`dim_customers`). Raw tables are never read: what the gate did not pass never leaves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

PURCHASE = "purchase"
REFUND = "refund"


@dataclass(frozen=True)
class Conversion:
    """One order or refund, with what every destination needs to describe it and its customer."""

    conversion_id: str  # "purchase:<shop>:<order id>" or "refund:<shop>:<refund transaction id>"
    kind: str  # PURCHASE or REFUND
    source_account: str  # the shop
    order_id: str  # the Shopify order id: GA4's transaction_id, Meta's event_id
    order_name: str | None
    customer_id: str | None
    email: str | None
    occurred_at: datetime  # UTC, aware: when the order was placed or the refund processed
    value: Decimal  # in `currency`, the major unit
    currency: str
    country: str | None
    has_consent: bool
    lifetime_net_revenue: Decimal | None = None
    lifetime_orders: int | None = None
    last_order_at: datetime | None = None

    @property
    def ga4_client_id(self) -> str:
        return ga4_client_id(self.customer_id or self.conversion_id)


def ga4_client_id(key: str) -> str:
    """A stable GA4 client id for a customer whose order carries none (Shopify records none here): two
    10-digit numbers, like the `<random>.<timestamp>` of a browser's `_ga` cookie, taken from the SHA-256 of
    the customer id (first and second 8 bytes, each modulo 10**10, zero-padded). The same customer always
    gets the same client id, so GA4 sees one user across runs; it cannot be reversed to the customer."""
    digest = hashlib.sha256(f"ga4-client-id:{key}".encode()).digest()
    first, second = (int.from_bytes(digest[i:i + 8], "big") % 10**10 for i in (0, 8))
    return f"{first:010d}.{second:010d}"


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


QUERY = """
with customers as (
    select customer_id, email, has_marketing_consent, lifetime_net_revenue, lifetime_orders, last_order_at
    from marts.dim_customers
),
purchases as (
    select 'purchase' as kind, o.source_account, cast(o.order_id as varchar) as order_id, o.order_name,
        o.customer_id, o.email, o.created_at as occurred_at, o.gross_revenue as value, o.currency, o.country,
        cast(o.order_id as varchar) as record_id
    from marts.fct_orders o
    where o.is_counted
),
refunds as (
    select 'refund', e.source_account, cast(e.order_id as varchar), o.order_name, e.customer_id, o.email,
        e.event_at, e.amount, e.currency, o.country, e.source_record_id
    from marts.fct_journey_events e
    inner join marts.fct_orders o on o.source_account = e.source_account and o.order_id = e.order_id
    where e.event_type = 'refund_issued' and o.is_counted
        -- every partition: BigQuery requires a filter on this partition column (flows/published.py)
        and e.event_at >= timestamp '1900-01-01'
)
select c.kind || ':' || c.source_account || ':' || c.record_id, c.kind, c.source_account, c.order_id,
    c.order_name, c.customer_id, coalesce(p.email, c.email), c.occurred_at, c.value, c.currency, c.country,
    coalesce(p.has_marketing_consent, false), p.lifetime_net_revenue, p.lifetime_orders, p.last_order_at
from (select * from purchases union all select * from refunds) c
left join customers p on p.customer_id = c.customer_id
order by c.occurred_at, c.kind, c.record_id
"""


def read_conversions(published: Path | None = None) -> list[Conversion]:
    """Every counted order and its refunds in the published marts, oldest first, on either warehouse
    (flows/published.py: `published` is the DuckDB file, default `published_path()`; unused on BigQuery)."""
    from flows.published import open_published

    with open_published(published) as con:
        rows = con.execute(QUERY).fetchall()
    return [Conversion(conversion_id=r[0], kind=r[1], source_account=r[2], order_id=r[3], order_name=r[4],
                       customer_id=r[5], email=(r[6] or None), occurred_at=_utc(r[7]), value=Decimal(r[8]),
                       currency=r[9], country=r[10], has_consent=bool(r[11]),
                       lifetime_net_revenue=None if r[12] is None else Decimal(r[12]), lifetime_orders=r[13],
                       last_order_at=_utc(r[14])) for r in rows]
