"""Sandbox serving: records per second each vendor's list endpoints serve over loopback, the latency of their
first and last page, and the server's peak memory, with the sandbox in a process of its own (bench mode).

    python benchmarks/sandbox_serving.py [--people 10000 --people 100000] [--seed 7] [--repeat 5]
                                         [--only VENDOR/ENDPOINT ...] [--code DIR]

For each world size it starts `journey sandbox --mode bench` as a child (sandbox/process.py), then per list
endpoint pages through the whole listing with a plain `requests` client at the largest page size the vendor
allows, the way our sources page (ActiveCampaign offsets, Shopify `Link` cursors with `status=any` and
`order=updated_at asc`, Stripe `starting_after`, HubSpot `after` cursors and, for search, the keyset windows
on (last modified, id) of pipelines/sources/hubspot/helpers.py); the first of those requests is timed as
`cold_first_page_ms` (it pays for building the listing's sorted view, once per sandbox). Then it asks the
first and the last full page (as many records as the first: a shorter final page would flatter the end of the
list) `--repeat` times each, in turn, and takes the p50 of each. The ratio last/first is what compares
across machines and runs (the issue's target: at most 2 at a million people), next to a baseline measured in
the same run: the p50 of a `GET /_sandbox/stats` round trip. Peak memory is the server's VmHWM
(/proc/<pid>/status): once the world is built, and after every listing was read.

`--code DIR` runs the sandbox from another checkout of this repository (e.g. an older commit unpacked with
`git archive`), so a before/after comparison uses the same client. Writes
benchmarks/results/sandbox-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from sandbox import process  # noqa: E402

# A page request: (method, url, params or None, json body or None); a reader turns its response into
# (records on it, the next page request or None).
PageRequest = tuple[str, str, dict | None, dict | None]
Reader = Callable[[requests.Response, PageRequest], tuple[int, PageRequest | None]]


@dataclass
class Endpoint:
    vendor: str
    name: str
    first: PageRequest
    read: Reader
    headers: dict[str, str]


def _activecampaign(base: str, credentials: dict) -> Iterator[Endpoint]:
    headers = {"Api-Token": credentials["api_token"]}
    for name, extra in (("contacts", {"orders[id]": "ASC"}), ("deals", {}), ("ecomOrders", {}),
                        ("ecomCustomers", {})):
        def read(response: requests.Response, asked: PageRequest, name: str = name) -> tuple[int, PageRequest | None]:
            payload = response.json()
            items, params = payload[name], dict(asked[2] or {})
            offset = int(params["offset"]) + len(items)
            more = items and offset < int(payload["meta"]["total"])
            return len(items), (asked[0], asked[1], {**params, "offset": offset}, None) if more else None
        yield Endpoint("activecampaign", name, ("GET", f"{base}/{name}", {**extra, "limit": 100, "offset": 0}, None),
                       read, headers)


def _shopify(base: str, credentials: dict) -> Iterator[Endpoint]:
    headers = {"X-Shopify-Access-Token": credentials["access_token"]}
    for name, params in (("orders", {"status": "any", "order": "updated_at asc"}), ("customers", {})):
        def read(response: requests.Response, asked: PageRequest, name: str = name) -> tuple[int, PageRequest | None]:
            following = response.links.get("next", {}).get("url")
            return len(response.json()[name]), ("GET", following, None, None) if following else None
        yield Endpoint("shopify", name, ("GET", f"{base}/{name}.json", {**params, "limit": 250}, None), read, headers)


def _stripe(base: str, credentials: dict) -> Iterator[Endpoint]:
    headers = {"Authorization": f"Bearer {credentials['api_key']}"}
    for name in ("customers", "charges", "payment_intents", "refunds", "balance_transactions", "events"):
        def read(response: requests.Response, asked: PageRequest) -> tuple[int, PageRequest | None]:
            payload = response.json()
            data = payload["data"]
            more = payload["has_more"] and data
            following = ("GET", asked[1], {"limit": 100, "starting_after": data[-1]["id"]}, None)
            return len(data), following if more else None
        yield Endpoint("stripe", name, ("GET", f"{base}/v1/{name}", {"limit": 100}, None), read, headers)


def _hubspot(base: str, credentials: dict) -> Iterator[Endpoint]:
    headers = {"Authorization": f"Bearer {credentials['access_token']}"}
    for obj in ("contacts", "deals"):
        def read_list(response: requests.Response, asked: PageRequest) -> tuple[int, PageRequest | None]:
            payload = response.json()
            after = payload.get("paging", {}).get("next", {}).get("after")
            return len(payload["results"]), (asked[0], asked[1], {**asked[2], "after": after}, None) if after else None
        yield Endpoint("hubspot", obj, ("GET", f"{base}/crm/v3/objects/{obj}", {"limit": 100}, None), read_list,
                       headers)
    for obj, modified in (("contacts", "lastmodifieddate"), ("deals", "hs_lastmodifieddate")):
        sorts = [{"propertyName": modified, "direction": "ASCENDING"},
                 {"propertyName": "hs_object_id", "direction": "ASCENDING"}]
        body = {"filterGroups": [], "sorts": sorts, "properties": [modified], "limit": 200, "after": "0"}

        def read_search(response: requests.Response, asked: PageRequest,
                        modified: str = modified) -> tuple[int, PageRequest | None]:
            """The keyset windows of our HubSpot source: each page a fresh query after the last row read."""
            payload = response.json()
            rows = payload["results"]
            if len(rows) < 200 or not payload.get("paging"):
                return len(rows), None
            moment = round(datetime.fromisoformat(rows[-1]["properties"][modified].replace("Z", "+00:00"))
                           .timestamp() * 1000)
            groups = [{"filters": [{"propertyName": modified, "operator": "EQ", "value": str(moment)},
                                   {"propertyName": "hs_object_id", "operator": "GT", "value": rows[-1]["id"]}]},
                      {"filters": [{"propertyName": modified, "operator": "GT", "value": str(moment)}]}]
            return len(rows), (asked[0], asked[1], None, {**asked[3], "filterGroups": groups})
        yield Endpoint("hubspot", f"{obj}/search", ("POST", f"{base}/crm/v3/objects/{obj}/search", None, body),
                       read_search, headers)


VENDORS = {"activecampaign": _activecampaign, "shopify": _shopify, "stripe": _stripe, "hubspot": _hubspot}


def ask(session: requests.Session, endpoint: Endpoint, page: PageRequest) -> tuple[requests.Response, float]:
    method, url, params, body = page
    started = time.perf_counter()
    response = session.request(method, url, params=params, json=body, headers=endpoint.headers, timeout=120)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{endpoint.vendor}/{endpoint.name}: {response.status_code} {response.text[:300]}")
    return response, elapsed


def p50_ms(session: requests.Session, endpoint: Endpoint, page: PageRequest, repeat: int) -> float:
    return round(statistics.median(ask(session, endpoint, page)[1] for _ in range(repeat)) * 1000, 3)


def first_and_last_ms(session: requests.Session, endpoint: Endpoint, last: PageRequest,
                      repeat: int) -> tuple[float, float]:
    """p50 of the first and of the last page, asked in turn, so a change in the machine's load meets both."""
    firsts, lasts = [], []
    for _ in range(repeat):
        firsts.append(ask(session, endpoint, endpoint.first)[1])
        lasts.append(ask(session, endpoint, last)[1])
    return round(statistics.median(firsts) * 1000, 3), round(statistics.median(lasts) * 1000, 3)


def measure_endpoint(session: requests.Session, endpoint: Endpoint, repeat: int) -> dict:
    """Page through the whole listing, then time its first and its last full page."""
    records = pages = 0
    page: PageRequest | None = endpoint.first
    last = endpoint.first
    started = time.perf_counter()
    cold_ms, full = None, None
    while page is not None:
        response, elapsed = ask(session, endpoint, page)
        cold_ms = round(elapsed * 1000, 3) if cold_ms is None else cold_ms
        count, following = endpoint.read(response, page)
        if count == full or full is None:  # the last full page: a shorter final page would flatter the last
            full, last = count, page
        records, pages = records + count, pages + 1
        page = following
    seconds = time.perf_counter() - started
    first_ms, last_ms = first_and_last_ms(session, endpoint, last, repeat)
    return {"records": records, "pages": pages, "seconds": round(seconds, 3),
            "records_per_s": round(records / seconds) if seconds else None, "cold_first_page_ms": cold_ms,
            "first_page_p50_ms": first_ms,
            "last_page_p50_ms": last_ms, "last_over_first": round(last_ms / first_ms, 2) if first_ms else None}


def measure_world(seed: int, people: int, repeat: int, only: set[str], code: Path, timeout_s: float) -> dict:
    built = time.perf_counter()
    server = process.start(seed, people, mode="bench", timeout_s=timeout_s, cwd=code)
    try:
        result: dict = {"people": people, "seed": seed, "build_s": round(time.perf_counter() - built, 1),
                        "peak_rss_mib_after_build": _mib(server.peak_rss_kib()), "endpoints": {}}
        with requests.Session() as session:
            stats = ("GET", server.url + "/_sandbox/stats", None, None)
            result["baseline_stats_p50_ms"] = p50_ms(session, Endpoint("sandbox", "stats", stats, None, {}),
                                                     stats, max(repeat, 20))
            for vendor, endpoints in VENDORS.items():
                index = server.index[vendor]
                for endpoint in endpoints(index["base_url"], index["credentials"]):
                    key = f"{endpoint.vendor}/{endpoint.name}"
                    if only and key not in only and endpoint.vendor not in only:
                        continue
                    figures = measure_endpoint(session, endpoint, repeat)
                    result["endpoints"][key] = figures
                    print(f"  {key:<30}{figures['records']:>9,} rec {figures['records_per_s'] or 0:>8,}/s  first "
                          f"{figures['first_page_p50_ms']:>8.2f} ms  last {figures['last_page_p50_ms']:>8.2f} ms  "
                          f"x{figures['last_over_first']}", flush=True)
        result["peak_rss_mib"] = _mib(server.peak_rss_kib())
        result["rss_mib_at_end"] = _mib(server.status_kib("VmRSS"))
    finally:
        server.stop()
    return result


def _mib(kib: int | None) -> float | None:
    return round(kib / 1024, 1) if kib is not None else None


def _commit(code: Path) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(code), "log", "-1", "--format=%h %s"], capture_output=True,
                              text=True, check=True).stdout.strip()[:120]
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, action="append", help="world sizes (default 10000 and 100000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=9, help="timed asks of the first and the last page (default 9)")
    parser.add_argument("--only", action="append", default=[], help="a vendor or vendor/endpoint to measure")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout the sandbox process runs from")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for a world to be built")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="where the JSON goes")
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    result = {"measured_at": now.isoformat(timespec="seconds"), "code": str(args.code.resolve()),
              "commit": _commit(args.code), "python": platform.python_version(), "machine": platform.machine(),
              "cpus": __import__("os").cpu_count(), "repeat": args.repeat, "worlds": []}
    for people in args.people or [10_000, 100_000]:
        print(f"{people:,} people (seed {args.seed}): building the world in its own process ...", flush=True)
        world = measure_world(args.seed, people, max(args.repeat, 1), set(args.only), args.code, args.timeout)
        print(f"  built in {world['build_s']} s; server peak RSS {world['peak_rss_mib_after_build']} MiB after the "
              f"build, {world['peak_rss_mib']} MiB after every listing was read; stats round trip p50 "
              f"{world['baseline_stats_p50_ms']} ms", flush=True)
        result["worlds"].append(world)
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"sandbox-{now:%Y%m%dT%H%M%SZ}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")  # after each world: a later one may not fit
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
