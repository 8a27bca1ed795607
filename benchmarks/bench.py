"""End-to-end benchmark (`journey bench`): our ELT against the floor and dlt's `rest_api` baseline, full and
incremental, dbt full and incremental, dashboard latency, and the peak memory of every step.

    python benchmarks/bench.py [--people N | --quick] [--seed S] [--advance-days D] [--out DIR]
                               [--skip baseline ...] [--plot]
    journey bench ...                      (the same, through flows/cli.py)

It starts the sandbox in bench mode in a process of its own (sandbox/process.py: vendor rate limits lifted,
client and server in separate interpreters), then runs each step in a child process of its own (this file
with `--step`), so every step's peak memory is its own (VmHWM of the child, of dbt's process for the dbt
steps, and the most its whole process tree held at once) and no step inherits another's imports or caches.
Client-side pacing to the vendors' budgets is lifted too (`JOURNEY_HTTP_PACING=off`): the sandbox has no
limits in bench mode, and the benchmark measures code, not the vendors' quotas. In order, on one world:

1. `ours_full`: every source of pipelines/sources, extracted and normalized at once, each in a process of its
   own (pipelines/apart.py, as the flow's extract step runs them), then loaded in turn (as its load step
   does), full refresh, into a fresh DuckDB warehouse, through pipelines/load.py; every request it made is
   recorded (method, URL, body), with the records on each response, per endpoint.
2. `floor`: those same requests replayed in the same order (a process per vendor, as ours) by a plain
   `requests.Session` that parses each body with `orjson.loads` and does nothing else.
3. `baseline`, `baseline_parquet`: dlt's `rest_api` source with default settings on the same endpoints
   (benchmarks/rest_api_baseline.py), same threads and load order, into fresh warehouses: dlt's default loader
   file format, then parquet.
4. `dbt_full`: `dbt build --full-refresh` (flows/dbt.py) on ours' warehouse; then the marts are published and
   every dashboard panel query timed on them (benchmarks/dashboard_latency.py).
5. `ours_incremental_nochange`: ours again, nothing changed on the server.
6. The sandbox clock advanced by `--advance-days` (default 1: about 1% of the records change; the share
   measured is reported), then `ours_incremental_1pct` and `dbt_incremental` (`dbt build`).

Record counts of floor, baseline and ours are checked endpoint by endpoint before any time is compared. It
prints a table of ratios with the absolute figures beside them, and writes benchmarks/results/<UTC
timestamp>.json (`--out`). `python benchmarks/bench.py --plot` draws run time and peak memory against world
size from the newest result file per size (benchmarks/scaling.svg).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipelines.warehouse import duckdb_load_memory_limit  # noqa: E402 - after the project root is on the path

DEFAULT_PEOPLE = 100_000
QUICK_PEOPLE = 10_000
DEFAULT_SEED = 7
DEFAULT_ADVANCE_DAYS = 1.0
RESULTS = HERE / "results"  # git-ignored: figures are reported in README.md, not committed
PLOT = HERE / "scaling.svg"  # committed: README.md shows it
MEASUREMENTS = ("floor", "baseline", "baseline_parquet", "ours_full", "ours_incremental_nochange",
                "ours_incremental_1pct", "dbt_full", "dbt_incremental")

# Endpoints by how an incremental run reads them (keys as `endpoint_key` names them, vendor first):
# - `ecom`: ActiveCampaign's ecommerce lists have no server-side filter: read in full every run (the issue
#   reports them apart);
# - `full_each_run`: read in full every run by design, to see deletions (HubSpot's archived lists: search never
#   returns archived rows; Shopify's customer ids: no deletion feed for customers);
# - `metadata`: one call naming the account; everything else has a server-side filter (`filtered`).
ECOM = {"activecampaign/ecomOrders", "activecampaign/ecomCustomers"}
FULL_EACH_RUN = {"hubspot/crm/v3/objects/contacts?archived", "hubspot/crm/v3/objects/deals?archived",
                 "shopify/customers?fields=id"}
METADATA = {"stripe/v1/account", "shopify/shop", "hubspot/account-info/v3/details"}


def endpoint_group(key: str) -> str:
    if key in ECOM:
        return "ecom"
    if key in FULL_EACH_RUN:
        return "full_each_run"
    if key in METADATA:
        return "metadata"
    return "filtered"


# --- what a request was and what it carried --------------------------------------------------------------
def endpoint_key(vendor: str, base_url: str, url: str) -> str:
    """`vendor/path` relative to the vendor's base URL, `.json` dropped, plus the query markers that make a
    different listing of one path: Shopify's `fields=id`, HubSpot's `archived=true`."""
    parts, base = urlsplit(url), urlsplit(base_url).path.rstrip("/")
    path = parts.path[len(base):] if parts.path.startswith(base) else parts.path
    path = path.strip("/").removesuffix(".json")
    query = parse_qs(parts.query)
    if "fields" in query:
        path += f"?fields={query['fields'][0]}"
    if query.get("archived") == ["true"]:
        path += "?archived"
    return f"{vendor}/{path}"


def records_in(key: str, payload: Any) -> int:
    """The records one list response carries: the list named after the endpoint (ActiveCampaign, Shopify),
    `data` (Stripe) or `results` (HubSpot); 0 for anything else (account metadata)."""
    if not isinstance(payload, dict):
        return 0
    name = key.split("?")[0].rsplit("/", 1)[-1]
    for field in (name, "data", "results"):
        if isinstance(payload.get(field), list):
            return len(payload[field])
    return 0


class Tally:
    """Requests, records and client-side seconds per endpoint, from many threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[str, int] = defaultdict(int)
        self.records: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = defaultdict(float)

    def add(self, key: str, records: int, seconds: float) -> None:
        with self.lock:
            self.requests[key] += 1
            self.records[key] += records
            self.seconds[key] += seconds

    def as_dict(self) -> dict:
        keys = sorted(self.requests)
        return {k: {"requests": self.requests[k], "records": self.records[k], "seconds": round(self.seconds[k], 3),
                    "group": endpoint_group(k)} for k in keys}


class TreePeak:
    """The most memory this process and its descendants held at once: their resident sets summed, sampled every
    `interval` seconds, for steps whose work runs in processes at the same time (ours' and the floor's vendors,
    pipelines/apart.py). A sample can miss a short spike; `peak_mb` also takes each process's own peak."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval, self.peak_kib = interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:  # ended between the listing and the reading
                    continue
            self.peak_kib = max(self.peak_kib, total // 1024)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def peak_mb(tree_kib: int = 0) -> dict[str, float]:
    """This process's peak resident set (VmHWM), the largest of its finished children's (dbt) and the most its
    process tree held at once (`TreePeak`), in MiB: `peak_mb` is the largest."""
    own = 0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                own = int(line.split()[1])
    except OSError:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return {"peak_mb": round(max(own, children, tree_kib) / 1024, 1), "self_peak_mb": round(own / 1024, 1),
            "children_peak_mb": round(children / 1024, 1), "tree_peak_mb": round(tree_kib / 1024, 1)}


def sandbox_index(url: str) -> dict:
    with urllib.request.urlopen(url.rstrip("/") + "/", timeout=30) as response:
        return json.loads(response.read())


def _bench_environment(url: str, warehouse: Path) -> dict:
    from pipelines.load import settings_from_index

    index = sandbox_index(url)
    os.environ.update(settings_from_index(index, destinations=False))
    os.environ.update({"JOURNEY_WAREHOUSE": str(warehouse), "JOURNEY_HTTP_PACING": "off",
                       "RUNTIME__LOG_LEVEL": "ERROR", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    return index


# --- steps, each in a child process -------------------------------------------------------------------------
def extract_recorded(name: str, warehouse: str, full_refresh: bool) -> dict:
    """One vendor's `extract_normalize`, every request it makes recorded (method, URL, body) with the records on
    the response. Runs in the vendor's own process, as the flow's extract does (pipelines/apart.py)."""
    from pipelines.http import VendorClient
    from pipelines.load import extract_normalize

    tally, log, links, lock = Tally(), [], {}, threading.Lock()
    original = VendorClient.request_json

    def recording(self, method, path, params=None, json=None):  # noqa: A002 - VendorClient's own names
        started = time.perf_counter()
        payload, response = original(self, method, path, params=params, json=json)
        seconds = time.perf_counter() - started
        sent = response.request
        with lock:
            key = links.pop(sent.url, None) or endpoint_key(self.vendor, self.base_url, sent.url)
            following = response.links.get("next", {}).get("url")
            if following:  # Shopify's next page drops our filters: it is still this listing
                links[following] = key
            body = sent.body.decode() if isinstance(sent.body, bytes) else sent.body
            log.append({"vendor": self.vendor, "key": key, "method": sent.method, "url": sent.url, "body": body})
        tally.add(key, records_in(key, payload), seconds)
        return payload, response

    VendorClient.request_json = recording
    started = time.perf_counter()
    result = extract_normalize(name, Path(warehouse), full_refresh=full_refresh)
    return {"result": result, "seconds": round(time.perf_counter() - started, 3), "endpoints": tally.as_dict(),
            "log": log}


def step_ours(params: dict) -> dict:
    """Our sources through pipelines/load.py as the flow runs them: each vendor's extract+normalize in a process
    of its own (pipelines/apart.py), all at once, then the loads in turn."""
    warehouse = Path(params["warehouse"])
    _bench_environment(params["url"], warehouse)
    import benchmarks.bench as importable  # this file runs as __main__: a child finds the function by this name
    from pipelines.apart import call_apart
    from pipelines.load import load_staged
    from pipelines.sources import SOURCES

    def extract(name: str) -> dict:
        return call_apart(importable.extract_recorded, name, str(warehouse), bool(params["full_refresh"]))

    started = time.perf_counter()
    with ThreadPoolExecutor(len(SOURCES)) as pool:
        extracts = dict(zip(SOURCES, pool.map(extract, SOURCES), strict=True))
    extracted = time.perf_counter()
    per_source = {name: {"extract_normalize_seconds": done["seconds"]} for name, done in extracts.items()}
    for name in SOURCES:
        began = time.perf_counter()
        load_staged(name, warehouse)
        per_source[name]["load_seconds"] = round(time.perf_counter() - began, 3)
    finished = time.perf_counter()
    if params.get("requests_log"):
        log = [entry for done in extracts.values() for entry in done["log"]]
        Path(params["requests_log"]).write_text("\n".join(json_dumps(entry) for entry in log) + "\n")
    rows = {f"{done['result'].source}.{table}": n for done in extracts.values()
            for table, n in done["result"].rows.items()}
    endpoints = {key: figures for done in extracts.values() for key, figures in done["endpoints"].items()}
    return {"seconds": round(finished - started, 3), "extract_normalize_seconds": round(extracted - started, 3),
            "load_seconds": round(finished - extracted, 3), "records": sum(e["records"] for e in endpoints.values()),
            "requests": sum(e["requests"] for e in endpoints.values()), "rows_loaded": sum(rows.values()),
            "rows_per_table": rows, "per_source": per_source, "endpoints": endpoints}


def json_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def replay(entries: list[dict], headers: dict[str, str]) -> dict:
    """One vendor's recorded requests replayed in order by a plain session, each body parsed by `orjson.loads`
    (ours' parser) and nothing else: the floor's work for that vendor."""
    import orjson
    import requests

    session, tally = requests.Session(), Tally()
    session.headers.update(headers)
    for entry in entries:
        began = time.perf_counter()
        extra = {"Content-Type": "application/json"} if entry["body"] else None
        response = session.request(entry["method"], entry["url"], data=entry["body"], headers=extra)
        response.raise_for_status()
        payload = orjson.loads(response.content)
        tally.add(entry["key"], records_in(entry["key"], payload), time.perf_counter() - began)
    return tally.as_dict()


def step_floor(params: dict) -> dict:
    """Replay ours' requests as ours makes them: each vendor's in order, in a process of its own, all at once."""
    index = _bench_environment(params["url"], Path(params["warehouse"]))
    import benchmarks.bench as importable  # this file runs as __main__: a child finds the function by this name
    from pipelines.apart import call_apart

    entries = [json.loads(line) for line in Path(params["requests_log"]).read_text().splitlines() if line]
    by_vendor: dict[str, list[dict]] = defaultdict(list)
    for entry in entries:
        by_vendor[entry["vendor"]].append(entry)
    headers = vendor_headers(index)
    started = time.perf_counter()
    with ThreadPoolExecutor(len(by_vendor)) as pool:
        replayed = list(pool.map(lambda vendor: call_apart(importable.replay, by_vendor[vendor], headers[vendor]),
                                 by_vendor))
    seconds = time.perf_counter() - started
    endpoints = {key: figures for done in replayed for key, figures in done.items()}
    return {"seconds": round(seconds, 3), "records": sum(e["records"] for e in endpoints.values()),
            "requests": sum(e["requests"] for e in endpoints.values()), "endpoints": endpoints}


def vendor_headers(index: dict) -> dict[str, dict[str, str]]:
    """Each vendor's request headers exactly as our client sends them (its own `make_client`)."""
    from pipelines.sources import activecampaign, hubspot, shopify, stripe
    from pipelines.sources.shopify import settings as shopify_settings
    from pipelines.sources.stripe import settings as stripe_settings

    def creds(name: str) -> dict:
        return index[name]["credentials"]

    clients = {
        "activecampaign": activecampaign.make_client(index["activecampaign"]["base_url"],
                                                     creds("activecampaign")["api_token"]),
        "shopify": shopify.make_client(index["shopify"]["base_url"], creds("shopify")["access_token"],
                                       shopify_settings.API_VERSION),
        "stripe": stripe.make_client(index["stripe"]["base_url"], creds("stripe")["api_key"],
                                     stripe_settings.STRIPE_VERSION),
        "hubspot": hubspot.make_client(index["hubspot"]["base_url"], creds("hubspot")["access_token"]),
    }
    return {name: dict(client.session.headers) for name, client in clients.items()}


def step_baseline(params: dict) -> dict:
    """dlt's rest_api source, default settings, one pipeline per vendor (rest_api_baseline.py)."""
    warehouse = Path(params["warehouse"])
    index = _bench_environment(params["url"], warehouse)
    import dlt
    import rest_api_baseline
    from dlt.sources.rest_api import rest_api_source

    file_format = params.get("loader_file_format")
    pipelines, counts, per_vendor = {}, {}, {}
    for vendor in rest_api_baseline.CONFIGS:
        pipelines[vendor] = dlt.pipeline(pipeline_name=f"baseline_{vendor}", destination=dlt.destinations.duckdb(
            str(warehouse)), dataset_name=f"raw_{vendor}", pipelines_dir=str(warehouse.with_suffix(".dlt")))

    def extract(vendor: str) -> None:
        began = time.perf_counter()
        source = rest_api_source(rest_api_baseline.config(vendor, index[vendor]["base_url"],
                                                          index[vendor]["credentials"]))
        pipeline = pipelines[vendor]
        pipeline.extract(source, loader_file_format=file_format)
        pipeline.normalize()
        counts[vendor] = dict(pipeline.last_trace.last_normalize_info.row_counts)
        per_vendor[vendor] = {"extract_normalize_seconds": round(time.perf_counter() - began, 3)}

    started = time.perf_counter()
    with ThreadPoolExecutor(len(pipelines)) as pool:
        list(pool.map(extract, pipelines))
    extracted = time.perf_counter()
    for vendor, pipeline in pipelines.items():
        began = time.perf_counter()
        pipeline.load()
        per_vendor[vendor]["load_seconds"] = round(time.perf_counter() - began, 3)
    finished = time.perf_counter()
    endpoints = {f"{vendor}/{key}": {"records": counts[vendor].get(resource_name, 0),
                                     "group": endpoint_group(f"{vendor}/{key}")}
                 for vendor, names in rest_api_baseline.ENDPOINTS.items() for resource_name, key in names.items()}
    rows = {f"{vendor}.{table}": n for vendor, tables in counts.items() for table, n in tables.items()
            if not table.startswith("_dlt")}
    return {"seconds": round(finished - started, 3), "extract_normalize_seconds": round(extracted - started, 3),
            "load_seconds": round(finished - extracted, 3), "loader_file_format": file_format or "default",
            "records": sum(e["records"] for e in endpoints.values()), "rows_loaded": sum(rows.values()),
            "rows_per_table": rows, "per_source": per_vendor, "endpoints": endpoints}


def step_dbt(params: dict) -> dict:
    """`dbt build` (flows/dbt.py) on the warehouse: `--full-refresh`, or incremental. Before the full build, an
    untimed `dbt parse` for this warehouse file: a scheduled run finds the parse warm, as the incremental build
    here does, so neither is charged dbt's full re-parse for a new file path."""
    warehouse = Path(params["warehouse"])
    os.environ["JOURNEY_WAREHOUSE"] = str(warehouse)
    from flows.dbt import dbt_build, dbt_parse
    from flows.publish import mart_row_counts

    if params["full_refresh"]:
        dbt_parse(warehouse)
    started = time.perf_counter()
    result = dbt_build(warehouse, full_refresh=bool(params["full_refresh"]))
    seconds = time.perf_counter() - started
    marts = mart_row_counts(warehouse)
    return {"seconds": round(seconds, 3), "records": sum(marts.values()), "models": result.models_passed,
            "tests": result.tests_passed, "mart_rows": marts}


def step_dashboard(params: dict) -> dict:
    """Publish the marts (flows/publish.py), then time every panel query on them (dashboard_latency.py)."""
    warehouse, published = Path(params["warehouse"]), Path(params["published"])
    os.environ["JOURNEY_WAREHOUSE"] = str(warehouse)
    import dashboard_latency

    from flows.publish import publish

    publish(warehouse, published, run_id=f"bench-{int(time.time())}", mode="bench", high_water_marks={})
    measured = dashboard_latency.measure(published, params["repeat"], "last_28")
    panels = {case: {name: figures for name, figures in found["panels"].items()}
              for case, found in measured["cases"].items()}
    p95s = [p["p95_ms"] for case in panels.values() for p in case.values()]
    return {"fct_orders_rows": measured["fct_orders_rows"], "repeat": params["repeat"],
            "page_unfiltered": measured["cases"]["unfiltered"]["page"],
            "page_filtered": measured["cases"]["filtered"]["page"], "worst_panel_p95_ms": max(p95s),
            "baselines": measured["baselines"], "panels": panels}


STEPS = {"ours": step_ours, "floor": step_floor, "baseline": step_baseline, "dbt": step_dbt,
         "dashboard": step_dashboard}


def child_main(step: str, params_path: Path) -> int:
    params = json.loads(params_path.read_text())
    with TreePeak() as tree:
        result = STEPS[step](params)
    result.update(peak_mb(tree.peak_kib))
    Path(params["result"]).write_text(json.dumps(result, indent=1))
    return 0


def run_step(step: str, params: dict, workdir: Path, label: str) -> dict:
    """Run one step as a child process (this file, `--step`); its result, with wall time of the whole child."""
    params = {**params, "result": str(workdir / f"{label}.result.json")}
    params_path = workdir / f"{label}.params.json"
    params_path.write_text(json.dumps(params))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "RUNTIME__LOG_LEVEL": "ERROR", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    print(f"  {label} ...", end="", flush=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--step", step, "--params",
                           str(params_path)], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        print(" failed")
        raise RuntimeError(f"bench step {label} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    result = json.loads(Path(params["result"]).read_text())
    result["process_seconds"] = round(wall, 3)
    print(f" {result.get('seconds', wall):.1f}s, peak {result['peak_mb']:.0f} MiB", flush=True)
    return result


def advance(url: str, days: float) -> dict:
    """Move the sandbox clock (it rebuilds its world: minutes at 100k people, so a long timeout)."""
    request = urllib.request.Request(f"{url.rstrip('/')}/_sandbox/advance?days={days}", method="POST")
    with urllib.request.urlopen(request, timeout=3600) as response:
        return json.loads(response.read())


# --- checks and ratios ----------------------------------------------------------------------------------------
def compare_records(results: dict) -> dict:
    """Records per endpoint of floor, baseline, baseline_parquet against ours_full; `equal` over the endpoints
    the baseline reads (it skips the account metadata calls: rest_api_baseline.py says why)."""
    ours = {k: v["records"] for k, v in results["ours_full"]["endpoints"].items()}
    table, mismatches, compared = {}, [], []
    for name in ("floor", "baseline", "baseline_parquet"):
        if "skipped" in results[name]:
            continue
        compared.append(name)
        theirs = {k: v["records"] for k, v in results[name]["endpoints"].items()}
        for key in sorted(set(ours) | set(theirs)):
            row = table.setdefault(key, {"ours_full": ours.get(key)})
            row[name] = theirs.get(key)
            if endpoint_group(key) == "metadata" and name != "floor":
                continue
            if ours.get(key) != theirs.get(key):
                mismatches.append(f"{key}: ours {ours.get(key)}, {name} {theirs.get(key)}")
    return {"equal": not mismatches, "compared": compared, "mismatches": mismatches, "per_endpoint": table}


def group_totals(endpoints: dict) -> dict[str, dict[str, float]]:
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"requests": 0, "records": 0, "seconds": 0.0})
    for figures in endpoints.values():
        group = totals[figures["group"]]
        for field in ("requests", "records", "seconds"):
            group[field] += figures.get(field, 0)
    return {g: {k: round(v, 3) for k, v in t.items()} for g, t in totals.items()}


def _seconds(figures: dict) -> float | None:
    return figures.get("seconds")


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def incremental_split(results: dict) -> dict:
    """Incremental against full, apart for endpoints with a server-side filter, ActiveCampaign's ecom lists
    and the lists read in full by design: records fetched and client-side request seconds."""
    full = group_totals(results["ours_full"]["endpoints"])
    out = {}
    for run in ("ours_incremental_nochange", "ours_incremental_1pct"):
        mine = group_totals(results[run]["endpoints"])
        out[run] = {group: {"records": mine.get(group, {}).get("records", 0), "full_records": full[group]["records"],
                            "records_ratio": _ratio(mine.get(group, {}).get("records", 0), full[group]["records"]),
                            "request_seconds": mine.get(group, {}).get("seconds", 0.0),
                            "full_request_seconds": full[group]["seconds"],
                            "request_seconds_ratio": _ratio(mine.get(group, {}).get("seconds", 0.0),
                                                            full[group]["seconds"])}
                    for group in ("filtered", "ecom", "full_each_run") if group in full}
    # the share of records that changed: what the 1% run fetched over filtered endpoints beyond the no-change
    # run (whose reads are the overlaps alone), over the filtered records of the full run
    changed = (out["ours_incremental_1pct"]["filtered"]["records"]
               - out["ours_incremental_nochange"]["filtered"]["records"])
    out["changed_share"] = _ratio(changed, full["filtered"]["records"])
    return out


def ratios(results: dict) -> dict:
    ours, floor = results["ours_full"], results["floor"]
    dbt_full, dbt_incr = results["dbt_full"], results["dbt_incremental"]
    return {
        "ours_over_floor": _ratio(ours["seconds"], _seconds(floor)),
        "ours_extract_over_floor": _ratio(ours["extract_normalize_seconds"], _seconds(floor)),
        "baseline_over_ours": _ratio(_seconds(results["baseline"]), ours["seconds"]),
        "baseline_parquet_over_ours": _ratio(_seconds(results["baseline_parquet"]), ours["seconds"]),
        "incremental_nochange_over_full": _ratio(results["ours_incremental_nochange"]["seconds"], ours["seconds"]),
        "incremental_1pct_over_full": _ratio(results["ours_incremental_1pct"]["seconds"], ours["seconds"]),
        "dbt_incremental_over_full": _ratio(dbt_incr["seconds"], dbt_full["seconds"]),
    }


def records_line(check: dict) -> str:
    """Whether ours fetched what the others did, naming who it was compared with (nobody, when all skipped)."""
    if not check.get("compared"):
        return "records not compared: floor and baselines all skipped"
    return f"records equal per endpoint ({', '.join(check['compared'])}, ours): {check['equal']}"


def report(result: dict) -> str:
    r, m = result["ratios"], result
    lines = [f"journey bench: {m['people']:,} people, seed {m['seed']}, commit {m['commit'][:10]}, "
             f"{m['machine']['cpus']} cpus, load avg at start {m['machine']['load_average_start']}",
             records_line(m["records_check"])]
    lines += [f"  MISMATCH {x}" for x in m["records_check"]["mismatches"]]
    lines += ["", f"{'measurement':<28}{'seconds':>10}{'records':>11}{'peak MiB':>10}   notes"]
    for name in MEASUREMENTS:
        x = m[name]
        if "skipped" in x:
            lines.append(f"{name:<28}{'skipped':>10}")
            continue
        note = ""
        if "extract_normalize_seconds" in x:
            note = f"extract+normalize {x['extract_normalize_seconds']:.1f}s, load {x['load_seconds']:.1f}s"
        if name.startswith("dbt"):
            note = f"{x['models']} models, {x['tests']} tests, {x['records']:,} mart rows"
        lines.append(f"{name:<28}{x['seconds']:>10.2f}{x['records']:>11,}{x['peak_mb']:>10.0f}   {note}")
    lines += ["", f"{'ratio':<44}{'value':>8}   target"]
    targets = {"ours_over_floor": "<= 2", "baseline_over_ours": ">= 3", "baseline_parquet_over_ours": ">= 3",
               "incremental_nochange_over_full": "(whole E+L)", "incremental_1pct_over_full": "(whole E+L)",
               "dbt_incremental_over_full": "<= 0.25"}
    for name, value in r.items():
        lines.append(f"{name:<44}{value if value is not None else '-':>8}   {targets.get(name, '')}")
    split = m["incremental"]
    lines += ["", f"incremental vs full by endpoint group (changed share after advance: {split['changed_share']})",
              f"{'run / group':<44}{'records':>14}{'req. seconds':>16}"]
    for run in ("ours_incremental_nochange", "ours_incremental_1pct"):
        for group, g in split[run].items():
            target = {"filtered": "<= 0.05" if "nochange" in run else "<= 0.10"}.get(group, "(no filter)")
            lines.append(f"{run.removeprefix('ours_incremental_') + ' / ' + group:<44}"
                         f"{g['records_ratio']!s:>14}{g['request_seconds_ratio']!s:>16}   {target}")
    d = m["dashboard"]
    lines += ["", f"dashboard ({d['fct_orders_rows']:,} orders, {d['repeat']} repeats): page unfiltered p50/p95 "
                  f"{d['page_unfiltered']['p50_ms']:.0f}/{d['page_unfiltered']['p95_ms']:.0f} ms, filtered "
                  f"{d['page_filtered']['p50_ms']:.0f}/{d['page_filtered']['p95_ms']:.0f} ms, worst panel p95 "
                  f"{d['worst_panel_p95_ms']:.0f} ms",
              f"sandbox server peak RSS {m['sandbox']['peak_mb']:.0f} MiB "
              f"(world built in {m['sandbox']['seconds']:.0f}s)"]
    return "\n".join(lines)


def commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except OSError:
        return "unknown"


def machine() -> dict:
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"system": platform.system(), "release": platform.release(), "cpu": cpu, "cpus": os.cpu_count(),
            "memory_gib": round(memory, 1), "python": platform.python_version(),
            "load_average_start": [round(x, 2) for x in os.getloadavg()], "nice": os.nice(0),
            "duckdb_memory_limit": os.environ.get("JOURNEY_DUCKDB_MEMORY_LIMIT") or "default",
            "duckdb_load_memory_limit": duckdb_load_memory_limit()}


def run(people: int, seed: int = DEFAULT_SEED, out: Path = RESULTS, advance_days: float = DEFAULT_ADVANCE_DAYS,
        dashboard_repeat: int = 20, workdir: Path | None = None, skip: tuple[str, ...] = ()) -> tuple[dict, Path]:
    """The whole benchmark once; returns the result and the JSON file it wrote. `skip` names baseline
    measurements not to run (recorded as skipped, e.g. where one would not fit this machine's memory); what is
    done so far is kept in `<timestamp>.partial.json` while it runs."""
    from sandbox import process

    started_at = datetime.now(UTC)
    result: dict[str, Any] = {"people": people, "seed": seed, "commit": commit(), "machine": machine(),
                              "started_at": started_at.isoformat(timespec="seconds"), "advance_days": advance_days}
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{started_at:%Y%m%dT%H%M%SZ}.json"
    partial = path.with_suffix(".partial.json")

    def step(label: str, name: str, params: dict, work: Path) -> None:
        if label in skip:
            result[label] = {"skipped": "--skip"}
            print(f"  {label}: skipped", flush=True)
            return
        result[label] = run_step(name, params, work, label)
        partial.write_text(json.dumps(result, indent=1) + "\n")

    with tempfile.TemporaryDirectory(prefix="journey-bench-", dir=workdir) as folder:
        work = Path(folder)
        print(f"journey bench: starting the sandbox ({people:,} people, seed {seed}, bench mode) ...", flush=True)
        began = time.perf_counter()
        with process.sandbox_process(seed=seed, people=people, mode="bench", timeout_s=3600) as sandbox:
            result["sandbox"] = {"seconds": round(time.perf_counter() - began, 1),
                                 "built_peak_mb": round((sandbox.peak_rss_kib() or 0) / 1024, 1)}
            url, warehouse = sandbox.url, work / "ours" / "warehouse.duckdb"
            warehouse.parent.mkdir()
            log = work / "requests_full.jsonl"

            def ours(label: str, full_refresh: bool, requests_log: Path | None = None) -> None:
                step(label, "ours", {"url": url, "warehouse": str(warehouse), "full_refresh": full_refresh,
                                     "requests_log": str(requests_log or "")}, work)

            ours("ours_full", True, log)
            step("floor", "floor", {"url": url, "warehouse": str(work / "floor.duckdb"), "requests_log": str(log)},
                 work)
            for label, file_format in (("baseline", None), ("baseline_parquet", "parquet")):
                folder_ = work / label
                folder_.mkdir()
                step(label, "baseline", {"url": url, "warehouse": str(folder_ / "warehouse.duckdb"),
                                         "loader_file_format": file_format}, work)
            step("dbt_full", "dbt", {"warehouse": str(warehouse), "full_refresh": True}, work)
            step("dashboard", "dashboard", {"warehouse": str(warehouse), "repeat": dashboard_repeat,
                                            "published": str(work / "ours" / "marts.duckdb")}, work)
            ours("ours_incremental_nochange", False)
            print(f"  advancing the sandbox clock {advance_days:g} day(s) ...", end="", flush=True)
            began = time.perf_counter()
            stats = advance(url, advance_days)
            result["sandbox"]["advance_seconds"] = round(time.perf_counter() - began, 1)
            result["sandbox"]["clock_after_advance"] = stats.get("clock")
            print(f" {result['sandbox']['advance_seconds']:.1f}s", flush=True)
            ours("ours_incremental_1pct", False)
            step("dbt_incremental", "dbt", {"warehouse": str(warehouse), "full_refresh": False}, work)
            result["sandbox"]["peak_mb"] = round((sandbox.peak_rss_kib() or 0) / 1024, 1)
    result["records_check"] = compare_records(result)
    result["ratios"] = ratios(result)
    result["incremental"] = incremental_split(result)
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    path.write_text(json.dumps(result, indent=1) + "\n")
    partial.unlink(missing_ok=True)
    return result, path


# --- the plot: run time and peak memory against world size ---------------------------------------------------
def load_results(folder: Path) -> list[dict]:
    """The newest complete result per world size, or, for a size with none, the newest partial one (a run cut
    short: `<timestamp>.partial.json`), whose missing measurements are left out of the plot."""
    complete, partial = {}, {}
    for path in sorted(folder.glob("2*Z*.json")):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        if "people" not in data or "ours_full" not in data:
            continue
        (complete if all(name in data for name in MEASUREMENTS) else partial)[data["people"]] = data
    latest = {**partial, **complete}
    return [latest[k] for k in sorted(latest)]


PLOTTED = ("floor", "ours_full", "baseline", "baseline_parquet", "ours_incremental_nochange", "dbt_full",
           "dbt_incremental")
COLOURS = ("#888888", "#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b")


def plot(folder: Path = RESULTS, target: Path | None = None) -> Path:
    """One SVG, two panels (seconds; peak MiB) against people, log-log, one line per measurement; written by
    hand, so no plotting library is needed."""
    import math

    runs = load_results(folder)
    if not runs:
        raise SystemExit(f"no complete result files in {folder}")
    target = target or PLOT
    width, height, pad = 460, 320, 58
    people = [r["people"] for r in runs]
    lo_x, hi_x = math.log10(min(people)) - 0.15, math.log10(max(people)) + 0.15
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * width + 200}" height="{height}" '
             f'font-family="sans-serif" font-size="11">']
    for panel, (field, title) in enumerate((("seconds", "run time (s)"), ("peak_mb", "peak memory (MiB)"))):
        values = [r[m][field] for r in runs for m in PLOTTED if r.get(m, {}).get(field, 0) > 0]
        lo_y, hi_y = math.log10(min(values)) - 0.1, math.log10(max(values)) + 0.1
        ox = panel * width

        def px(v: float, ox: int = ox) -> float:
            return ox + pad + (math.log10(v) - lo_x) / (hi_x - lo_x) * (width - 2 * pad)

        def py(v: float, lo_y: float = lo_y, hi_y: float = hi_y) -> float:
            return height - pad - 20 - (math.log10(v) - lo_y) / (hi_y - lo_y) * (height - 2 * pad)

        parts.append(f'<text x="{ox + width / 2}" y="16" text-anchor="middle" font-weight="bold">{title} '
                     f'vs people (log-log)</text>')
        parts.append(f'<rect x="{ox + pad}" y="{pad - 20}" width="{width - 2 * pad}" height="{height - 2 * pad}" '
                     f'fill="none" stroke="#333"/>')
        for n in people:
            parts.append(f'<text x="{px(n):.1f}" y="{height - pad - 4}" text-anchor="middle">{n:,}</text>')
        for exponent in range(math.floor(lo_y), math.ceil(hi_y) + 1):
            for mantissa in (1, 2, 5):
                v = mantissa * 10 ** exponent
                if lo_y <= math.log10(v) <= hi_y:
                    parts.append(f'<line x1="{ox + pad}" x2="{ox + width - pad}" y1="{py(v):.1f}" y2="{py(v):.1f}" '
                                 f'stroke="#ddd"/><text x="{ox + pad - 4}" y="{py(v) + 4:.1f}" '
                                 f'text-anchor="end">{v:g}</text>')
        for name, colour in zip(PLOTTED, COLOURS, strict=True):
            points = [(px(r["people"]), py(r[name][field])) for r in runs if r.get(name, {}).get(field, 0) > 0]
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points]
    for i, (name, colour) in enumerate(zip(PLOTTED, COLOURS, strict=True)):
        y = 50 + 16 * i
        parts.append(f'<line x1="{2 * width + 10}" x2="{2 * width + 30}" y1="{y}" y2="{y}" stroke="{colour}" '
                     f'stroke-width="2"/><text x="{2 * width + 34}" y="{y + 4}">{name}</text>')
    parts.append("</svg>")
    target.write_text("\n".join(parts) + "\n")
    return target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options, shared by this script and `journey bench` (flows/cli.py)."""
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--people", type=int, default=DEFAULT_PEOPLE, help="people in the world (default %(default)s)")
    size.add_argument("--quick", action="store_true", help=f"{QUICK_PEOPLE:,} people")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the world's seed (default %(default)s)")
    parser.add_argument("--advance-days", type=float, default=DEFAULT_ADVANCE_DAYS,
                        help="days the sandbox clock moves before the 1%% incremental run (default %(default)s)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the result JSON goes (default %(default)s)")
    parser.add_argument("--skip", nargs="+", default=[], choices=("floor", "baseline", "baseline_parquet"),
                        metavar="MEASUREMENT", help="baseline measurements not to run (floor, baseline, "
                                                    "baseline_parquet): recorded as skipped")
    parser.add_argument("--plot", action="store_true",
                        help=f"only draw run time and peak memory against people from the result files in --out "
                             f"(to {PLOT.relative_to(ROOT)})")


def run_args(args: argparse.Namespace) -> int:
    """Run what the parsed options ask; exit code 0 only when floor, baseline and ours fetched the same records."""
    if args.plot:
        print(f"wrote {plot(args.out)}")
        return 0
    people = QUICK_PEOPLE if args.quick else args.people
    result, path = run(people, seed=args.seed, out=args.out, advance_days=args.advance_days, skip=tuple(args.skip))
    print()
    print(report(result))
    print(f"\nwrote {path}")
    return 0 if result["records_check"]["equal"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.py", description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--params", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:
        return child_main(args.step, args.params)
    return run_args(args)


if __name__ == "__main__":
    sys.exit(main())
