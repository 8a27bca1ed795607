"""What the two CRM destinations share: they take a customer's current state (lifetime value, orders, last
order date), upserted by email, whenever an order of theirs goes out; the order is the ledger's unit, the
contact the request's. A CRM accepts any date, so its age limit is a policy, `activation.<crm>.max_age_days`
(default 7): the CRM's own automations fire on these updates, and a first run must not fire them for two
years of history (the CRM's own shop integration carries that)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from activation.conversions import Conversion

MAX_AGE_DAYS = 7
CRM_SETTINGS = ("max_age_days", "ltv_field", "orders_field", "last_order_field")


def max_age(values: dict) -> timedelta:
    return timedelta(days=float(values.get("max_age_days", MAX_AGE_DAYS)))


def by_contact(conversions: list[Conversion]) -> dict[str, list[Conversion]]:
    """Conversions grouped by normalized email: one contact, one upsert, however many of its orders."""
    groups: dict[str, list[Conversion]] = {}
    for conversion in conversions:
        groups.setdefault(conversion.email.strip().lower(), []).append(conversion)
    return groups


def state(conversion: Conversion) -> tuple[str, str, str]:
    """Lifetime net revenue (2 decimals), lifetime orders and last order date (ISO, UTC) as strings."""
    ltv = (conversion.lifetime_net_revenue or Decimal("0")).quantize(Decimal("0.01"))
    last = conversion.last_order_at.date().isoformat() if conversion.last_order_at else ""
    return str(ltv), str(conversion.lifetime_orders or 0), last
