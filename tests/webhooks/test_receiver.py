"""The receiver over HTTP: valid deliveries stored once each, forged, tampered and stale ones refused with
nothing stored, duplicates acknowledged and not stored again, a torn last record tolerated."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.environment import returns_within
from tests.webhooks.conftest import SECRETS, landed, post, send_shopify, send_stripe, shopify_order, stripe_event
from webhooks.landing import Landing, LandingBusy, read_records, segments
from webhooks.receiver import ReceiverServer
from webhooks.signatures import stripe_header

pytestmark = pytest.mark.webhooks


def test_valid_deliveries_are_acknowledged_and_stored_once_each(receiver):
    bodies = [stripe_event(f"evt_{n}") for n in range(5)]
    for body in bodies:
        assert send_stripe(receiver.url, body) == (200, {"received": True, "stored": True})
    for n in range(3):
        assert send_shopify(receiver.url, shopify_order(1000 + n), f"shop-evt-{n}")[0] == 200
    records = landed(receiver.landing.folder)
    assert [r["event_id"] for r in records] == [f"evt_{n}" for n in range(5)] + [f"shop-evt-{n}" for n in range(3)]
    assert [r["body"].encode() for r in records[:5]] == bodies  # the raw body, byte for byte
    assert {r["topic"] for r in records} == {"charge.succeeded", "orders/updated"}
    assert records[5]["account"] == "test-shop.myshopify.com"


def test_forged_tampered_and_stale_deliveries_are_refused_and_nothing_is_stored(receiver):
    body = stripe_event("evt_forged")
    now = int(time.time())
    refusals = [
        send_stripe(receiver.url, body, secret="whsec_not_the_secret"),  # forged
        send_stripe(receiver.url, body, header=stripe_header(SECRETS["stripe"], body, now).replace("v1=", "v1=0")),
        post(f"{receiver.url}/stripe", body + b" ", {"Stripe-Signature": stripe_header(SECRETS["stripe"], body)}),
        send_stripe(receiver.url, body, timestamp=now - 301),  # stale: replayed after the tolerance
        post(f"{receiver.url}/stripe", body, {}),  # unsigned
        send_shopify(receiver.url, shopify_order(1), "e1", secret="shpss_forged"),
        post(f"{receiver.url}/shopify", shopify_order(1), {  # tampered: signed another body
            "X-Shopify-Hmac-Sha256": send_hmac(shopify_order(2)), "X-Shopify-Topic": "orders/updated",
            "X-Shopify-Event-Id": "e1"}),
    ]
    assert [status for status, _ in refusals] == [400] * len(refusals)
    for _, answer in refusals:  # the reason, never a secret
        assert not any(secret in json.dumps(answer) for secret in SECRETS.values())
    assert landed(receiver.landing.folder) == []
    assert receiver.receiver.counts == {"stored": 0, "duplicate": 0, "refused": len(refusals)}


def send_hmac(body: bytes) -> str:
    from webhooks.signatures import shopify_hmac

    return shopify_hmac(SECRETS["shopify"], body)


def test_duplicates_are_acknowledged_and_stored_once(receiver):
    body = stripe_event("evt_dup")
    assert send_stripe(receiver.url, body)[1]["stored"] is True
    assert send_stripe(receiver.url, body) == (200, {"received": True, "stored": False})  # Stripe's retry
    # a Shopify replay: a new webhook id, the same event id; only the id can tell
    assert send_shopify(receiver.url, shopify_order(7), "shop-evt-7")[1]["stored"] is True
    assert send_shopify(receiver.url, shopify_order(7), "shop-evt-7")[1]["stored"] is False
    with ThreadPoolExecutor(8) as pool:  # concurrent duplicates: still one copy
        answers = list(pool.map(lambda _: send_stripe(receiver.url, stripe_event("evt_race")), range(16)))
    assert sorted(a[1]["stored"] for a in answers) == [False] * 15 + [True]
    assert sorted(r["event_id"] for r in landed(receiver.landing.folder)) == ["evt_dup", "evt_race", "shop-evt-7"]


def test_seen_ids_survive_a_restart(tmp_path: Path):
    path = tmp_path / "landing"
    with ReceiverServer(path, SECRETS) as first:
        assert send_stripe(first.url, stripe_event("evt_a"))[1]["stored"] is True
    with ReceiverServer(path, SECRETS) as second:
        assert send_stripe(second.url, stripe_event("evt_a"))[1]["stored"] is False
        assert send_stripe(second.url, stripe_event("evt_b"))[1]["stored"] is True
    assert [r["event_id"] for r in landed(path)] == ["evt_a", "evt_b"]


def record(event_id: str) -> dict:
    return {"vendor": "stripe", "topic": "charge.succeeded", "event_id": event_id, "body": "{}"}


def test_a_torn_last_record_is_skipped_by_readers_and_cut_off_before_the_next_append(tmp_path: Path):
    folder = tmp_path / "landing"
    landing = Landing(folder)
    landing.append(record("evt_1"))
    landing.close()
    segment = folder / "landing-000001.jsonl"
    whole = segment.read_bytes()
    torn = b'{"vendor":"stripe","topic":"charge.succeeded","event_id":"evt_2","bo'
    with segment.open("ab") as file:  # what a kill halfway through a write leaves
        file.write(torn)
    assert [r["event_id"] for r in read_records(folder)] == ["evt_1"]
    landing = Landing(folder)
    assert (landing.torn_bytes, landing.recovered_records) == (len(torn), 1)
    assert segment.read_bytes() == whole
    assert landing.append(record("evt_2"))
    landing.close()
    assert [r["event_id"] for r in read_records(folder)] == ["evt_1", "evt_2"]


def test_segments_roll_over_and_seen_ids_span_them(tmp_path: Path):
    folder = tmp_path / "landing"
    landing = Landing(folder, segment_bytes=200)
    for n in range(10):
        assert landing.append(record(f"evt_{n}"))
    landing.close()
    assert len(segments(folder)) > 3
    assert [r["event_id"] for r in read_records(folder)] == [f"evt_{n}" for n in range(10)]
    landing = Landing(folder, segment_bytes=200)
    assert not any(landing.append(record(f"evt_{n}")) for n in range(10))  # all seen, whichever segment
    assert landing.append(record("evt_10"))
    landing.close()


def test_one_receiver_at_a_time_per_landing(tmp_path: Path):
    landing = Landing(tmp_path / "landing")
    with pytest.raises(LandingBusy, match="another receiver"):
        Landing(tmp_path / "landing")
    landing.close()
    Landing(tmp_path / "landing").close()  # free again once the first lets go (or dies)


def test_an_unconfigured_vendor_answers_503_naming_the_setting(tmp_path: Path):
    with ReceiverServer(tmp_path / "landing", {"stripe": SECRETS["stripe"], "shopify": None}) as server:
        status, answer = send_shopify(server.url, shopify_order(1), "e1")
        assert status == 503 and "WEBHOOKS__SHOPIFY__CLIENT_SECRET" in answer["error"]
        assert post(f"{server.url}/paypal", b"{}", {})[0] == 404
    assert landed(tmp_path / "landing") == []


def test_several_stripe_accounts_each_with_its_endpoint_secret(tmp_path: Path):
    setting = "acct_one=whsec_first_endpoint,acct_two=whsec_second_endpoint"
    with ReceiverServer(tmp_path / "landing", {"stripe": setting, "shopify": None}) as server:
        assert send_stripe(server.url, stripe_event("evt_1"), secret="whsec_second_endpoint")[0] == 200
        assert send_stripe(server.url, stripe_event("evt_2"), secret="whsec_first_endpoint")[0] == 200
        assert send_stripe(server.url, stripe_event("evt_3"), secret="whsec_third")[0] == 400
        connect = json.loads(stripe_event("evt_4"))
        connect["account"] = "acct_connected"
        assert send_stripe(server.url, json.dumps(connect).encode(), secret="whsec_first_endpoint")[0] == 200
    assert [(r["event_id"], r["account"]) for r in landed(tmp_path / "landing")] == [
        ("evt_1", "acct_two"), ("evt_2", "acct_one"), ("evt_4", "acct_connected")]


def test_several_shops_each_with_its_own_apps_secret(tmp_path: Path):
    setting = "test-shop.myshopify.com=shop_one_secret,other-shop.myshopify.com=shop_two_secret"
    with ReceiverServer(tmp_path / "landing", {"stripe": None, "shopify": setting}) as server:
        assert send_shopify(server.url, shopify_order(1), "e1", secret="shop_one_secret")[0] == 200
        assert send_shopify(server.url, shopify_order(2), "e2", secret="shop_two_secret")[0] == 400  # not its shop's
        status, answer = send_shopify(server.url, shopify_order(3), "e3", shop="third-shop.myshopify.com",
                                      secret="shop_one_secret")
        assert status == 400 and "third-shop.myshopify.com" in answer["error"]  # no secret for it: named, refused
        assert "shop_one_secret" not in answer["error"]
    assert [(r["event_id"], r["account"]) for r in landed(tmp_path / "landing")] == [("e1", "test-shop.myshopify.com")]


def test_a_receiver_stopped_before_it_served_stops_and_frees_its_port(tmp_path: Path):
    # as when Ctrl-C lands while `journey webhooks` registers with a sandbox, before serve_forever begins
    server = ReceiverServer(tmp_path / "landing", SECRETS)
    url = server.url
    assert returns_within(server.stop)
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/", timeout=2)
