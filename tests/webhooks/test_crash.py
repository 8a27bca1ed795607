"""The receiver killed with SIGKILL at random points, mid-append included, while the sandbox delivers with
retries and runs merge the landing into the warehouse; restarted each time. Nothing acknowledged is lost,
nothing is stored twice, a torn last record never stops a restart or a reader."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from sandbox.server import SandboxServer
from sandbox.webhooks import deliveries_between
from tests.webhooks.conftest import receiver_secrets, sandbox_control, wait_delivered
from webhooks.landing import delivery_key, read_records, segments
from webhooks.merge import merge_landed
from webhooks.settings import SECRET_KEYS, SEGMENT_BYTES_ENV, TORN_WRITE_PAUSE_ENV, env_name

pytestmark = [pytest.mark.webhooks, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
KILLS = 120
MERGE_EVERY = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_receiver(port: int, landing: Path, env: dict, log: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "webhooks.receiver", "--port", str(port), "--landing",
                                str(landing)], cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:  # listening?
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"receiver did not start: {log.read_text()}") from None
            time.sleep(0.005)


def merged_keys(warehouse: Path) -> list[str]:
    if not warehouse.exists():
        return []
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return [key for (key,) in con.execute("select delivery_key from ops.webhook_landing").fetchall()]


def test_sigkill_at_random_points_loses_no_acknowledged_delivery_and_stores_none_twice(world, tmp_path):
    """Small segments, so kills also land around a segment change; every MERGE_EVERY kills a merge runs while
    the receiver appends, deleting the closed segments it has moved into the warehouse."""
    rng = random.Random(11)
    landing, log, port = tmp_path / "landing", tmp_path / "receiver.log", free_port()
    warehouse = tmp_path / "warehouse.duckdb"
    with SandboxServer(world) as server:
        secrets = receiver_secrets(server.index())
        env = {**os.environ, TORN_WRITE_PAUSE_ENV: "0.004",  # widen the mid-append window
               SEGMENT_BYTES_ENV: "40000",  # some 20 records a segment
               **{env_name(SECRET_KEYS[vendor]): secret for vendor, secret in secrets.items()}}
        clock = server.sandbox.clock.now()
        history = deliveries_between(server.sandbox.vendors, clock - timedelta(days=3650), clock)
        expected = {d.key for d in history}
        first = min(d.at for d in history)
        edges = [first - timedelta(seconds=1) + (clock - first) * i / KILLS for i in range(KILLS + 1)]
        sandbox_control(server.url, "webhooks", url=f"http://127.0.0.1:{port}", backoff_s=0.02, max_backoff_s=0.3)
        started = time.monotonic()
        merges = 0
        for n, (since, until) in enumerate(zip(edges, edges[1:], strict=False)):
            process = start_receiver(port, landing, env, log)
            # the world goes on: the next slice of its history is pushed while retries of earlier ones go on
            sandbox_control(server.url, "webhooks/replay", since=since.isoformat(), until=until.isoformat())
            if n % MERGE_EVERY == MERGE_EVERY - 1:
                merge_landed(warehouse, landing)  # while the receiver appends
                merges += 1
            time.sleep(rng.uniform(0.01, 0.1))
            process.send_signal(signal.SIGKILL)
            process.wait()
            acknowledged = set(sandbox_control(server.url, "webhooks", "GET", keys=1)["acknowledged_keys"])
            # everything acknowledged so far is on disk (landed, or merged into the warehouse), landed once
            keys = [delivery_key(r) for r in read_records(landing)]
            assert len(keys) == len(set(keys))
            assert acknowledged <= set(keys) | set(merged_keys(warehouse))
        kill_phase = time.monotonic() - started
        process = start_receiver(port, landing, {k: v for k, v in env.items() if k != TORN_WRITE_PAUSE_ENV}, log)
        try:
            wait_delivered(server.url)  # retries still owed
            # what the sandbox gave up on (too many failed attempts) comes back with a replay, as a pull would fill it
            sandbox_control(server.url, "webhooks/replay", since="2000-01-01T00:00:00Z")
            stats = wait_delivered(server.url)
            merge_landed(warehouse, landing)
        finally:
            process.terminate()
            process.wait()
    merged = merged_keys(warehouse)
    torn_restarts = log.read_text().count("cut a torn last record")
    print(f"{KILLS} kills and {merges} merges in {kill_phase:.1f}s; {torn_restarts} restarts cut a torn record; "
          f"{len(acknowledged)} of {len(expected)} acknowledged while killing; {stats['attempts']} attempts, "
          f"{stats['retried']} retries, {stats['failed']} given up before the replay")
    assert len(merged) == len(set(merged)), "an event was stored twice"
    assert set(merged) == expected, "an event is missing"
    assert len(segments(landing)) == 1 and {delivery_key(r) for r in read_records(landing)} <= expected
    assert torn_restarts >= 5, "too few kills landed mid-append to prove anything"
    assert stats["retried"] > 0 and len(acknowledged) > len(expected) // 2
