"""`journey`: one command with a subcommand for each job. Parses arguments, calls a flow or a
function, prints the result; exit code 0 only on success."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import signal
import sys
import threading
import urllib.parse
import urllib.request
from contextlib import ExitStack
from pathlib import Path

# A run without PREFECT_API_URL starts a temporary Prefect server; its 20 s default start-up wait is too short
# on a busy 2-core machine (seen in CI-like runs). Set before anything imports Prefect; yours wins if set.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

DEFAULT_SEED = 42
DEFAULT_PEOPLE = 2000


def _world_args(parser: argparse.ArgumentParser, people: int = DEFAULT_PEOPLE) -> None:
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the sandbox world's seed (default %(default)s)")
    parser.add_argument("--people", type=int, default=people, help="people in the sandbox world (default %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="journey", description="Customer-journey ELT: extract, load, build, report.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="the whole ELT once: extract, load, dbt build, gate, publish, activate")
    _sandbox_args(run)
    run.add_argument("--sources", nargs="+", metavar="SOURCE",
                     help="load only these vendors (each with all its configured accounts) or accounts (shopify.eu)")
    run.add_argument("--full-refresh", action="store_true",
                     help="drop each source's tables and cursors and read everything again")
    _destination_arg(run)

    activate = commands.add_parser("activate", help="send conversions and CRM updates from the published marts to "
                                                    "the configured destinations (GA4, Meta, ActiveCampaign, HubSpot)")
    activate.add_argument("--dry-run", action="store_true",
                          help="show what would be sent (GA4 requests checked by its debug endpoint); send nothing")
    activate.add_argument("--destinations", nargs="+", metavar="DESTINATION", help="only these destinations")
    activate.add_argument("--sandbox-url", metavar="URL", help="send to a running sandbox, configured from its index")

    check = commands.add_parser("check", help="try each configured vendor's credentials with a few cheap calls and "
                                              "report the permissions verified and missing (exit 1 if any is)")
    _sandbox_args(check, start=False)

    backfill = commands.add_parser("backfill", help="re-read one source for a date range, cursors untouched")
    _sandbox_args(backfill)
    backfill.add_argument("--source", required=True,
                          help="the vendor (all its accounts) or account (shopify.eu) to re-read")
    backfill.add_argument("--start", required=True, help="start of the range (ISO date or time, UTC)")
    backfill.add_argument("--end", required=True, help="end of the range (ISO date or time, UTC)")
    _destination_arg(backfill)

    serve = commands.add_parser("serve", help="serve the scheduled Prefect deployments (needs a Prefect server)")
    _sandbox_args(serve, start=False)
    serve.add_argument("--only", nargs="+", metavar="DEPLOYMENT", help="serve only these deployments")

    docs = commands.add_parser("docs", help="build the dbt docs site (one static page); --serve to serve it")
    docs.add_argument("--serve", action="store_true", help="serve it on 127.0.0.1 after building")
    docs.add_argument("--port", type=int, default=8080, help="port for --serve (default %(default)s)")

    webhooks = commands.add_parser("webhooks", help="receive signed Stripe and Shopify webhooks on 127.0.0.1 and land "
                                                    "them durably (POST /stripe, POST /shopify); `merge` moves "
                                                    "landed ones into the warehouse now")
    webhooks.add_argument("--port", type=int, default=8790, help="port on 127.0.0.1 (default %(default)s)")
    webhooks.add_argument("--sandbox-url", metavar="URL",
                          help="take the signing secrets from a running sandbox's index and register with it, so "
                               "advancing its clock pushes here")
    webhooks_commands = webhooks.add_subparsers(dest="webhooks_command", metavar="SUBCOMMAND")
    webhooks_commands.add_parser("merge", help="merge landed webhooks into ops.webhook_landing and the raw tables "
                                               "(every run does this too), under the warehouse lock")

    dashboard = commands.add_parser("dashboard", help="serve the dashboard on 127.0.0.1 (reads the published marts)")
    dashboard.add_argument("--port", type=int, default=8501, help="port on 127.0.0.1 (default %(default)s)")

    sandbox = commands.add_parser("sandbox", help="serve the vendor-API sandbox in the foreground")
    sandbox.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default %(default)s)")
    _world_args(sandbox)
    sandbox.add_argument("--faults", metavar="SPEC",
                         help="inject faults into vendor requests, e.g. '429=0.05,5xx=3,timeout=1,timeout_s=2': "
                              "a value below 1 is a probability per request, a whole number an exact count "
                              "(kinds: 429, 5xx, timeout, reset, truncate, shift)")
    sandbox.add_argument("--mode", choices=("faithful", "bench"), default="faithful",
                         help="faithful: the vendors' rate limits apply; bench: no limits (default %(default)s)")
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND")
    truth = sandbox_commands.add_parser("truth", help="export the world's ground truth as CSV files")
    _world_args(truth)
    truth.add_argument("--days", type=float, default=0.0,
                       help="the world after this many days (default 0: what a fresh sandbox serves); the same "
                            "world a sandbox serves after `advance` by as many days")
    truth.add_argument("--out", type=Path, required=True, help="folder to write the CSV files into")
    advance = sandbox_commands.add_parser("advance", help="move a running sandbox's clock forward")
    advance.add_argument("--url", required=True, help="the running sandbox, e.g. http://127.0.0.1:8765")
    advance.add_argument("--days", type=float, required=True, help="days to move forward (fractions allowed)")
    bench = commands.add_parser("bench", help="benchmark the ELT against a floor and dlt's rest_api baseline on a "
                                              "sandbox world: full, incremental, dbt, dashboard, peak memory "
                                              "(benchmarks/bench.py)")
    _bench_module().add_arguments(bench)
    return parser


def _bench_module():
    """benchmarks/bench.py, which holds the benchmark (it is a script beside the other benchmarks, not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"
    spec = importlib.util.spec_from_file_location("journey_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _destination_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--destination", choices=("duckdb", "bigquery"),
                        help="the warehouse: DuckDB (the default) or BigQuery, whose project, location and credentials "
                             "come from JOURNEY_BIGQUERY_* and Google's usual settings; sets JOURNEY_DESTINATION")


def _choose_destination(args: argparse.Namespace) -> None:
    if getattr(args, "destination", None):
        os.environ["JOURNEY_DESTINATION"] = args.destination


def _sandbox_args(parser: argparse.ArgumentParser, start: bool = True) -> None:
    where = parser.add_mutually_exclusive_group()
    if start:
        where.add_argument("--sandbox", action="store_true",
                           help="start the built-in sandbox on a free port and point every source at it")
        _world_args(parser)
        parser.add_argument("--faults", metavar="SPEC", help="with --sandbox: faults to inject, e.g. 429=0.05,5xx=3")
        parser.add_argument("--mode", choices=("faithful", "bench"), default="faithful",
                            help="with --sandbox: vendor rate limits applied (faithful) or lifted (bench)")
    where.add_argument("--sandbox-url", metavar="URL", help="use a running sandbox, configured from its index")


def _point_at_sandbox(args: argparse.Namespace, stack: ExitStack) -> None:
    """With --sandbox, start one for the length of the command; with either flag, configure every source
    from the sandbox's index (environment variables, dlt's convention)."""
    from pipelines.load import settings_from_index

    if getattr(args, "sandbox", False):
        from sandbox.server import SandboxServer
        from sandbox.world import World

        world = World.build(args.seed, args.people, streamed=True)
        server = stack.enter_context(SandboxServer(world, faults=args.faults, mode=args.mode))
        print(f"Sandbox: {server.url} (seed {args.seed}, {args.people:,} people)")
        os.environ.update(settings_from_index(server.index()))
    elif args.sandbox_url:
        os.environ.update(settings_from_index(_index_of(args.sandbox_url)))


def _index_of(url: str) -> dict:
    with urllib.request.urlopen(url.rstrip("/") + "/", timeout=10) as response:
        return json.loads(response.read())


def cmd_check(args: argparse.Namespace) -> int:
    from pipelines.check import report, run_checks
    from pipelines.load import missing_settings
    from pipelines.sources import checker, units

    with ExitStack() as stack:
        _point_at_sandbox(args, stack)
        configured = units()
        checks = run_checks({unit: checker(unit) for unit in configured},
                            {unit: missing_settings(unit) for unit in configured})
    text, code = report(checks)
    print(text)
    return code


def cmd_run(args: argparse.Namespace) -> int:
    from flows.elt import NothingConfigured, elt_flow
    from flows.summary import format_summary
    from pipelines.warehouse import destination_name

    _choose_destination(args)
    with ExitStack() as stack:
        _point_at_sandbox(args, stack)
        try:
            summary = elt_flow(sources=args.sources, full_refresh=args.full_refresh)
        except NothingConfigured as error:
            print(f"journey run: {error}", file=sys.stderr)
            return 2
    print(format_summary(summary))
    if destination_name() == "bigquery":
        print(f"\nQuery it in BigQuery: SELECT * FROM `{summary.published}.dim_customers`;")
        print("Open the dashboard on it: journey dashboard [--port P] (with JOURNEY_DESTINATION=bigquery)")
        return 0
    print(f"\nQuery it with any DuckDB client: ATTACH '{summary.published}' AS published (READ_ONLY); "
          "SELECT * FROM published.marts.dim_customers;")
    print("Open the dashboard on it: journey dashboard [--port P]")
    return 0


def cmd_activate(args: argparse.Namespace) -> int:
    from activation.run import activate, format_report
    from flows.publish import published_path
    from flows.published import identity, location
    from pipelines.warehouse import warehouse_path

    if args.sandbox_url:
        from pipelines.load import settings_from_index

        os.environ.update({k: v for k, v in settings_from_index(_index_of(args.sandbox_url)).items()
                           if k.startswith("ACTIVATION__")})
    published = published_path()  # the DuckDB file; on BigQuery the layer reads the current version instead
    if identity(published) is None:
        print(f"journey activate: nothing published yet at {location(published)}; run `journey run` first.",
              file=sys.stderr)
        return 2
    report = activate(published, warehouse_path(), dry_run=args.dry_run, names=args.destinations)
    print(format_report(report))
    if not report.destinations:
        return 2
    return 1 if report.failed else 0


def cmd_backfill(args: argparse.Namespace) -> int:
    from flows.elt import backfill_flow
    from flows.summary import format_summary

    _choose_destination(args)
    with ExitStack() as stack:
        _point_at_sandbox(args, stack)
        summary = backfill_flow(source=args.source, start=args.start, end=args.end)
    print(format_summary(summary))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from prefect import serve
    from prefect.settings import PREFECT_API_URL

    from flows.deployments import deployments

    if not PREFECT_API_URL.value():
        print("journey serve: no Prefect server configured. Start one with `.venv/bin/prefect server start` "
              "and set PREFECT_API_URL=http://127.0.0.1:4200/api (or your Prefect Cloud workspace URL).",
              file=sys.stderr)
        return 2
    with ExitStack() as stack:
        _point_at_sandbox(args, stack)
        serve(*deployments(args.only))
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from flows.docs import build_docs
    from pipelines.warehouse import warehouse_path

    page = build_docs(warehouse_path())
    print(f"Docs: {page}")
    if args.serve:
        from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

        handler = functools.partial(SimpleHTTPRequestHandler, directory=str(page.parent))
        with ThreadingHTTPServer(("127.0.0.1", args.port), handler) as httpd:
            print(f"Serving the docs at http://127.0.0.1:{args.port}/ ; Ctrl-C stops it.")
            try:
                httpd.serve_forever()
            except KeyboardInterrupt:
                pass
    return 0


def dashboard_command(port: int) -> list[str]:
    """Streamlit serving `dashboard/app.py` on loopback, headless, without usage statistics."""
    app = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
    return [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
            "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer"]


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve the dashboard in the foreground. It reads only the published marts, named to it through
    `JOURNEY_PUBLISHED` (resolved here, so it follows `JOURNEY_WAREHOUSE` as every command does); on BigQuery
    it reads the current published version (flows/published.py). Streamlit replaces this process, so Ctrl-C and
    a supervisor's signals reach the server itself."""
    from flows.publish import published_path
    from flows.published import location

    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, JOURNEY_PUBLISHED=str(published_path()),
               # the app imports `dashboard` and `flows` from this checkout, installed or not
               PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    print(f"Dashboard: http://127.0.0.1:{args.port}/ (published marts {location()}); Ctrl-C stops it.", flush=True)
    command = dashboard_command(args.port)
    os.execve(command[0], command, env)
    return 0  # not reached: execve does not return


def cmd_webhooks(args: argparse.Namespace) -> int:
    from pipelines.warehouse import warehouse_path
    from webhooks.settings import landing_path

    if args.webhooks_command == "merge":
        from webhooks.merge import format_merge, merge_landed

        print(format_merge(merge_landed(warehouse_path(), landing_path())))
        return 0
    from webhooks.receiver import serve

    registration = None
    if args.sandbox_url:
        from webhooks.settings import secrets_from_index

        os.environ.update(secrets_from_index(_index_of(args.sandbox_url)))
        registration = functools.partial(_register_with_sandbox, args.sandbox_url)
    return serve(args.port, landing_path(), on_listening=registration)


def _register_with_sandbox(sandbox_url: str, receiver_url: str) -> None:
    query = urllib.parse.urlencode({"url": receiver_url})
    request = urllib.request.Request(f"{sandbox_url.rstrip('/')}/_sandbox/webhooks?{query}", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass
    print(f"Registered with the sandbox at {sandbox_url}: advancing its clock pushes what happens here.", flush=True)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from sandbox.world import World

    if args.sandbox_command == "advance":
        return _advance_sandbox(args.url, args.days)
    # served, the world is streamed: drawn a person at a time, so the server's memory does not grow with it
    world = World.build(args.seed, args.people, days=getattr(args, "days", 0.0) or 0.0,
                        streamed=args.sandbox_command != "truth")
    if args.sandbox_command == "truth":
        from sandbox.truth import export

        for path in export(world, args.out):
            print(path)
        return 0
    from sandbox.server import SandboxServer

    # SIGTERM stops it as Ctrl-C does, so its records on disk are removed (sandbox/store.py)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    server = SandboxServer(world, port=args.port, faults=args.faults, mode=args.mode)
    del world  # the server's now: `advance` lets it go before building the next one (sandbox/server.py)
    try:
        print(f"Sandbox serving {args.people:,} people (seed {args.seed}, {args.mode} mode"
              f"{', faults ' + args.faults if args.faults else ''}) at {server.url}/ ; Ctrl-C stops it.")
        print(json.dumps(server.index(), indent=2))
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _advance_sandbox(url: str, days: float) -> int:
    request = urllib.request.Request(f"{url.rstrip('/')}/_sandbox/advance?days={days}", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            stats = json.loads(response.read())
    except urllib.request.HTTPError as error:  # the sandbox says why, e.g. a negative number of days
        raise ValueError(json.loads(error.read()).get("error", error.reason)) from None
    print(f"Sandbox clock: {stats['clock']}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    return _bench_module().run_args(args)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # dlt warns on every load about vendor fields that happen to be all null; our own warnings stay on
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    # SIGINT stops every command, as Ctrl-C, even one started as a background job (whose shell made it ignore
    # SIGINT, and Python then installs no handler): sandbox/process.py and the tests stop servers with it
    if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
        signal.signal(signal.SIGINT, signal.default_int_handler)
    handlers = {"run": cmd_run, "check": cmd_check, "activate": cmd_activate, "backfill": cmd_backfill,
                "serve": cmd_serve, "docs": cmd_docs, "dashboard": cmd_dashboard, "sandbox": cmd_sandbox,
                "webhooks": cmd_webhooks, "bench": cmd_bench}
    try:
        return handlers[args.command](args)
    except Exception as error:  # one readable line, not a traceback, for what a user can fix
        print(f"journey {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
