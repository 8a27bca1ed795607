"""The vendors' own client libraries, pointed at the sandbox and otherwise unchanged, page through it as they
would through the real APIs: stripe-python by its API base (it follows each list's relative `url`),
hubspot-api-client by its host."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import stripe
from hubspot import HubSpot
from hubspot.crm.contacts import PublicObjectSearchRequest

from sandbox.server import SandboxServer
from sandbox.world import World


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(World.build(3, 150), mode="bench") as running:
        yield running


def test_stripe_python_pages_every_list_by_its_own_cursor(server):
    index = server.index()["stripe"]
    client = stripe.StripeClient(index["credentials"]["api_key"], base_addresses={"api": index["base_url"]})
    served = server.sandbox.vendors["stripe"].lists
    customers = [c.id for c in client.v1.customers.list(params={"limit": 7}).auto_paging_iter()]
    assert customers == [c["id"] for c in served["customers"]]
    charges = list(client.v1.charges.list(params={"limit": 10}).auto_paging_iter())
    assert [c.id for c in charges] == [c["id"] for c in served["charges"]]
    assert {c.currency for c in charges} >= {"usd"} and all(isinstance(c.amount, int) for c in charges)
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("sk_test_wrong", base_addresses={"api": index["base_url"]}).v1.customers.list()


def test_hubspot_api_client_lists_searches_and_reads_history(server):
    index = server.index()["hubspot"]
    client = HubSpot(access_token=index["credentials"]["access_token"], host=index["base_url"])
    hubspot = server.sandbox.vendors["hubspot"]
    contacts = client.crm.contacts.get_all()
    assert len(contacts) == hubspot.served_counts()["contacts"]
    found = client.crm.contacts.search_api.do_search(public_object_search_request=PublicObjectSearchRequest(
        limit=5, filter_groups=[{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}]))
    assert 0 < found.total <= len(contacts) and len(found.results) == 5
    one = client.crm.contacts.basic_api.get_by_id(contacts[0].id, properties_with_history=["lifecyclestage"])
    assert [h["value"] for h in hubspot.lifecycle_history(contacts[0].id)] == [
        h.value for h in one.properties_with_history["lifecyclestage"]]
