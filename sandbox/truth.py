"""The world's ground truth as CSV files, following DESIGN.md's metric definitions.

Amounts are decimals in the shop's currency. Written by `journey sandbox truth`, read by tests.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sandbox.vendors import built, served_counts_of
from sandbox.vendors.stripe import MINOR_UNITS, Stripe
from sandbox.world import World, touch_rows


def people_rows(world: World) -> list[dict]:
    rows = []
    for p in world.people:
        counted = p.counted_orders
        rows.append({
            "person_id": p.person_id, "email": p.email,
            "activecampaign_contact_id": p.activecampaign_contact_id,
            "hubspot_contact_id": p.hubspot_contact_id,
            "shopify_customer_id": p.shopify_customer_id or "",
            "stripe_customer_id": "" if p.stripe_deleted_at else p.stripe_customer_id,
            "lifetime_orders": len(counted),
            "lifetime_net_revenue": sum((o.total - o.refunded for o in counted), Decimal("0.00")),
        })
    return rows


def order_rows(world: World) -> list[dict]:
    rows = []
    first_counted: dict[int, int] = {}
    for o in world.orders():
        if o.counted:
            first_counted.setdefault(o.person_id, o.order_id)
    for o in world.orders():
        refunds = o.refunded if o.counted else Decimal("0.00")
        gross = o.total if o.counted else Decimal("0.00")
        rows.append({
            "order_id": o.order_id, "person_id": o.person_id, "created_at": o.created_at.isoformat(),
            "currency": "USD", "country": o.country, "counted": o.counted, "gross": gross,
            "refunds": refunds, "net": gross - refunds, "is_first_order": first_counted.get(o.person_id) == o.order_id,
        })
    return rows


def payment_rows(world: World) -> list[dict]:
    """One row per Stripe charge; amounts as decimals in the charge's own currency. `shopify_order_id` is
    the order the charge really pays (not its metadata, which some checkout apps never write), empty for
    charges made outside the shop."""
    stripe = Stripe(world)
    return [{"charge_id": c["id"], "status": c["status"],
             "amount": Decimal(c["amount"]) / MINOR_UNITS[c["currency"]], "currency": c["currency"].upper(),
             "created_at": datetime.fromtimestamp(c["created"], UTC).isoformat(),
             "shopify_order_id": stripe.order_of_charge.get(c["id"], "")}
            for c in stripe.lists["charges"]]


def daily_kpi_rows(world: World) -> list[dict]:
    """`rpt_daily_kpis` as DESIGN.md defines it: one row per UTC day, no gaps, additive measures only."""
    zero = Decimal("0.00")
    days: dict = defaultdict(lambda: {"gross_revenue": zero, "refunds": zero, "orders": 0, "new_customers": 0,
                                      "contacts_created": 0, "failed_payments": 0})
    for person in world.people:
        if person.in_activecampaign or person.in_hubspot:
            days[person.created_at.date()]["contacts_created"] += 1
        counted = person.counted_orders
        if counted:
            days[min(o.created_at for o in counted).date()]["new_customers"] += 1
        for order in counted:
            day = days[order.created_at.date()]
            day["gross_revenue"] += order.total
            day["orders"] += 1
            for refund in order.refunds:
                if refund.succeeded:
                    days[refund.processed_at.date()]["refunds"] += refund.amount
    for charge in Stripe(world).lists["charges"]:
        if charge["status"] == "failed":
            days[datetime.fromtimestamp(charge["created"], UTC).date()]["failed_payments"] += 1
    first, last = min(days), max(max(days), world.clock.date())
    rows = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        figures = days[day]
        rows.append({"date_day": day.isoformat(), "gross_revenue": figures["gross_revenue"],
                     "refunds": figures["refunds"], "net_revenue": figures["gross_revenue"] - figures["refunds"],
                     "orders": figures["orders"], "new_customers": figures["new_customers"],
                     "contacts_created": figures["contacts_created"], "failed_payments": figures["failed_payments"]})
    return rows


def served_count_rows(world: World) -> list[dict]:
    """How many records each vendor's default listings serve on a fresh sandbox (its clock at the world's)."""
    return [{"vendor": vendor.name, "endpoint": endpoint, "records": records}
            for vendor in built(world).values()
            for endpoint, records in served_counts_of(vendor).items()]


TABLES = {"people.csv": people_rows, "orders.csv": order_rows, "payments.csv": payment_rows,
          "touches.csv": touch_rows, "daily_kpis.csv": daily_kpi_rows, "served_counts.csv": served_count_rows}


def export(world: World, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, rows_of in TABLES.items():
        rows = rows_of(world)
        path = out / filename
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["empty"])
            writer.writeheader()
            writer.writerows(rows)
        written.append(path)
    return written
