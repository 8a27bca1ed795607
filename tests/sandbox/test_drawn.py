"""ActiveCampaign keeps records as `Drawn` (the fields listings read, and how to draw the rest from the world)
and draws them when served (Shopify and Stripe store theirs: tests/sandbox/test_store.py): what a listing sorts
and filters on must be exactly what the served record says, and a drawn record must serve as the record itself
(JSON, mapping reads, copies for writes)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from sandbox.drawn import Drawn, plain, whole
from sandbox.server import Sandbox
from sandbox.world import World

pytestmark = pytest.mark.sandbox


def drawn_records(vendor) -> list[Drawn]:
    """Every `Drawn` a vendor object keeps, in lists or dicts of lists among its attributes."""
    found = []
    for value in vars(vendor).values():
        groups = value.values() if isinstance(value, dict) else [value] if isinstance(value, list) else []
        for group in groups:
            if isinstance(group, list):
                found += [r for r in group if isinstance(r, Drawn)]
            elif isinstance(group, Drawn):
                found.append(group)
    return found


@pytest.mark.parametrize("days", [0, 3])
def test_every_drawn_records_keys_are_its_served_fields(world: World, days: int):
    sandbox = Sandbox(world, mode="bench")
    if days:
        sandbox.advance(timedelta(days=days))
    counts = {}
    for name, vendor in sandbox.vendors.items():
        records = drawn_records(vendor)
        counts[name] = len(records)
        for record in records:
            served = record.record()
            wrong = {k: (v, served.get(k, "<missing>")) for k, v in record.keys_.items()
                     if served.get(k, object()) != v}
            assert not wrong, f"{name}: a listing would read {wrong} (key, served) for record {record!r}"
    # the vendor whose records are drawn: the check above must have met them
    assert counts["activecampaign"] >= 400, counts
    hubspot = sandbox.vendors["hubspot"]  # histories drawn when asked, as the records they belong to
    contact = next(iter(hubspot.records["contacts"].values()))
    assert hubspot.lifecycle_history(contact["id"])[0]["value"] == contact["properties"]["lifecyclestage"]


def test_a_drawn_record_serves_as_the_record_it_stands_for(world: World):
    contact = Sandbox(world, mode="bench").vendors["activecampaign"].lists["contacts"][0]
    assert isinstance(contact, Drawn)
    record = contact.record()
    assert json.loads(json.dumps({"contacts": [contact]}, default=plain)) == {"contacts": [record]}
    assert contact["firstName"] == record["firstName"] and "cdate" in contact and len(contact) == len(record)
    assert dict(contact) == record and whole(contact) == record and whole(contact) is not whole(contact)
    with pytest.raises(TypeError):
        contact["id"] = 1  # read-only: a write copies it first (`whole`)
    with pytest.raises(TypeError, match="not JSON serializable"):
        json.dumps(object(), default=plain)


def test_stripe_charges_and_their_events_are_rendered_as_of_each_refund(world: World):
    """A charge is served as it is now (every refund counted); each `charge.refunded` event shows it just after
    that refund, and what that refund changed."""
    stripe = Sandbox(world, mode="bench").vendors["stripe"]
    charges = {c["id"]: c.record() for c in stripe.lists["charges"]}
    refunds: dict[str, list[dict]] = {}
    for refund in sorted((r.record() for r in stripe.lists["refunds"]), key=lambda r: (r["created"], r["id"])):
        refunds.setdefault(refund["charge"], []).append(refund)
    events = sorted((e.record() for e in stripe.lists["events"] if e["type"] == "charge.refunded"),
                    key=lambda e: e["created"])
    assert len(events) == sum(map(len, refunds.values())) >= 20
    seen: dict[str, int] = {}
    for event in events:
        charge, previous = event["data"]["object"], event["data"]["previous_attributes"]
        n = seen[charge["id"]] = seen.get(charge["id"], 0) + 1
        assert charge["amount_refunded"] == sum(r["amount"] for r in refunds[charge["id"]][:n])
        assert previous["amount_refunded"] == sum(r["amount"] for r in refunds[charge["id"]][:n - 1])
    for charge_id, done in refunds.items():
        assert charges[charge_id]["amount_refunded"] == sum(r["amount"] for r in done)
        assert charges[charge_id]["refunded"] == (charges[charge_id]["amount_refunded"] >= charges[charge_id]["amount"])
