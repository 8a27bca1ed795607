"""The scorecard row: each figure's label, value and delta against the comparison period, as text.

Kept apart from the Streamlit script so tests can compute the expected tiles from the sandbox's truth
and compare them, character for character, with what the page renders. Money and counts compare as a
percent change (Looker Studio's default); rates as a difference in percentage points, since a percent
change of a percentage reads ambiguously.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from dashboard.queries import Kpis


@dataclass(frozen=True)
class Scorecard:
    label: str
    value: str
    delta: str | None  # None: nothing to compare with (the comparison period's figure is zero or undefined)
    delta_color: str  # "normal": up is good; "inverse": up is bad
    help: str


def money(value: Decimal | None) -> str:
    return "–" if value is None else f"{value:,.2f}"


def count(value: int) -> str:
    return f"{value:,}"


def rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def percent_change(current: Decimal | int, previous: Decimal | int | None) -> str | None:
    if previous is None or current is None or previous == 0:
        return None
    return f"{(Decimal(current) - Decimal(previous)) / Decimal(previous):+.1%}"


def point_change(current: float | None, previous: float | None) -> str | None:
    if current is None or previous is None:
        return None
    return f"{(current - previous) * 100:+.1f} pp"


def scorecards(current: Kpis, previous: Kpis) -> list[Scorecard]:
    return [
        Scorecard("Net revenue", money(current.net_revenue), percent_change(current.net_revenue, previous.net_revenue),
                  "normal", "Gross revenue of counted orders placed in the range minus refunds processed in it."),
        Scorecard("Orders", count(current.orders), percent_change(current.orders, previous.orders), "normal",
                  "Counted orders (paid, partially paid, partially refunded or refunded) placed in the range."),
        Scorecard("Average order value", money(current.average_order_value),
                  percent_change(current.average_order_value, previous.average_order_value), "normal",
                  "Gross revenue / counted orders."),
        Scorecard("New customers", count(current.new_customers),
                  percent_change(current.new_customers, previous.new_customers), "normal",
                  "People whose first counted order falls in the range."),
        Scorecard("Returning customers", rate(current.returning_share),
                  point_change(current.returning_share, previous.returning_share), "normal",
                  "People with a counted order in the range that was not their first / people with a counted "
                  "order in the range."),
        Scorecard("Conversion rate", rate(current.conversion_rate),
                  point_change(current.conversion_rate, previous.conversion_rate), "normal",
                  "New customers in the range / contacts created in the range."),
        Scorecard("Refund rate", rate(current.refund_rate), point_change(current.refund_rate, previous.refund_rate),
                  "inverse", "Refunds processed in the range / gross revenue of the range."),
        Scorecard("Failed payments", count(current.failed_payments),
                  percent_change(current.failed_payments, previous.failed_payments), "inverse",
                  "Stripe charges that failed, by the day they were created."),
    ]
