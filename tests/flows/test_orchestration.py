"""Orchestration against the sandbox with one Prefect test server: write, audit, publish; retries;
alerts; the warehouse lock across OS processes; readers during a run; deployments served on a schedule."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from flows.elt import elt_flow
from flows.gate import GateFailed
from flows.lock import lock_path
from flows.publish import connect_published, last_published
from flows.watch import watch_flow
from pipelines.http import VendorError
from pipelines.load import settings_from_index
from sandbox.server import SandboxServer
from sandbox.world import World

pytestmark = [pytest.mark.flows, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def prefect_client():
    from prefect import get_client

    return get_client(sync_client=True)


def task_run_names(flow_run_id: str) -> list[str]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with prefect_client() as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                                     limit=200)
    return [r.name for r in runs]


def published_run_id(published: Path) -> str | None:
    last = last_published(published)
    return last["run_id"] if last else None


def test_success_path_publishes_the_marts_and_shows_each_dbt_node_as_a_task_run(elt_run):
    summary = elt_run["second"]
    names = task_run_names(summary.run_id)
    assert "model dim_customers" in names and "model stg_shopify__orders" in names
    assert "test unique_dim_customers_customer_id" in names
    for step in ("extract-shopify", "load-shopify", "dbt-build", "quality-gate", "publish"):
        assert any(n.startswith(step) for n in names), step
    # the published file holds the marts as built, and the run that published them
    assert published_run_id(elt_run["published"]) == summary.run_id
    with connect_published(elt_run["published"]) as con:
        published_rows = con.execute("select count(*), sum(lifetime_net_revenue) from marts.dim_customers").fetchone()
        history = con.execute("select count(*) from marts.run_history").fetchone()[0]
    with duckdb.connect(str(elt_run["warehouse"]), read_only=True) as con:
        built = con.execute("select count(*), sum(lifetime_net_revenue) from marts.dim_customers").fetchone()
    assert published_rows == built and history == 2
    assert summary.gate.passed and set(summary.gate.freshness.values()) == {"pass"}
    assert any(a.key == "journey-run-report" and "## Quality gate" in a.data for a in artifacts_of(summary.run_id))


def artifacts_of(flow_run_id) -> list:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with prefect_client() as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_when_retrying(server: SandboxServer, task_name: str) -> None:
    """Bring the sandbox up only once Prefect has put the task's first attempt up for a retry."""
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterName

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with prefect_client() as client:
            runs = client.read_task_runs(task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=[task_name])))
        if any(r.state and r.state.name == "AwaitingRetry" for r in runs):
            server.start()
            return
        time.sleep(0.2)


def test_a_source_failing_transiently_recovers_by_retry(loaded_copy, world, monkeypatch):
    port = free_port()
    late_sandbox = SandboxServer(world, port=port, mode="bench")
    for key, value in settings_from_index(late_sandbox.index()).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("JOURNEY_HTTP_RETRY_SECONDS", "0.5")
    threading.Thread(target=start_when_retrying, args=(late_sandbox, "extract-shopify"), daemon=True).start()
    try:
        summary = elt_flow(sources=["shopify"], warehouse=str(loaded_copy["warehouse"]),
                           published=str(loaded_copy["published"]))
    finally:
        time.sleep(0.1)
        late_sandbox.stop()
    extract_attempts = [n for n in task_run_names(summary.run_id) if n == "extract-shopify"]
    assert extract_attempts == ["extract-shopify"]  # one task run, retried in place
    with prefect_client() as client:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[summary.run_id])))
    extract_run = next(r for r in runs if r.name == "extract-shopify")
    assert extract_run.run_count >= 2 and extract_run.state.is_completed()
    assert published_run_id(loaded_copy["published"]) == summary.run_id


def test_a_source_failing_permanently_fails_the_run_alerts_and_publishes_nothing(loaded_copy, alerts, monkeypatch):
    before = published_run_id(loaded_copy["published"])
    monkeypatch.setenv("SOURCES__SHOPIFY__ACCESS_TOKEN", "shpat_revoked_token_999")
    with pytest.raises(VendorError, match="401"):
        elt_flow(warehouse=str(loaded_copy["warehouse"]), published=str(loaded_copy["published"]))
    assert published_run_id(loaded_copy["published"]) == before
    texts = alerts.texts()
    assert len(texts) == 1
    assert "run failed" in texts[0] and "shopify" in texts[0] and "401" in texts[0]
    assert "sources.shopify.access_token" in texts[0] and "published data is unchanged" in texts[0]
    assert "shpat_revoked_token_999" not in json.dumps(alerts.received)


def test_a_far_smaller_load_fails_the_gate_and_keeps_the_published_run(loaded_copy, alerts, monkeypatch):
    before = published_run_id(loaded_copy["published"])
    with SandboxServer(World.build(7, 60), mode="bench") as shrunken:  # the vendor now returns far less
        for key, value in settings_from_index(shrunken.index()).items():
            monkeypatch.setenv(key, value)
        with pytest.raises(GateFailed, match="volume: marts.dim_customers"):
            elt_flow(full_refresh=True, warehouse=str(loaded_copy["warehouse"]),
                     published=str(loaded_copy["published"]))
    assert published_run_id(loaded_copy["published"]) == before
    with connect_published(loaded_copy["published"]) as con:
        assert con.execute("select count(*) from marts.dim_customers").fetchone()[0] == 400
    assert len(alerts.texts()) == 1 and "quality gate failed" in alerts.texts()[0]


def test_stale_data_and_late_runs_raise_alerts(loaded_copy, alerts):
    from prefect.states import Scheduled

    deployment_id = elt_flow.to_deployment(name="late-check").apply()
    with prefect_client() as client:
        late = client.create_flow_run_from_deployment(
            deployment_id, state=Scheduled(scheduled_time=datetime.now(UTC) - timedelta(hours=1)))
    problems = watch_flow(stale_after_hours=0.0001, late_after_minutes=5, published=str(loaded_copy["published"]))
    assert any("last successful publish" in p for p in problems)
    assert any(str(late.id) in p for p in problems)
    texts = alerts.texts()
    assert any("stale data" in t for t in texts) and any("late run" in t and str(late.id) in t for t in texts)
    # fresh data and no late run: no alert
    with prefect_client() as client:
        client.delete_flow_run(late.id)
    alerts.received.clear()
    assert not any("publish" in p for p in watch_flow(stale_after_hours=24, late_after_minutes=5,
                                                      published=str(loaded_copy["published"])))


def journey_env(loaded_copy: dict, **extra: str) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "PYTEST"))}
    env.update({"JOURNEY_WAREHOUSE": str(loaded_copy["warehouse"]), "JOURNEY_PUBLISHED": str(loaded_copy["published"]),
                "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    env.update(extra)
    return env


@pytest.fixture
def private_sandbox(world) -> Iterator[SandboxServer]:
    """A sandbox of the session's world for runs that activate: their CRM upserts land here, not in the
    shared sandbox other tests read."""
    with SandboxServer(world, mode="bench") as server:
        yield server


def test_two_runs_in_two_processes_never_write_at_once(loaded_copy, private_sandbox, world):
    journey = [sys.executable, "-m", "flows.cli", "run", "--sandbox-url", private_sandbox.url]
    first = subprocess.Popen(journey, cwd=ROOT, env=journey_env(loaded_copy), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lock = lock_path(loaded_copy["warehouse"])
    deadline = time.monotonic() + 120
    while not (lock.exists() and f'"pid": {first.pid}' in lock.read_text()):
        assert time.monotonic() < deadline and first.poll() is None, "the first run never took the lock"
        time.sleep(0.1)
    impatient = subprocess.run(journey, cwd=ROOT, env=journey_env(loaded_copy, JOURNEY_LOCK_WAIT_SECONDS="0"),
                               text=True, capture_output=True, timeout=300)
    patient = subprocess.Popen(journey, cwd=ROOT, env=journey_env(loaded_copy), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first_out, first_err = first.communicate(timeout=600)
    patient_out, patient_err = patient.communicate(timeout=600)
    assert impatient.returncode == 1
    assert "is being written by" in impatient.stderr and f"pid {first.pid}" in impatient.stderr
    assert first.returncode == 0, first_err[-2000:]
    assert patient.returncode == 0, patient_err[-2000:]  # it waited for the lock, then ran
    with duckdb.connect(str(loaded_copy["warehouse"]), read_only=True) as con:
        people, dupes = con.execute("select count(*), count(*) - count(distinct id) from raw_shopify.orders").fetchone()
    assert people == len(world.orders()) and dupes == 0


def test_a_reader_polling_during_a_run_sees_only_whole_runs(loaded_copy):
    published = loaded_copy["published"]
    seen: list[tuple[str, int, int]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            try:
                with connect_published(published) as con:
                    run_id, rows = con.execute("select run_id, rows_per_table from marts.run_history "
                                               "order by published_at desc limit 1").fetchone()
                    count = con.execute("select count(*) from marts.dim_customers").fetchone()[0]
                seen.append((run_id, json.loads(rows)["dim_customers"], count))
            except BaseException as error:  # noqa: BLE001 - any error a reader meets fails the test
                errors.append(error)
            time.sleep(0.02)

    before = published_run_id(published)
    reader = threading.Thread(target=poll)
    reader.start()
    try:
        summary = elt_flow(warehouse=str(loaded_copy["warehouse"]), published=str(published))
    finally:
        time.sleep(0.3)
        done.set()
        reader.join()
    assert not errors
    assert len(seen) > 20
    assert all(published_count == count for _, published_count, count in seen)  # whole runs only
    assert {run_id for run_id, _, _ in seen} == {before, summary.run_id}
    assert seen[-1][0] == summary.run_id


@pytest.fixture
def prefect_server_with_scheduler(tmp_path):
    """A real `prefect server start` (the session's test server runs no scheduler service), scheduling
    every second; the client settings point at it for the test."""
    import requests
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1", "PREFECT_API_URL": ""}
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([str(Path(sys.executable).with_name("prefect")), "server", "start", "--host",
                               "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while True:
        assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()[-3000:]
        try:
            if requests.get(url + "/health", timeout=2).ok:
                break
        except requests.RequestException:
            time.sleep(0.5)
    with temporary_settings({PREFECT_API_URL: url}):
        yield url
    stop(server)
    log.close()


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, and SIGKILL if it has not exited after a grace period (a runner drains its runs first)."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def test_journey_serve_runs_a_deployment_on_its_schedule(loaded_copy, private_sandbox, tmp_path,
                                                         prefect_server_with_scheduler):
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve", "--sandbox-url", private_sandbox.url, "--only", "elt-hourly"],
        cwd=ROOT, env=journey_env(loaded_copy, JOURNEY_SCHEDULE__ELT_HOURLY="every:5",
                                  PREFECT_API_URL=prefect_server_with_scheduler),
        text=True, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        completed = []
        while not completed:
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no scheduled run completed in time"
            time.sleep(2)
            with prefect_client() as client:
                runs = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["elt-hourly"])),
                    flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                        type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))))
            completed = [r for r in runs if r.state and r.state.is_completed()]
    finally:
        stop(serve)
        log.close()
    assert completed[0].deployment_id is not None
    assert any(a.key == "journey-run-report" and "Rows loaded" in (a.data or "") for a in artifacts_of(completed[0].id))
    assert published_run_id(loaded_copy["published"]) in {str(r.id) for r in runs}


def test_backfill_rereads_a_window_without_moving_the_cursor(loaded_copy, world):
    import dlt

    from flows.elt import backfill_flow
    from pipelines.warehouse import pipelines_dir

    def shopify_cursor() -> dict:
        pipeline = dlt.attach("journey_shopify", pipelines_dir=str(pipelines_dir(loaded_copy["warehouse"])))
        resources = pipeline.state["sources"]["shopify"]["resources"]
        return {name: state.get("high_water") for name, state in resources.items()}

    before = shopify_cursor()
    start, end = world.clock - timedelta(days=120), world.clock - timedelta(days=90)
    summary = backfill_flow(source="shopify", start=start.isoformat(), end=end.isoformat(),
                            warehouse=str(loaded_copy["warehouse"]), published=str(loaded_copy["published"]))
    in_window = [o for o in world.orders() if start <= o.updated_at <= end]
    assert in_window and summary.loads[0].rows["orders"] == len(in_window)
    assert shopify_cursor() == before
    assert published_run_id(loaded_copy["published"]) == summary.run_id
