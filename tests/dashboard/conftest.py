"""Fixtures for the dashboard's tests: the session's published marts (from `elt_run`), figures computed
from the sandbox's truth (never from the mart), and helpers to render the page headless."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from dashboard.queries import Kpis
from dashboard.ranges import DateRange
from sandbox.truth import daily_kpi_rows, order_rows

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


@dataclass
class Truth:
    """The truth's daily KPIs and orders (sandbox/truth.py), with the figures the scorecards show."""

    daily: list[dict]
    orders: list[dict]

    @property
    def as_of(self) -> date:
        return date.fromisoformat(self.daily[-1]["date_day"])

    def kpis(self, rng: DateRange, countries: tuple[str, ...] = (), customer_type: str = "all") -> Kpis:
        """DESIGN.md's definitions on the truth. Unfiltered, additive figures are the days' sums (refunds
        by refund date); with an order filter, the matching orders' figures (refunds by order date, as the
        dashboard documents), while contacts and failed payments, which have no country, stay whole."""
        days = [d for d in self.daily if rng.start <= date.fromisoformat(d["date_day"]) <= rng.end]
        orders = [o for o in self.orders if o["counted"] and rng.start <= _day(o["created_at"]) <= rng.end]
        customers = {o["person_id"] for o in orders}
        returning = {o["person_id"] for o in orders if not o["is_first_order"]}
        contacts = sum(d["contacts_created"] for d in days)
        failed = sum(d["failed_payments"] for d in days)
        if not countries and customer_type == "all":
            return Kpis(sum((d["gross_revenue"] for d in days), Decimal(0)), sum((d["refunds"] for d in days),
                        Decimal(0)), sum(d["orders"] for d in days), sum(d["new_customers"] for d in days),
                        len(customers), len(returning), contacts, failed)
        kept = [o for o in orders if (not countries or o["country"] in countries)
                and (customer_type == "all" or o["is_first_order"] == (customer_type == "new"))]
        return Kpis(sum((o["gross"] for o in kept), Decimal(0)), sum((o["refunds"] for o in kept), Decimal(0)),
                    len(kept), sum(1 for o in kept if o["is_first_order"]), len({o["person_id"] for o in kept}),
                    len({o["person_id"] for o in kept if not o["is_first_order"]}), contacts, failed)


def _day(timestamp: str) -> date:
    moment = datetime.fromisoformat(timestamp)
    return (moment.astimezone(UTC) if moment.tzinfo else moment).date()


@pytest.fixture(scope="session")
def truth(world) -> Truth:
    return Truth(daily_kpi_rows(world), order_rows(world))


@pytest.fixture(scope="session")
def published(elt_run) -> Path:
    """The session's published marts; read-only for the tests (copy it to change it)."""
    return elt_run["published"]


@pytest.fixture
def private_chain(elt_run, tmp_path) -> dict[str, Path]:
    """A private copy of the session's warehouse and published file, for a test that publishes again."""
    warehouse, published = tmp_path / "warehouse.duckdb", tmp_path / "marts.duckdb"
    shutil.copyfile(elt_run["warehouse"], warehouse)
    shutil.copyfile(elt_run["published"], published)
    return {"warehouse": warehouse, "published": published}


NEWER_MARTS = ("fct_attribution", "fct_payments")
ACQUISITION_COLUMNS = ("acquisition_channel", "acquisition_source", "acquisition_medium", "acquisition_campaign")


def without_newer_marts(source: Path, target: Path) -> Path:
    """A copy of the published file as an older run published it: no fct_attribution, no fct_payments and
    no acquisition columns on dim_customers, so the panels that read them must show their notes."""
    shutil.copyfile(source, target)
    with duckdb.connect() as con:
        con.execute("attach ? as p", [str(target)])
        con.execute("use p")
        for table in NEWER_MARTS:
            con.execute(f"drop table marts.{table}")
        for column in ACQUISITION_COLUMNS:
            con.execute(f"alter table marts.dim_customers drop column {column}")
        con.execute("checkpoint p")
    return target
