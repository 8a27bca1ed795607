"""The sandbox in a process of its own (sandbox/process.py), as benchmarks run it."""

from __future__ import annotations

import pytest
import requests

from sandbox.process import sandbox_process
from sandbox.server import SandboxServer
from tests.environment import returns_within

pytestmark = pytest.mark.sandbox


def test_sandbox_process_serves_its_index_and_lists_then_stops():
    with sandbox_process(seed=7, people=60, mode="bench", timeout_s=120) as sandbox:
        assert sandbox.index["stripe"]["base_url"] == f"{sandbox.url}/stripe"
        shopify = sandbox.index["shopify"]
        response = requests.get(shopify["base_url"] + "/orders.json", params={"status": "any", "limit": 250},
                                headers={"X-Shopify-Access-Token": shopify["credentials"]["access_token"]}, timeout=10)
        assert response.status_code == 200 and response.json()["orders"]
        assert (sandbox.peak_rss_kib() or 0) > 10_000  # a Python process holding a world: well over 10 MiB
        assert sandbox.process.poll() is None
    assert sandbox.process.returncode == 0  # SIGINT: the command's own Ctrl-C path, a clean exit
    with pytest.raises(requests.ConnectionError):
        requests.get(sandbox.url + "/", timeout=2)


def test_a_sandbox_stopped_before_it_served_stops_and_frees_its_port(world):
    # as when Ctrl-C lands between building the world and serving it (`journey sandbox`)
    server = SandboxServer(world)
    url = server.url
    assert returns_within(server.stop)
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/", timeout=2)
