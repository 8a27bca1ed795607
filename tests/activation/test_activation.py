"""Activation against the sandbox's GA4, Meta, ActiveCampaign and HubSpot endpoints, from the session's
published marts (seed 7, 400 people; the world's clock is 2026-03-09 12:00 UTC, so only its last days'
orders are young enough to send). Each test sends to a sandbox of its own, so receipts start empty."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
import requests

from activation import meta
from activation.base import SEND_MARGIN
from activation.conversions import PURCHASE, REFUND, Conversion, ga4_client_id, read_conversions
from activation.ledger import Ledger
from activation.run import CRASH_ENV, CRASH_EXIT_CODE, activate, deliver, format_report
from pipelines.load import settings_from_index
from sandbox.server import SandboxServer

pytestmark = pytest.mark.activation
ROOT = Path(__file__).resolve().parents[2]
DESTINATIONS = ("ga4", "meta", "activecampaign", "hubspot")


# --- units -----------------------------------------------------------------------------------------
def test_meta_hashing_matches_the_published_normalization_vector():
    # Meta's customer information parameters page (developers.facebook.com/documentation/ads-commerce/
    # conversions-api/parameters/customer-information-parameters), mirrored in api-contracts.md section 6:
    # "Person@Example.com" -> "person@example.com" -> 542d2401...3083345
    assert meta.sha256(meta.normalize_email("Person@Example.com")) == \
        "542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345"
    assert meta.sha256(meta.normalize_email(" John_Smith@gmail.com ")) == \
        hashlib.sha256(b"john_smith@gmail.com").hexdigest()
    assert meta.normalize_phone("+44 844 412 4653") == "448444124653"  # Meta's phone example
    assert meta.normalize_phone("0044 844-412-4653") == "448444124653"
    assert meta.sha256(meta.normalize_country(" US ")) == hashlib.sha256(b"us").hexdigest()


def test_ga4_client_id_is_stable_and_shaped_like_a_browser_one():
    first = ga4_client_id("customer-1")
    assert first == ga4_client_id("customer-1") != ga4_client_id("customer-2")
    left, right = first.split(".")
    assert len(left) == len(right) == 10 and left.isdigit() and right.isdigit()


# --- fixtures --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def published(elt_run) -> Path:
    return elt_run["published"]


@pytest.fixture(scope="module")
def conversions(published) -> list[Conversion]:
    return read_conversions(published)


@pytest.fixture
def destination(world, monkeypatch) -> Iterator[SandboxServer]:
    """A fresh sandbox of the session's world (same clock), every destination pointed at it."""
    with SandboxServer(world, mode="bench") as server:
        for key, value in settings_from_index(server.index()).items():
            if key.startswith("ACTIVATION__"):
                monkeypatch.setenv(key, value)
        monkeypatch.setenv("ACTIVATION__META__TEST_EVENT_CODE", "TEST42")
        monkeypatch.setenv("ACTIVATION__META__BATCH_SIZE", "3")  # several batches, so mid_batch means something
        yield server


def received(server: SandboxServer, vendor: str) -> dict:
    return requests.get(f"{server.url}/_sandbox/received/{vendor}", timeout=10).json()


def eligible(conversions: list[Conversion], server: SandboxServer) -> dict[str, set]:
    """What each destination should hold, deduplicated, computed here from the rules, not by the code."""
    now = server.sandbox.clock.now()

    def young(c: Conversion, age: timedelta) -> bool:
        return now - c.occurred_at <= age - SEND_MARGIN

    crm = {c.email.strip().lower() for c in conversions if c.kind == PURCHASE and c.email and young(c, timedelta(7))}
    return {"ga4": {(c.kind, c.order_id) for c in conversions if c.has_consent and young(c, timedelta(hours=72))},
            "meta": {c.order_id for c in conversions
                     if c.kind == PURCHASE and c.has_consent and young(c, timedelta(7))},
            "activecampaign": crm, "hubspot": crm}


def holdings(server: SandboxServer, which: str = "deduplicated") -> dict[str, list]:
    """What each destination recorded, as the keys `eligible` uses (lists: duplicates show)."""
    return {"ga4": [(e["name"], e["params"]["transaction_id"]) for e in received(server, "ga4")[which]],
            "meta": [e["event_id"] for e in received(server, "meta")[which]],
            "activecampaign": [c["email"].strip().lower() for c in received(server, "activecampaign")[which]],
            "hubspot": [(c.get("email") or c.get("id")).strip().lower() for c in received(server, "hubspot")[which]]}


def assert_one_for_one(server: SandboxServer, conversions: list[Conversion]) -> None:
    expected, got, raw = eligible(conversions, server), holdings(server), holdings(server, "raw")
    for name in DESTINATIONS:
        assert sorted(got[name]) == sorted(expected[name]), name
        assert len(got[name]) == len(set(got[name])), name
        assert set(raw[name]) == expected[name], name  # raw may repeat (resends), never add


# --- the chain -------------------------------------------------------------------------------------
def test_run_then_rerun_sends_each_eligible_conversion_once(published, conversions, destination, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    expected = eligible(conversions, destination)
    assert expected["ga4"] and any(k == REFUND for k, _ in expected["ga4"]) and expected["meta"]  # a real test
    first = activate(published, warehouse)
    print(format_report(first))
    assert first.failed == 0
    assert_one_for_one(destination, conversions)
    raw_before = {name: len(v) for name, v in holdings(destination, "raw").items()}
    second = activate(published, warehouse)
    assert second.sent == 0 and {n: len(v) for n, v in holdings(destination, "raw").items()} == raw_before
    # consent: nobody without it reaches an ad platform; the ledger says why for each
    consenting = {c.order_id for c in conversions if c.has_consent}
    assert {e["params"]["transaction_id"] for e in received(destination, "ga4")["raw"]} <= consenting
    assert {e["event_id"] for e in received(destination, "meta")["raw"]} <= consenting
    with duckdb.connect(str(warehouse), read_only=True) as con:
        statuses = dict(con.execute("select destination || '/' || status, count(*) from ops.activation_ledger "
                                    "group by all").fetchall())
    purchases = sum(c.kind == PURCHASE for c in conversions)
    assert statuses["meta/no_consent"] == sum(c.kind == PURCHASE and not c.has_consent for c in conversions)
    assert statuses["meta/sent"] == len(expected["meta"])
    assert statuses["meta/too_old"] == purchases - statuses["meta/no_consent"] - statuses["meta/sent"]
    assert statuses["ga4/sent"] == len(expected["ga4"])
    # Meta: hashed only, never clear; the test event code went along
    for event in received(destination, "meta")["raw"]:
        assert all(len(v) == 64 for v in event["user_data"]["em"]) and event["test_event_code"] == "TEST42"
        assert "@" not in str(event["user_data"])


@pytest.mark.parametrize("point", ["before_send", "after_send", "mid_batch"])
def test_a_run_killed_at_a_named_point_then_rerun_ends_one_for_one(point, published, conversions, destination,
                                                                   tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    env = {**os.environ, CRASH_ENV: f"{point}:meta", "JOURNEY_WAREHOUSE": str(warehouse),
           "JOURNEY_PUBLISHED": str(published)}
    killed = subprocess.run([sys.executable, "-m", "flows.cli", "activate"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == CRASH_EXIT_CODE, killed.stderr[-2000:]
    sent_before_rerun = len(received(destination, "meta")["raw"])
    assert sent_before_rerun == {"before_send": 0, "after_send": 3, "mid_batch": 3}[point]
    rerun = activate(published, warehouse)
    assert rerun.failed == 0
    assert_one_for_one(destination, conversions)
    resent = len(received(destination, "meta")["raw"]) - len(received(destination, "meta")["deduplicated"])
    assert resent == (3 if point == "after_send" else 0)  # only a send whose record was lost is repeated


def test_a_batch_with_one_invalid_event_is_rejected_and_reported_and_the_rest_still_go(conversions, destination,
                                                                                    tmp_path):
    from activation.meta import from_settings

    now = destination.sandbox.clock.now()
    good = [c for c in conversions if c.kind == PURCHASE and c.has_consent
            and now - c.occurred_at < timedelta(days=6)][:3]
    bad = replace(good[0], conversion_id="purchase:bad:1", order_id="bad-1", occurred_at=now + timedelta(hours=2))
    target = from_settings()
    body = target.body([*good, bad])
    answer = requests.post(f"{destination.url}/meta/{target.path}", timeout=10,
                           json={**body, "access_token": target.access_token})
    assert answer.status_code == 400 and "future" in answer.json()["error"]["message"]  # the sandbox rejects it
    ledger = Ledger(tmp_path / "warehouse.duckdb")
    try:
        report = deliver(target, [*good, bad], ledger, "run-1")
        statuses = ledger.statuses("meta")
    finally:
        ledger.close()
    assert report.decided["sent"] == len(good) and report.decided["failed"] == 1
    assert any("future" in error for error in report.errors) and "error:" in format_report_of(report)
    assert statuses["purchase:bad:1"] == "failed"
    assert sorted(e["event_id"] for e in received(destination, "meta")["raw"]) == sorted(c.order_id for c in good)


def format_report_of(report) -> str:
    from activation.run import ActivationReport

    return format_report(ActivationReport("r", False, destinations=[report], conversions=1))


def test_crm_contacts_are_created_once_and_updated_on_the_next_order(published, conversions, destination, tmp_path):
    now = destination.sandbox.clock.now()
    recent: dict[str, list[Conversion]] = {}
    for c in conversions:
        if c.kind == PURCHASE and now - c.occurred_at < timedelta(days=6):
            recent.setdefault(c.customer_id, []).append(c)
    customer, (earlier, latest) = next((k, v[-2:]) for k, v in recent.items() if len(v) >= 2)
    # the marts as they were published before the latest order came in
    before = tmp_path / "before.duckdb"
    shutil.copy(published, before)
    with duckdb.connect(str(before)) as con:
        net = con.execute("select net_revenue from marts.fct_orders where source_account = ? and order_id = ?",
                          [latest.source_account, int(latest.order_id)]).fetchone()[0]
        con.execute("delete from marts.fct_orders where source_account = ? and order_id = ?",
                    [latest.source_account, int(latest.order_id)])
        con.execute("update marts.dim_customers set lifetime_orders = lifetime_orders - 1, lifetime_net_revenue = "
                    "lifetime_net_revenue - ?, last_order_at = ? where customer_id = ?",
                    [net, earlier.occurred_at.replace(tzinfo=None), customer])
    warehouse = tmp_path / "warehouse.duckdb"
    activate(before, warehouse, names=["activecampaign", "hubspot"])
    email = latest.email.strip().lower()
    first_ac = [c for c in received(destination, "activecampaign")["raw"] if c["email"].strip().lower() == email]
    assert first_ac[-1]["fieldValues"][1]["value"] == str(latest.lifetime_orders - 1)
    activate(published, warehouse, names=["activecampaign", "hubspot"])
    ac = [c for c in received(destination, "activecampaign")["raw"] if c["email"].strip().lower() == email]
    assert len(ac) == 2 and ac[-1]["fieldValues"][1]["value"] == str(latest.lifetime_orders)
    assert ac[-1]["fieldValues"][0]["value"] == str(latest.lifetime_net_revenue)
    hub = {c["email"]: c["properties"] for c in received(destination, "hubspot")["deduplicated"]}
    assert hub[email]["journey_lifetime_orders"] == str(latest.lifetime_orders)
    # one contact per email in each CRM: created at most once, then updated
    listed = requests.get(f"{destination.url}/activecampaign/api/3/contacts", params={"email": email},
                          headers={"Api-Token": destination.index()["activecampaign"]["credentials"]["api_token"]},
                          timeout=10).json()
    assert listed["meta"]["total"] == "1"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        # per contact, the runs whose upsert created it (one upsert covers all of a contact's new orders)
        created = con.execute(
            "select json_extract_string(response, '$.contact_id'), count(distinct run_id) "
            "filter (where json_extract_string(response, '$.created') = 'true') from ops.activation_ledger "
            "where destination = 'activecampaign' and status = 'sent' group by 1").fetchall()
    assert created and all(n <= 1 for _, n in created)
    assert_one_for_one_crm(destination, conversions)


def assert_one_for_one_crm(server: SandboxServer, conversions: list[Conversion]) -> None:
    expected, got = eligible(conversions, server), holdings(server)
    for name in ("activecampaign", "hubspot"):
        assert sorted(got[name]) == sorted(expected[name])


def test_journey_activate_dry_run_shows_and_sends_nothing(published, destination, tmp_path, monkeypatch, capsys):
    from flows.cli import main

    monkeypatch.setenv("JOURNEY_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("JOURNEY_PUBLISHED", str(published))
    assert main(["activate", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "would send" in out and "first request" in out
    assert all(not received(destination, v)["raw"] for v in DESTINATIONS)
    for key in [k for k in os.environ if k.startswith("ACTIVATION__")]:
        monkeypatch.delenv(key)
    assert main(["activate", "--dry-run"]) == 2
    assert "no destination is configured" in capsys.readouterr().out
