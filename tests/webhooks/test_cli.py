"""`journey webhooks` as a user meets it: it says which setting is missing, serves, and merges."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from flows.cli import main
from tests.webhooks.conftest import SECRETS, send_stripe, stripe_event
from tests.webhooks.test_crash import free_port

pytestmark = pytest.mark.webhooks
ROOT = Path(__file__).resolve().parents[2]


def test_webhooks_without_a_secret_names_the_settings_and_exits_2(monkeypatch, tmp_path, capsys):
    for key in ("WEBHOOKS__STRIPE__SIGNING_SECRET", "WEBHOOKS__SHOPIFY__CLIENT_SECRET"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)  # no .dlt/secrets.toml here
    assert main(["webhooks", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "WEBHOOKS__STRIPE__SIGNING_SECRET" in err and "WEBHOOKS__SHOPIFY__CLIENT_SECRET" in err


def test_journey_webhooks_serves_beside_the_warehouse_and_merge_moves_landed_deliveries(tmp_path):
    port, warehouse = free_port(), tmp_path / "warehouse.duckdb"
    env = {**os.environ, "JOURNEY_WAREHOUSE": str(warehouse), "WEBHOOKS__STRIPE__SIGNING_SECRET": SECRETS["stripe"],
           "WEBHOOKS__SHOPIFY__CLIENT_SECRET": SECRETS["shopify"]}
    server = subprocess.Popen([sys.executable, "-m", "flows.cli", "webhooks", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner = server.stdout.readline()
        assert f"http://127.0.0.1:{port}/stripe" in banner and "landing" in banner
        assert not any(secret in banner for secret in SECRETS.values())
        assert send_stripe(f"http://127.0.0.1:{port}", stripe_event("evt_cli"))[0] == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as health:
            assert json.loads(health.read())["records"] == 1
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
    assert (tmp_path / "warehouse.duckdb.webhooks" / "landing-000001.jsonl").exists()
    merged = subprocess.run([sys.executable, "-m", "flows.cli", "webhooks", "merge"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert merged.returncode == 0, merged.stderr
    assert "1 new deliveries in ops.webhook_landing" in merged.stdout
    assert "waiting" in merged.stdout  # a Stripe event before any pull: its account is not known yet


def test_journey_webhooks_with_a_sandbox_takes_its_secrets_and_receives_what_it_pushes(world, tmp_path):
    from sandbox.server import SandboxServer
    from tests.webhooks.conftest import sandbox_control, wait_delivered

    port = free_port()
    env = {**os.environ, "JOURNEY_WAREHOUSE": str(tmp_path / "warehouse.duckdb")}
    for key in ("WEBHOOKS__STRIPE__SIGNING_SECRET", "WEBHOOKS__SHOPIFY__CLIENT_SECRET"):
        env.pop(key, None)
    with SandboxServer(world) as sandbox:
        server = subprocess.Popen([sys.executable, "-m", "flows.cli", "webhooks", "--port", str(port),
                                   "--sandbox-url", sandbox.url], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            assert "stripe, shopify configured" in server.stdout.readline()
            assert "Registered with the sandbox" in server.stdout.readline()
            assert sandbox_control(sandbox.url, "webhooks", "GET")["url"] == f"http://127.0.0.1:{port}"
            queued = sandbox_control(sandbox.url, "webhooks/replay", since="2000-01-01T00:00:00Z")["queued"]
            assert wait_delivered(sandbox.url)["acknowledged"] == queued
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as health:
                assert json.loads(health.read())["records"] == queued
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=10)
