"""Webhook receiver throughput: signed deliveries pushed over loopback for a bounded time, every one checked
landed exactly once, as sustained deliveries per second and as a ratio against a baseline measured in the
same run.

    python benchmarks/webhooks_throughput.py [--seconds S] [--clients C] [--folder DIR]

The receiver runs as its own process (`python -m webhooks.receiver`), exactly as `journey webhooks` serves,
landing into DIR (default: a temporary folder). C client threads (default 8), each on a keep-alive
connection, send Stripe and Shopify deliveries in turn (each a distinct event, bodies the size of the
sandbox's, signed afresh) until S seconds have passed (default 10). Then the landing file is read back: the
run fails if any acknowledged delivery is missing or stored twice.

Two baselines, measured in the same run, make the figure compare across machines: the same server's
`GET /health` round trips from the same clients for three seconds (what the HTTP stack alone allows: the
ratio says what verifying and landing cost), and one writer appending records of the same size with an
fsync after each, on the same file system, for two seconds (what the disk allows without group commit:
above 1, concurrent deliveries share fsyncs). Writes benchmarks/results/webhooks-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from webhooks.landing import delivery_key, read_records, segments  # noqa: E402
from webhooks.settings import SECRET_KEYS, env_name  # noqa: E402
from webhooks.signatures import shopify_hmac, stripe_header  # noqa: E402

SECRETS = {"stripe": "whsec_bench_secret", "shopify": "shpss_bench_secret"}
HEALTH_SECONDS = 3.0
PADDING = "x" * 1400  # a charge event and an order are 1.5-3 KB on the wire


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def delivery(n: int, client: int) -> tuple[str, bytes, dict[str, str], str]:
    """(vendor, body, headers, landing key) of the n-th delivery of a client, signed now."""
    event_id = f"evt_bench_{client}_{n}"
    if n % 2:
        body = json.dumps({"id": int(f"{client + 1}{n:09d}"), "updated_at": "2024-03-01T10:00:00-05:00",
                           "note": PADDING}).encode()
        return "shopify", body, {"X-Shopify-Hmac-Sha256": shopify_hmac(SECRETS["shopify"], body),
                                 "X-Shopify-Topic": "orders/updated", "X-Shopify-Event-Id": event_id,
                                 "X-Shopify-Shop-Domain": "bench.myshopify.com"}, f"shopify:orders/updated:{event_id}"
    charge = {"id": f"ch_{event_id}", "object": "charge", "description": PADDING}
    body = json.dumps({"id": event_id, "object": "event", "type": "charge.succeeded", "created": 1_700_000_000,
                       "data": {"object": charge}}).encode()
    return "stripe", body, {"Stripe-Signature": stripe_header(SECRETS["stripe"], body)}, \
        f"stripe:charge.succeeded:{event_id}"


def client_loop(port: int, client: int, deadline: float, acknowledged: list[str], latencies: list[float],
                health_only: bool = False) -> None:
    """Deliveries until the deadline; with `health_only`, `GET /health` round trips (the HTTP baseline)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    n = 0
    while time.monotonic() < deadline:
        vendor, body, headers, key = delivery(n, client)
        started = time.perf_counter()
        if health_only:
            connection.request("GET", "/health")
        else:
            connection.request("POST", f"/{vendor}", body=body,
                               headers={"Content-Type": "application/json", **headers})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"delivery {key} answered {response.status}")
        latencies.append(time.perf_counter() - started)
        acknowledged.append(key)
        n += 1
    connection.close()


def load(port: int, clients: int, seconds: float, health_only: bool = False) -> tuple[list[str], list[float], float]:
    """Every client's acknowledged keys and latencies, and the seconds it took."""
    acknowledged: list[list[str]] = [[] for _ in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    threads = [threading.Thread(target=client_loop, args=(port, c, deadline, acknowledged[c], latencies[c],
                                                          health_only)) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return ([k for keys in acknowledged for k in keys], [s for samples in latencies for s in samples],
            time.monotonic() - started)


def baseline_appends_per_second(folder: Path, size: int, seconds: float = 2.0) -> float:
    """One writer appending `size`-byte records, fsyncing each: the disk's own pace for durable appends."""
    path = folder / "baseline.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    record, count, deadline = b"x" * (size - 1) + b"\n", 0, time.monotonic() + seconds
    started = time.monotonic()
    while time.monotonic() < deadline:
        os.write(fd, record)
        os.fsync(fd)
        count += 1
    os.close(fd)
    path.unlink()
    return count / (time.monotonic() - started)


def percentile_ms(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 2) if ordered else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--folder", type=Path, help="where the landing file goes (default: a temporary folder)")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="webhooks-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    landing = folder / "landing"
    shutil.rmtree(landing, ignore_errors=True)
    port = free_port()
    env = {**os.environ, **{env_name(SECRET_KEYS[v]): s for v, s in SECRETS.items()}}
    receiver = subprocess.Popen([sys.executable, "-m", "webhooks.receiver", "--port", str(port), "--landing",
                                 str(landing)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.025)
        health_calls, _, health_elapsed = load(port, args.clients, HEALTH_SECONDS, health_only=True)
        acknowledged, latencies, elapsed = load(port, args.clients, args.seconds)
    finally:
        receiver.terminate()
        receiver.wait()
    acked = acknowledged
    health_rate = len(health_calls) / health_elapsed
    landed = [delivery_key(r) for r in read_records(landing)]
    missing, doubled = set(acked) - set(landed), len(landed) - len(set(landed))
    record_size = sum(path.stat().st_size for path in segments(landing)) // max(1, len(landed))
    baseline = baseline_appends_per_second(folder, record_size)
    rate = len(acked) / elapsed
    all_latencies = latencies
    result = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": f"{platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} cpus, Python {platform.python_version()}", "seconds": round(elapsed, 2),
        "clients": args.clients, "acknowledged": len(acked), "landed": len(landed), "missing": len(missing),
        "stored_twice": doubled, "deliveries_per_s": round(rate, 1),
        "latency_p50_ms": percentile_ms(all_latencies, 0.5),
        "latency_p95_ms": percentile_ms(all_latencies, 0.95), "record_bytes": record_size,
        "baseline_fsynced_appends_per_s": round(baseline, 1), "ratio_to_fsync_baseline": round(rate / baseline, 2),
        "baseline_http_round_trips_per_s": round(health_rate, 1),
        "ratio_to_http_baseline": round(rate / health_rate, 2),
    }
    print(f"{len(acked):,} deliveries in {elapsed:.1f}s from {args.clients} clients: {rate:,.0f}/s sustained "
          f"(p50 {result['latency_p50_ms']} ms, p95 {result['latency_p95_ms']} ms); landed {len(landed):,}, "
          f"missing {len(missing)}, stored twice {doubled}")
    print(f"baselines: one writer fsyncing every {record_size}-byte append: {baseline:,.0f}/s (ratio "
          f"{result['ratio_to_fsync_baseline']}); the same server's GET /health round trips from the same clients: "
          f"{health_rate:,.0f}/s (ratio {result['ratio_to_http_baseline']})")
    out = ROOT / "benchmarks" / "results" / f"webhooks-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 1 if missing or doubled or len(landed) != len(acked) else 0


if __name__ == "__main__":
    sys.exit(main())
