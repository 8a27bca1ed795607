"""Fault injection, vendors' rate limits and the movable clock, over real sockets.

Each test starts its own small sandbox (the session's is fault-free and shared), so counts and buckets
start from zero."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import pytest
import requests

from flows.cli import main as journey
from sandbox.faults import FaultSpec
from sandbox.server import SandboxServer
from sandbox.world import World

pytestmark = pytest.mark.sandbox

SEED = 11
# each vendor's credential header, filled from its credentials in the index
AUTH = {"activecampaign": ("Api-Token", "{api_token}"), "shopify": ("X-Shopify-Access-Token", "{access_token}"),
        "stripe": ("Authorization", "Bearer {api_key}"), "hubspot": ("Authorization", "Bearer {access_token}")}


@pytest.fixture(scope="module")
def world() -> World:
    return World.build(SEED, 80)


@pytest.fixture
def serve(world: World) -> Iterator[Callable[..., SandboxServer]]:
    """Start a sandbox on `world` with the given faults and mode (bench unless said); stopped after the test."""
    servers: list[SandboxServer] = []

    def start(faults: str | None = None, mode: str = "bench", on: World | None = None) -> SandboxServer:
        servers.append(SandboxServer(on or world, faults=faults, mode=mode).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


class Api:
    """Authenticated requests to one sandbox's vendors, by vendor name and path below its base URL."""

    def __init__(self, server: SandboxServer):
        self.server = server
        self.index = server.index()
        self.session = requests.Session()

    def headers(self, vendor: str) -> dict[str, str]:
        name, template = AUTH[vendor]
        return {name: template.format(**self.index[vendor]["credentials"])}

    def url(self, vendor: str, path: str) -> str:
        return self.index[vendor]["base_url"] + path

    def get(self, vendor: str, path: str, timeout: float = 10, **params) -> requests.Response:
        return self.session.get(self.url(vendor, path), params=params, headers=self.headers(vendor), timeout=timeout)

    def stats(self) -> dict:
        return requests.get(self.server.url + "/_sandbox/stats", timeout=10).json()


def raw_request(server: SandboxServer, api: Api, vendor: str, path: str) -> socket.socket:
    """A GET written by hand on a fresh socket, for faults a client library would paper over."""
    url = urlsplit(api.url(vendor, path))
    sock = socket.create_connection((url.hostname, url.port), timeout=5)
    headers = "".join(f"{k}: {v}\r\n" for k, v in api.headers(vendor).items())
    sock.sendall(f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n{headers}\r\n".encode())
    return sock


# --- the spec ------------------------------------------------------------------------------------
def test_spec_splits_probabilities_from_exact_counts():
    spec = FaultSpec.parse("429=0.05, 5xx=3,timeout=1,timeout_s=0.5,reset=0")
    assert spec.probabilities == {"429": 0.05}
    assert spec.counts == {"5xx": 3, "timeout": 1}
    assert spec.timeout_s == 0.5
    assert FaultSpec.parse(None) == FaultSpec.parse("") == FaultSpec()


@pytest.mark.parametrize("spec", ["teapot=1", "429", "429=-1", "429=1.5", "5xx=lots", "5xx=1,5xx=2"])
def test_spec_rejects_what_it_cannot_mean(spec):
    with pytest.raises(ValueError, match="fault spec"):
        FaultSpec.parse(spec)


# --- each fault kind, counted --------------------------------------------------------------------
def test_injected_429_is_each_vendors_own_rate_limit_response(serve):
    api = Api(serve("429=4"))
    paths = {"activecampaign": "/contacts", "shopify": "/shop.json", "stripe": "/v1/account",
             "hubspot": "/account-info/v3/details"}
    refused = {}
    for vendor, path in paths.items():  # counted faults hit requests 1, 3, 5, 7: each vendor's first
        refused[vendor] = api.get(vendor, path)
        assert api.get(vendor, path).status_code == 200
    assert all(r.status_code == 429 for r in refused.values())
    assert refused["activecampaign"].headers["Retry-After"] == "1"
    assert refused["shopify"].headers["Retry-After"] == "0.5"
    assert refused["shopify"].json()["errors"].startswith("Exceeded 2 calls per second for api client.")
    assert refused["stripe"].json()["error"]["code"] == "rate_limit"
    assert refused["stripe"].json()["error"]["type"] == "invalid_request_error"
    assert refused["stripe"].headers["Stripe-Should-Retry"] == "true"
    assert refused["hubspot"].json()["errorType"] == "RATE_LIMIT"
    assert refused["hubspot"].json()["policyName"] == "TEN_SECONDLY_ROLLING"
    stats = api.stats()
    assert stats["faults"]["429"] == 4
    assert sum(stats["rate_limited"].values()) == 0  # injected, not earned


def test_exact_count_injects_exactly_that_many_and_never_twice_in_a_row(serve):
    api = Api(serve("5xx=3"))
    assert requests.get(api.server.url + "/", timeout=10).status_code == 200  # not a vendor request
    statuses = [api.get("stripe", "/v1/charges", limit=1).status_code for _ in range(10)]
    assert statuses == [500, 200, 502, 200, 503, 200, 200, 200, 200, 200]
    assert api.get("stripe", "/v1/charges", limit=1).status_code == 200
    assert api.stats()["faults"] == {"429": 0, "5xx": 3, "timeout": 0, "reset": 0, "truncate": 0, "shift": 0}


def test_timeout_stalls_until_the_client_gives_up(serve):
    api = Api(serve("timeout=1,timeout_s=0.6"))
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.get("hubspot", "/crm/v3/objects/contacts", timeout=0.2)
    assert time.monotonic() - started < 0.6
    assert api.get("hubspot", "/crm/v3/objects/contacts", timeout=0.5).status_code == 200
    assert api.stats()["faults"]["timeout"] == 1


def test_reset_aborts_the_connection_with_a_tcp_reset(serve):
    server = serve("reset=1")
    api = Api(server)
    with raw_request(server, api, "shopify", "/orders.json") as sock, pytest.raises(ConnectionResetError):
        sock.recv(65536)  # a RST, not an orderly close (which would read b"")
    assert api.get("shopify", "/orders.json").status_code == 200
    assert api.stats()["faults"]["reset"] == 1


def test_truncate_promises_more_body_than_it_sends(serve):
    server = serve("truncate=1")
    api = Api(server)
    url = urlsplit(api.url("activecampaign", "/contacts"))
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    connection.request("GET", url.path, headers=api.headers("activecampaign"))
    response = connection.getresponse()
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    assert 0 < len(cut.value.partial) < int(response.headers["Content-Length"])
    connection.close()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # what a requests client sees
        Api(serve("truncate=1")).get("activecampaign", "/contacts")
    assert api.stats()["faults"]["truncate"] == 1


def test_shift_makes_naive_offset_paging_skip_one_and_repeat_one(serve):
    api = Api(serve("shift=1"))
    truth = api.get("activecampaign", "/contacts", limit=100).json()["contacts"]
    served, offset = [], 0
    while True:  # naive offset paging, page by page
        page = api.get("activecampaign", "/contacts", limit=10, offset=offset).json()["contacts"]
        served += page
        if len(page) < 10:
            break
        offset += 10
    ids = [c["id"] for c in served]
    assert len(ids) == len(truth)
    assert len(set(ids)) == len(truth) - 1  # one repeated ...
    assert {c["id"] for c in truth} - set(ids) == {truth[10]["id"]}  # ... one skipped: the first of page 2
    by_id = {c["id"]: c for c in truth}
    assert all(c == by_id[c["id"]] for c in served)  # no record changed its content
    after = api.get("activecampaign", "/contacts", limit=100).json()["contacts"]
    assert sorted(c["id"] for c in after) == sorted(by_id) and after[-1] == truth[9]  # moved to the end
    assert api.stats()["faults"]["shift"] == 1


def test_shift_never_hits_keyset_paged_vendors(serve):
    api = Api(serve("shift=0.9"))
    first = api.get("stripe", "/v1/charges", limit=5).json()
    api.get("stripe", "/v1/charges", limit=5, starting_after=first["data"][-1]["id"])
    api.get("hubspot", "/crm/v3/objects/contacts", limit=5, after=1005)
    assert api.stats()["faults"]["shift"] == 0


def fault_sequence(api: Api) -> list[object]:
    outcomes: list[object] = []
    for _ in range(40):
        try:
            outcomes.append(api.get("stripe", "/v1/charges", limit=3).status_code)
        except requests.exceptions.ChunkedEncodingError:
            outcomes.append("truncate")
    return outcomes


def test_same_seed_gives_the_same_fault_sequence(serve, world):
    spec = "429=0.15,5xx=0.15,truncate=0.1"
    first = fault_sequence(Api(serve(spec)))
    assert first == fault_sequence(Api(serve(spec)))
    assert {429, 500, "truncate", 200} <= set(first)
    assert first != fault_sequence(Api(serve(spec, on=World.build(SEED + 1, 80))))


# --- rate limits -----------------------------------------------------------------------------------
def test_faithful_shopify_refuses_a_burst_over_its_bucket_of_40(serve):
    api = Api(serve(mode="faithful"))
    responses = []
    for _ in range(60):
        responses.append(api.get("shopify", "/shop.json"))
        if responses[-1].status_code == 429:
            break
    refused = responses[-1]
    assert refused.status_code == 429 and len(responses) > 40
    assert refused.json()["errors"].startswith("Exceeded 2 calls per second")
    assert float(refused.headers["Retry-After"]) > 0
    assert refused.headers["X-Shopify-Shop-Api-Call-Limit"] == "40/40"
    assert responses[0].headers["X-Shopify-Shop-Api-Call-Limit"] == "1/40"
    assert all(r.status_code == 200 and r.headers["X-Shopify-Shop-Api-Call-Limit"].endswith("/40")
               for r in responses[:40])
    stats = api.stats()
    assert stats["rate_limited"] == {"shopify": 1} and stats["faults"]["429"] == 0


def test_faithful_activecampaign_refuses_more_than_5_requests_a_second(serve):
    api = Api(serve(mode="faithful"))
    responses = [api.get("activecampaign", "/contacts", limit=1) for _ in range(8)]
    assert [r.status_code for r in responses[:5]] == [200] * 5
    refused = [r for r in responses[5:] if r.status_code == 429]
    assert refused and int(refused[0].headers["Retry-After"]) >= 1 and "message" in refused[0].json()
    time.sleep(1.0)  # the budget refills
    assert api.get("activecampaign", "/contacts", limit=1).status_code == 200


def test_bench_mode_never_refuses(serve):
    api = Api(serve(mode="bench"))
    statuses = {api.get("shopify", "/shop.json").status_code for _ in range(60)}
    statuses |= {api.get("activecampaign", "/contacts", limit=1).status_code for _ in range(20)}
    assert statuses == {200}
    assert api.stats()["rate_limited"] == {}


# --- the clock -------------------------------------------------------------------------------------
def test_advance_moves_the_date_header_and_the_stats_clock(serve, world):
    server = serve()
    api = Api(server)
    before = parsedate_to_datetime(api.get("stripe", "/v1/account").headers["Date"])
    assert before == world.clock
    moved = requests.post(server.url + "/_sandbox/advance", params={"days": 1.5}, timeout=10)
    assert moved.status_code == 200
    assert datetime.fromisoformat(moved.json()["clock"]) == world.clock + timedelta(days=1.5)
    assert parsedate_to_datetime(api.get("stripe", "/v1/account").headers["Date"]) == before + timedelta(hours=36)
    assert requests.post(server.url + "/_sandbox/advance", params={"days": -1}, timeout=10).status_code == 400
    assert world.clock == before  # the world itself, shared with other sandboxes, keeps its start


def test_a_request_during_an_advance_waits_for_the_next_world_and_one_world_is_held(serve, world, monkeypatch):
    server = serve()
    api = Api(server)
    building, release = threading.Event(), threading.Event()
    build = World.build

    def held_build(*args, **kwargs):  # the next world is being built until the test says so
        building.set()
        assert release.wait(10)
        return build(*args, **kwargs)

    monkeypatch.setattr(World, "build", held_build)
    advancing = threading.Thread(target=requests.post, args=(server.url + "/_sandbox/advance",),
                                 kwargs={"params": {"days": 1}, "timeout": 30})
    advancing.start()
    assert building.wait(10)
    assert server.sandbox.world is None and server.sandbox.vendors is None  # the old world let go first
    answered: list[requests.Response] = []
    reader = threading.Thread(target=lambda: answered.append(api.get("stripe", "/v1/charges", limit=1)))
    reader.start()
    reader.join(0.5)
    assert reader.is_alive() and not answered  # it waits ...
    release.set()
    advancing.join(30)
    reader.join(30)
    assert answered[0].status_code == 200  # ... and is answered from the next world, at its clock
    assert parsedate_to_datetime(answered[0].headers["Date"]) == world.clock + timedelta(days=1)
    assert server.sandbox.world.clock == world.clock + timedelta(days=1)


def test_journey_sandbox_advance_moves_a_running_sandbox(serve, world, capsys):
    server = serve()
    assert journey(["sandbox", "advance", "--url", server.url, "--days", "2"]) == 0
    assert Api(server).stats()["clock"] == (world.clock + timedelta(days=2)).isoformat()
    assert (world.clock + timedelta(days=2)).isoformat() in capsys.readouterr().out
