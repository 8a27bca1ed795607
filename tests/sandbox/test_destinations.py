"""The destinations clients write to: GA4's Measurement Protocol and Meta's Conversions API, over real
HTTP, with what they record readable at `/_sandbox/received/<vendor>`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest
import requests

from sandbox.server import SandboxServer
from sandbox.world import World

pytestmark = pytest.mark.sandbox

SEED = 22
HASHED_PERSON = "542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345"


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(World.build(SEED, 150), mode="bench") as server:
        yield server


@pytest.fixture(scope="module")
def index(server: SandboxServer) -> dict:
    return requests.get(server.url + "/", timeout=10).json()


@pytest.fixture(scope="module")
def now(server: SandboxServer) -> int:
    return int(server.sandbox.clock.now().timestamp())


def received(server: SandboxServer, vendor: str) -> dict:
    return requests.get(f"{server.url}/_sandbox/received/{vendor}", timeout=10).json()


def test_index_has_ga4_and_meta_in_the_design_shape(index, server):
    assert list(index)[-2:] == ["ga4", "meta"]
    assert index["ga4"]["base_url"] == f"{server.url}/ga4"
    assert index["meta"]["base_url"] == f"{server.url}/meta"
    assert set(index["ga4"]) == set(index["meta"]) == {"base_url", "credentials"}
    assert set(index["ga4"]["credentials"]) == {"measurement_id", "api_secret"}
    assert index["ga4"]["credentials"]["measurement_id"].startswith("G-")
    assert set(index["meta"]["credentials"]) == {"pixel_id", "access_token"}
    assert index["meta"]["credentials"]["pixel_id"].isdigit()


# --- GA4 -------------------------------------------------------------------------------------------
def ga4_post(index: dict, body: object, path: str = "/mp/collect", **credentials: str) -> requests.Response:
    params = {**index["ga4"]["credentials"], **credentials}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(index["ga4"]["base_url"] + path, params=params, data=data, timeout=10,
                         headers={"Content-Type": "application/json"})


def purchase(transaction_id: str, now: int, **params: object) -> dict:
    return {"client_id": "123456.7654321", "timestamp_micros": now * 1_000_000,
            "events": [{"name": "purchase", "params": {"transaction_id": transaction_id, "value": 12.5,
                                                       "currency": "USD", **params}}]}


def codes(response: requests.Response) -> list[str]:
    assert response.status_code == 200
    return [m["validationCode"] for m in response.json()["validationMessages"]]


def test_ga4_debug_accepts_a_good_event_and_records_nothing(index, server, now):
    before = len(received(server, "ga4")["raw"])
    assert codes(ga4_post(index, purchase("T-debug", now), "/debug/mp/collect")) == []
    assert len(received(server, "ga4")["raw"]) == before


@pytest.mark.parametrize(("change", "expected"), [
    (lambda b: b["events"][0].update(name="_badEventName"), "NAME_INVALID"),
    (lambda b: b["events"][0].update(name="9lives"), "NAME_INVALID"),
    (lambda b: b["events"][0].update(name="ga_custom"), "NAME_RESERVED"),
    (lambda b: b["events"][0].update(name="session_start"), "NAME_RESERVED"),
    (lambda b: b["events"][0].update(name="x" * 41), "VALUE_OUT_OF_BOUNDS"),
    (lambda b: b["events"][0]["params"].update(firebase_thing="1"), "NAME_RESERVED"),
    (lambda b: b["events"][0]["params"].update(note="x" * 101), "VALUE_OUT_OF_BOUNDS"),
    (lambda b: b["events"][0]["params"].update({f"p{i}": i for i in range(25)}), "EXCEEDED_MAX_ENTITIES"),
    (lambda b: b.update(events=b["events"] * 26), "EXCEEDED_MAX_ENTITIES"),
    (lambda b: b.pop("client_id"), "VALUE_REQUIRED"),
    (lambda b: b.update(events=[]), "VALUE_REQUIRED"),
    (lambda b: b.update(timestamp_micros=b["timestamp_micros"] - 73 * 3600 * 1_000_000), "VALUE_INVALID"),
    (lambda b: b["events"][0]["params"].update(items=[{"item_name": "x" * 99}] * 1500),
     "VALUE_OUT_OF_BOUNDS"),  # a body over 130 kB
])
def test_ga4_debug_reports_each_broken_limit(index, now, change, expected):
    body = purchase("T-bad", now)
    change(body)
    assert expected in codes(ga4_post(index, body, "/debug/mp/collect"))


def test_ga4_debug_message_shape_follows_the_docs(index, now):
    body = purchase("T-shape", now)
    body["events"][0]["name"] = "_badEventName"
    message = ga4_post(index, body, "/debug/mp/collect").json()["validationMessages"][0]
    assert set(message) == {"fieldPath", "description", "validationCode"}
    assert "Event at index: [0] has invalid name [_badEventName]" in message["description"]
    assert codes(ga4_post(index, b"not json", "/debug/mp/collect")) == ["VALUE_INVALID"]


def test_ga4_collect_answers_204_and_records_only_valid_requests_with_right_credentials(index, server, now):
    before = len(received(server, "ga4")["raw"])
    response = ga4_post(index, purchase("T-1", now))
    assert response.status_code == 204 and response.content == b""
    for wrong in ({"api_secret": "wrong"}, {"measurement_id": "G-WRONG"}):
        assert ga4_post(index, purchase("T-2", now), **wrong).status_code == 204
    bad = purchase("T-3", now)
    bad["events"][0]["name"] = "_bad"
    assert ga4_post(index, bad).status_code == 204
    raw = received(server, "ga4")["raw"][before:]
    assert [(e["name"], e["params"]["transaction_id"], e["client_id"]) for e in raw] == [
        ("purchase", "T-1", "123456.7654321")]


def test_ga4_deduplicates_purchases_by_transaction_id(index, server, now):
    for body in (purchase("T-dup", now), purchase("T-dup", now, value=99), purchase("T-dup", now)):
        assert ga4_post(index, body).status_code == 204
    refund = purchase("T-dup", now)
    refund["events"][0]["name"] = "refund"
    page_view = {"client_id": "1.2", "events": [{"name": "page_view", "params": {}}]}
    for body in (refund, page_view, page_view):
        ga4_post(index, body)
    got = received(server, "ga4")
    dup = [e for e in got["raw"] if e["params"].get("transaction_id") == "T-dup"]
    assert len(dup) == 4
    kept = [e for e in got["deduplicated"] if e["params"].get("transaction_id") == "T-dup"]
    assert [(e["name"], e["params"]["value"]) for e in kept] == [("purchase", 12.5), ("refund", 12.5)]
    assert sum(e["name"] == "page_view" for e in got["deduplicated"]) == 2  # nothing to deduplicate them by


# --- Meta ------------------------------------------------------------------------------------------
def meta_post(index: dict, events: list[dict], token: str | None = None, **body: object) -> requests.Response:
    meta = index["meta"]["credentials"]
    return requests.post(f"{index['meta']['base_url']}/v21.0/{meta['pixel_id']}/events", timeout=10,
                         params={"access_token": token or meta["access_token"]}, json={"data": events, **body})


def server_event(now: int, event_id: str, **fields: object) -> dict:
    return {"event_name": "Purchase", "event_time": now - 3600, "event_id": event_id, "action_source": "website",
            "event_source_url": "https://shop.example.com/checkout", "custom_data": {"value": 12.5, "currency": "USD"},
            "user_data": {"em": [HASHED_PERSON], "client_user_agent": "Mozilla/5.0"}, **fields}


def test_meta_accepts_hashed_email_and_records_events_with_test_event_code(index, server, now):
    assert hashlib.sha256(" Person@Example.com ".strip().lower().encode()).hexdigest() == HASHED_PERSON
    before = len(received(server, "meta")["raw"])
    response = meta_post(index, [server_event(now, "ok-1"), server_event(now, "ok-2")], test_event_code="TEST123")
    assert response.status_code == 200
    body = response.json()
    assert body["events_received"] == 2 and body["messages"] == [] and body["fbtrace_id"]
    raw = received(server, "meta")["raw"][before:]
    assert [(e["event_id"], e["test_event_code"]) for e in raw] == [("ok-1", "TEST123"), ("ok-2", "TEST123")]


def test_meta_rejects_the_clear_address(index, now):
    event = server_event(now, "clear")
    event["user_data"]["em"] = ["person@example.com"]
    response = meta_post(index, [event])
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("OAuthException", 100)
    assert {"message", "error_subcode", "fbtrace_id"} <= set(error)


@pytest.mark.parametrize("broken", [
    {"event_name": None}, {"event_time": None}, {"action_source": None},
    {"event_time": "PAST"}, {"event_time": "FUTURE"}, {"event_source_url": None},
    {"user_data": {"em": HASHED_PERSON}},  # website event without client_user_agent
    {"user_data": {"client_user_agent": "Mozilla/5.0", "ph": "15551234567"}},
])
def test_meta_rejects_the_whole_batch_for_one_invalid_event(index, server, now, broken):
    bad = server_event(now, "bad")
    for key, value in broken.items():
        if value is None:
            bad.pop(key)
        elif value == "PAST":
            bad[key] = now - 7 * 86400 - 60
        elif value == "FUTURE":
            bad[key] = now + 3600
        else:
            bad[key] = value
    before = received(server, "meta")["raw"]
    response = meta_post(index, [server_event(now, "good-1"), bad, server_event(now, "good-2")])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 100
    assert received(server, "meta")["raw"] == before


def test_meta_refuses_more_than_1000_events_and_a_wrong_token(index, server, now):
    before = received(server, "meta")["raw"]
    assert meta_post(index, [server_event(now, f"many-{i}") for i in range(1001)]).status_code == 400
    wrong = meta_post(index, [server_event(now, "wrong-token")], token="EAAwrong")
    assert wrong.status_code == 401
    assert (wrong.json()["error"]["type"], wrong.json()["error"]["code"]) == ("OAuthException", 190)
    assert received(server, "meta")["raw"] == before
    other_events = [server_event(now, f"many-{i}", action_source="system_generated") for i in range(1000)]
    assert meta_post(index, other_events).json()["events_received"] == 1000


def test_meta_takes_the_token_and_data_in_a_form_body(index, server, now):
    meta = index["meta"]["credentials"]
    response = requests.post(f"{index['meta']['base_url']}/v21.0/{meta['pixel_id']}/events", timeout=10,
                             data={"access_token": meta["access_token"],
                                   "data": json.dumps([server_event(now, "form-1")])})
    assert response.status_code == 200 and response.json()["events_received"] == 1
    assert received(server, "meta")["raw"][-1]["event_id"] == "form-1"


def test_meta_deduplicates_by_event_name_and_event_id(index, server, now):
    batch = [server_event(now, "dedup-1"), server_event(now, "dedup-1"),
             server_event(now, "dedup-1", event_name="AddToCart"), server_event(now, "dedup-2")]
    assert meta_post(index, batch).status_code == 200
    assert meta_post(index, [server_event(now, "dedup-2")]).status_code == 200
    got = received(server, "meta")
    dedup = [(e["event_name"], e["event_id"]) for e in got["raw"] if e["event_id"].startswith("dedup-")]
    assert len(dedup) == 5
    kept = [(e["event_name"], e["event_id"]) for e in got["deduplicated"] if e["event_id"].startswith("dedup-")]
    assert kept == [("Purchase", "dedup-1"), ("AddToCart", "dedup-1"), ("Purchase", "dedup-2")]
