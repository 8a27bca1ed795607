"""`journey`: one command with a subcommand for each job. Parses arguments, calls a flow or a
function, prints the result; exit code 0 only on success."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import urllib.request
from contextlib import ExitStack
from pathlib import Path

DEFAULT_SEED = 42
DEFAULT_PEOPLE = 2000


def _world_args(parser: argparse.ArgumentParser, people: int = DEFAULT_PEOPLE) -> None:
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the sandbox world's seed (default %(default)s)")
    parser.add_argument("--people", type=int, default=people, help="people in the sandbox world (default %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="journey", description="Customer-journey ELT: extract, load, build, report.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="the whole ELT once: extract, load, dbt build, summary")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--sandbox", action="store_true",
                       help="start the built-in sandbox on a free port and point every source at it")
    where.add_argument("--sandbox-url", metavar="URL", help="use a running sandbox, configured from its index")
    _world_args(run)
    run.add_argument("--sources", nargs="+", metavar="SOURCE", help="load only these sources")
    run.add_argument("--full-refresh", action="store_true", help="re-read everything, ignoring saved cursors")

    sandbox = commands.add_parser("sandbox", help="serve the vendor-API sandbox in the foreground")
    sandbox.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default %(default)s)")
    _world_args(sandbox)
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND")
    truth = sandbox_commands.add_parser("truth", help="export the world's ground truth as CSV files")
    _world_args(truth)
    truth.add_argument("--out", type=Path, required=True, help="folder to write the CSV files into")
    return parser


def _index_of(url: str) -> dict:
    with urllib.request.urlopen(url.rstrip("/") + "/", timeout=10) as response:
        return json.loads(response.read())


def cmd_run(args: argparse.Namespace) -> int:
    from flows.elt import NothingConfigured, elt_flow
    from flows.summary import format_summary
    from pipelines.load import settings_from_index
    from pipelines.warehouse import warehouse_path

    with ExitStack() as stack:
        if args.sandbox:
            from sandbox.server import SandboxServer
            from sandbox.world import World

            server = stack.enter_context(SandboxServer(World.build(args.seed, args.people)))
            print(f"Sandbox: {server.url} (seed {args.seed}, {args.people:,} people)")
            os.environ.update(settings_from_index(server.index()))
        elif args.sandbox_url:
            os.environ.update(settings_from_index(_index_of(args.sandbox_url)))
        try:
            summary = elt_flow(sources=args.sources, full_refresh=args.full_refresh,
                               warehouse=str(warehouse_path()))
        except NothingConfigured as error:
            print(f"journey run: {error}", file=sys.stderr)
            return 2
    print(format_summary(summary))
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from sandbox.world import World

    world = World.build(args.seed, args.people)
    if args.sandbox_command == "truth":
        from sandbox.truth import export

        for path in export(world, args.out):
            print(path)
        return 0
    from sandbox.server import SandboxServer

    server = SandboxServer(world, port=args.port)
    print(f"Sandbox serving {args.people:,} people (seed {args.seed}) at {server.url}/ ; Ctrl-C stops it.")
    print(json.dumps(server.index(), indent=2))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # dlt warns on every load about vendor fields that happen to be all null; our own warnings stay on
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    handlers = {"run": cmd_run, "sandbox": cmd_sandbox}
    try:
        return handlers[args.command](args)
    except Exception as error:  # one readable line, not a traceback, for what a user can fix
        print(f"journey {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
