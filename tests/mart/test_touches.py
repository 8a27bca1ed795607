"""int_touches_unioned from the whole chain, checked against the truth's touches.csv: every touch it
shows really happened (precision 1.0), none is shown twice, and buyers have enough touches for attribution."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from sandbox.truth import people_rows
from sandbox.world import CHANNELS, touch_rows

pytestmark = [pytest.mark.mart, pytest.mark.slow]

SESSION_WINDOW = timedelta(minutes=30)  # how long before its order a converting session can have started


@pytest.fixture(scope="module")
def observed(chain) -> list[dict]:
    with duckdb.connect(str(chain.warehouse), read_only=True) as con:
        cursor = con.execute("select touch_id, source_system, source_record_id, email, touched_at, utm_source, "
                             "utm_medium, utm_campaign, channel from intermediate.int_touches_unioned")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def matched(observed, chain) -> list[tuple[dict, tuple | None]]:
    """Each observed touch with the truth touch it is (person, time, source, medium, campaign), or None.
    HubSpot's must have the same time; Shopify's, stamped at the order, the latest 0-30 minutes before it."""
    world = chain.world
    person_of = {r["email"]: r["person_id"] for r in people_rows(world)}
    truth: dict[int, list[tuple]] = defaultdict(list)
    for r in touch_rows(world):
        truth[r["person_id"]].append((r["person_id"], datetime.fromisoformat(r["touched_at"]), r["source"],
                                      r["medium"], r["campaign"]))
    pairs = []
    for row in observed:
        at = row["touched_at"].replace(tzinfo=UTC)
        utm = (row["utm_source"], row["utm_medium"], row["utm_campaign"] or "")
        same = [t for t in truth.get(person_of.get(row["email"]), []) if t[2:] == utm]
        if row["source_system"] == "hubspot":
            hits = [t for t in same if t[1] == at]
        else:
            hits = [t for t in same if timedelta(0) <= at - t[1] <= SESSION_WINDOW]
        pairs.append((row, max(hits, key=lambda t: t[1]) if hits else None))
    return pairs


def test_every_observed_touch_really_happened(matched, observed, chain):
    world = chain.world
    real = [row for row, touch in matched if touch is not None]
    precision = len(real) / len(observed)
    distinct = {touch for _, touch in matched if touch is not None}
    recall = len(distinct) / len(touch_rows(world))
    print(f"\nint_touches_unioned: {len(observed)} touches, precision {precision:.3f}, "
          f"recall {recall:.3f} of the truth's {len(touch_rows(world))}")
    assert observed and precision == 1.0
    assert all(CHANNELS[(row["utm_source"], row["utm_medium"])] == row["channel"] for row in observed)
    assert len({row["touch_id"] for row in observed}) == len(observed)


def test_no_truth_touch_is_observed_twice(matched):
    twice = {touch: n for touch, n in Counter(touch for _, touch in matched if touch is not None).items() if n > 1}
    assert not twice


def test_every_observable_touch_is_observed_once(matched, chain):
    """HubSpot sees every touch of its contacts; Shopify the converting session of every order it still has,
    of which those of HubSpot contacts are kept as HubSpot's (deduplicated), the others as Shopify's."""
    world = chain.world
    listed = {o.order_id for o in world.orders()}
    expected = {(p.person_id, t.touched_at) for p in world.people if p.in_hubspot for t in p.touches
                if t.touched_at <= world.clock}
    shopify = {(p.person_id, t.touched_at) for p in world.people if not p.in_hubspot
               for order_id, t in p.sessions.items() if order_id in listed}
    got = Counter((touch[0], touch[1]) for _, touch in matched if touch is not None)
    assert set(got) == expected | shopify
    by_system = Counter(row["source_system"] for row, _ in matched)
    assert by_system["shopify"] == len(shopify)


def test_buyers_have_at_least_3_touches_on_average(observed, chain):
    world = chain.world
    buyers = {r["email"] for r in people_rows(world) if r["lifetime_orders"] > 0}
    per_email = Counter(row["email"] for row in observed)
    average = sum(per_email[email] for email in buyers) / len(buyers)
    print(f"\naverage touches per buyer: {average:.2f} over {len(buyers)} buyers")
    assert average >= 3
