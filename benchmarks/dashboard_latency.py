"""Dashboard latency: every query one page view asks (dashboard.queries.page_queries), timed warm on a
published file, as p50/p95 per panel and as ratios against a baseline measured in the same process.

    python benchmarks/dashboard_latency.py --published PATH [--repeat N] [--preset last_28] [--scale K]

Prints a table (ms) and writes benchmarks/results/dashboard-<UTC timestamp>.json. The ratios, not the
milliseconds, are what compare across machines: each panel's p95 over the baseline's p95, where the
baseline is a `select 1` round trip and the run-history query (the cheapest query a page asks).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from dashboard import queries  # noqa: E402
from dashboard.queries import Filters  # noqa: E402

FILTERED = Filters(countries=("US", "GB"), customer_type="new")


def percentile(samples: list[float], share: float) -> float:
    """Nearest-rank percentile of `samples` (seconds)."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))]


def timed(ask: Callable[[], object], repeat: int) -> list[float]:
    ask()  # the first call pays DuckDB's one-off costs; a page view repeats them warm
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        ask()
        samples.append(time.perf_counter() - started)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(samples) * 1000, 3), "p95_ms": round(percentile(samples, 0.95) * 1000, 3)}


def scaled_copy(published: Path, scale: int, target: Path) -> Path:
    """A copy of `published` with every mart's rows repeated `scale` times under distinct ids (a shop `scale`
    times larger over the same dates), to measure the panels at a size the sandbox cannot build yet. Text
    ids and keys get a `~k` suffix and integer ids an offset, so joins and distinct counts stay right."""
    target.unlink(missing_ok=True)
    with duckdb.connect(str(target)) as con:
        con.execute("attach ? as src (read_only)", [str(published)])
        con.execute("create schema marts")
        tables = [t for (t,) in con.execute("select table_name from information_schema.tables where "
                                            "table_catalog = 'src' and table_schema = 'marts'").fetchall()]
        for table in tables:
            columns = con.execute("select column_name, data_type from information_schema.columns where "
                                  "table_catalog = 'src' and table_schema = 'marts' and table_name = ? "
                                  "order by ordinal_position", [table]).fetchall()
            copies = 1 if table == "run_history" else scale
            select = []
            for name, kind in columns:
                is_id = name.endswith(("_id", "_key"))
                if is_id and kind == "VARCHAR":
                    select.append(f"case when k = 0 then \"{name}\" else \"{name}\" || '~' || k end as \"{name}\"")
                elif is_id and kind in ("BIGINT", "INTEGER"):
                    select.append(f"\"{name}\" + k * 1000000000000 as \"{name}\"")
                else:
                    select.append(f'"{name}"')
            con.execute(f"create table marts.{table} as select {', '.join(select)} "
                        f"from src.marts.{table} cross join range({copies}) as copies(k)")
        con.execute("checkpoint")
    return target


def measure(published: Path, repeat: int, preset: str) -> dict:
    with queries.open_published(published) as con:
        baselines = {
            "select_1": summary(timed(lambda: con.execute("select 1").fetchall(), repeat)),
            "run_history": summary(timed(lambda: queries.run_history(con), repeat)),
        }
        cases = {}
        for case, filters in (("unfiltered", queries.NO_FILTERS), ("filtered", FILTERED)):
            panels = {}
            for name, ask in queries.page_queries(con, filters, preset).items():
                panels[name] = summary(timed(ask, repeat))
                for baseline, figures in baselines.items():
                    panels[name][f"p95_over_{baseline}"] = round(panels[name]["p95_ms"] / figures["p95_ms"], 1)
            page = summary(timed(lambda f=filters: [ask() for ask in queries.page_queries(con, f, preset).values()],
                                 max(repeat // 5, 5)))
            cases[case] = {"filters": repr(filters), "panels": panels, "page": page}
        run = queries.latest_run(con)
        orders = con.execute("select count(*) from marts.fct_orders").fetchone()[0]
    return {"published": str(published), "run_id": run.run_id if run else None, "fct_orders_rows": orders,
            "repeat": repeat, "preset": preset, "baselines": baselines, "cases": cases,
            "python": platform.python_version(), "duckdb": duckdb.__version__, "machine": platform.machine()}


def report(result: dict) -> str:
    lines = [f"published {result['published']} (run {result['run_id']}, {result['fct_orders_rows']:,} orders), "
             f"{result['repeat']} warm repeats, preset {result['preset']}",
             "baselines: " + ", ".join(f"{name} p50 {b['p50_ms']:.3f} ms, p95 {b['p95_ms']:.3f} ms"
                                       for name, b in result["baselines"].items())]
    for case, figures in result["cases"].items():
        lines += ["", f"{case}: {figures['filters']}",
                  f"{'panel':<22}{'p50 ms':>9}{'p95 ms':>9}{'p95/select_1':>14}{'p95/run_history':>17}"]
        for name, p in figures["panels"].items():
            lines.append(f"{name:<22}{p['p50_ms']:>9.2f}{p['p95_ms']:>9.2f}{p['p95_over_select_1']:>14.1f}"
                         f"{p['p95_over_run_history']:>17.1f}")
        page = figures["page"]
        lines.append(f"{'whole page (in turn)':<22}{page['p50_ms']:>9.2f}{page['p95_ms']:>9.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--published", type=Path, required=True, help="a published marts file (marts.duckdb)")
    parser.add_argument("--repeat", type=int, default=50, help="warm runs per panel (default 50)")
    parser.add_argument("--preset", default="last_28", help="the date-range preset the page shows (default last_28)")
    parser.add_argument("--scale", type=int, default=1,
                        help="measure a copy with every mart repeated K times under distinct ids (default 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="where the JSON goes")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    published = args.published
    if args.scale > 1:
        published = scaled_copy(args.published, args.scale, args.out / f"scaled-x{args.scale}.duckdb")
    result = measure(published, max(args.repeat, 1), args.preset)
    result["scale"] = args.scale
    result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(report(result))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"dashboard-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
