"""What a run did, as a person reads it: rows per table, dbt results, where the data is, headlines."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb

from flows.dbt import DbtResult
from pipelines.load import LoadResult


@dataclass
class Headline:
    people: int
    customers: int  # people with at least one counted order
    orders: int
    net_revenue: Decimal


@dataclass
class RunSummary:
    warehouse: Path
    loads: list[LoadResult] = field(default_factory=list)
    dbt: DbtResult | None = None
    headline: Headline | None = None
    not_configured: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0


def read_headline(warehouse: Path) -> Headline:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        people, customers, orders, net = con.execute(
            "select count(*), count(*) filter (where lifetime_orders > 0), "
            "coalesce(sum(lifetime_orders), 0), coalesce(sum(lifetime_net_revenue), 0) "
            "from marts.dim_customers").fetchone()
    return Headline(people, customers, int(orders), Decimal(net))


def format_summary(summary: RunSummary) -> str:
    lines = ["", "Rows loaded:"]
    for load in summary.loads:
        for table, rows in load.rows.items():
            lines.append(f"  {load.source:<15} {table:<40} {rows:>9,}")
        if not load.rows:
            lines.append(f"  {load.source:<15} (nothing new)")
    for name, missing in summary.not_configured.items():
        lines.append(f"  {name:<15} skipped, not configured: set {', '.join(missing)}")
    if summary.dbt:
        lines.append(f"dbt build: {summary.dbt.models_passed} models and {summary.dbt.tests_passed} tests passed "
                     f"in {summary.dbt.seconds:.1f}s")
    lines.append(f"Warehouse: {summary.warehouse}")
    if summary.headline:
        h = summary.headline
        lines.append(f"Mart: {h.people:,} people, {h.customers:,} customers, {h.orders:,} orders, "
                     f"net revenue {h.net_revenue:,.2f}")
    lines.append(f"Done in {summary.seconds:.1f}s.")
    return "\n".join(lines)
