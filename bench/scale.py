"""Batch throughput: sessions per second in one process and on 1, 2 and 4 Ray workers.

Run from the repository root (needs the ``ray`` extra and a PostgreSQL server)::

    python bench/scale.py                  # 300 sessions per row
    python bench/scale.py --quick          # 100 sessions per row
    python bench/scale.py --json out.json  # also write the JSON document to a file
    python bench/scale.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

Every row runs the same batch with ``aevaluate``: paired sessions of the offline demo whose
student sleeps 0 or 50 ms per call (the teacher and judge are instant Python functions), on a
throwaway PostgreSQL database with ``durability: sync``, ``--concurrency`` sessions at a time
per process. The ``local`` rows are today's single-process ``atlas-graph eval``; the ``ray``
rows start 1, 2 or 4 worker processes on a local Ray cluster with one CPU per core (more
workers than cores share them). Sessions/s is the steady rate, from the result that ends the
first tenth of the batch to the last (worker start-up is left out: it is paid once per batch,
and its cost is in ``wall_seconds``); ``cores`` is how many of the machine's cores were busy
during the batch (all processes: driver, workers, PostgreSQL, Ray's own), from ``/proc/stat``.
A benchmark, not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from overhead import Row, machine, report, table
from persistence import DEFAULT_SERVER, postgres_database

from atlas_graph import demo
from atlas_graph.agents import AgentRequest
from atlas_graph.evaluation.batch import aevaluate

BENCH = Path(__file__).resolve().parent
LATENCIES = (0.0, 0.05)
WORKERS = (1, 2, 4)
TASK = "Add 19 and 23."


async def sleepy_student(request: AgentRequest) -> dict[str, Any]:
    """The demo student after ``session_metadata["latency"]`` seconds, like a remote model."""
    latency = float(request.metadata.get("latency") or 0)
    if latency:
        await asyncio.sleep(latency)
    return demo.student(request)


def bench_config(database_url: str) -> dict[str, Any]:
    """The offline demo with the sleeping student, on ``database_url``."""
    config = yaml.safe_load(demo.demo_config_path().read_text(encoding="utf-8"))
    config["agent"].update(import_path="scale", attribute="sleepy_student",
                           working_directory=str(BENCH))  # fmt: skip
    config["storage"] = {"database_url": database_url, "durability": "sync", "max_size": 10}
    return config


async def measure(
    config: dict[str, Any], latency: float, sessions: int, concurrency: int, **executor: Any
) -> dict[str, Any]:
    """One batch: steady sessions/s, and the wall time including worker start-up."""
    rows = [{"id": f"s{number}", "task": TASK, "mode": "paired",
             "session_metadata": {"latency": latency}} for number in range(sessions)]  # fmt: skip
    ended: list[float] = []
    busy_before = _cpu_times()
    started = time.perf_counter()
    report_ = await aevaluate(
        rows, config=config, concurrency=concurrency,
        on_result=lambda line: ended.append(time.perf_counter()), **executor,
    )  # fmt: skip
    wall = time.perf_counter() - started
    busy_after = _cpu_times()
    if report_.summary.total.succeeded != sessions:
        errors = {line["error"] for line in report_.results if line["error"]}
        raise RuntimeError(
            f"{sessions - report_.summary.total.succeeded} sessions failed: {errors}"
        )
    first = max(1, sessions // 10)
    steady = (sessions - first) / (ended[-1] - ended[first - 1])
    cores_busy = None
    if busy_before and busy_after:
        busy, total = (
            after - before for before, after in zip(busy_before, busy_after, strict=True)
        )
        cores_busy = round(busy / total * (os.cpu_count() or 1), 2)
    return {"sessions": sessions, "sessions_per_second": round(steady, 1),
            "wall_seconds": round(wall, 2), "cores_busy": cores_busy}  # fmt: skip


def _cpu_times() -> tuple[int, int] | None:
    """Busy and total jiffies of the whole machine (Linux), PostgreSQL and Ray included."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


async def run(quick: bool, server: str, concurrency: int) -> tuple[list[Row], dict[str, Any]]:
    import ray

    sessions = 100 if quick else 300
    cores = os.cpu_count() or 1
    rows: list[Row] = []
    results: dict[str, Any] = {}
    async with postgres_database(server) as database_url:
        if database_url is None:
            raise SystemExit("bench/scale.py needs a PostgreSQL server (--database-url)")
        config = bench_config(database_url)
        # one local cluster for every Ray row: one CPU per core, as `--ray local` starts it
        ray.init(address="local", num_cpus=cores, include_dashboard=False,
                 logging_level=logging.ERROR, log_to_driver=False)  # fmt: skip
        try:
            for latency in LATENCIES:
                label = f"{latency * 1000:.0f} ms"
                local = await measure(config, latency, sessions, concurrency)
                results[f"local/{label}"] = local
                rows.append(Row(f"eval, one process, {label}", local["sessions_per_second"],
                                "sessions/s", None, local))  # fmt: skip
                for workers in WORKERS:
                    ray_row = await measure(config, latency, sessions, concurrency,
                                            executor="ray", workers=workers)  # fmt: skip
                    ray_row["speedup"] = round(
                        ray_row["sessions_per_second"] / local["sessions_per_second"], 2
                    )
                    results[f"ray-{workers}/{label}"] = ray_row
                    rows.append(Row(f"eval --ray, {workers} worker{'s' * (workers > 1)}, {label}",
                                    ray_row["sessions_per_second"], "sessions/s", None,
                                    ray_row))  # fmt: skip
        finally:
            ray.shutdown()
    settings = {"quick": quick, "sessions_per_row": sessions, "concurrency_per_process":
                concurrency, "lane": "paired", "latencies_s": LATENCIES, "workers": WORKERS,
                "ray_cpus": cores, "storage": "postgres, durability sync"}  # fmt: skip
    return rows, {"settings": settings, "machine": machine(), "results": results}


def scale_table(results: dict[str, Any]) -> str:
    """Rows by executor, columns by latency: sessions/s (speed-up over one process)."""
    header = ["executor", *(f"{latency * 1000:.0f} ms latency" for latency in LATENCIES)]
    lines = [header]
    for key, name in [
        ("local", "eval, one process"),
        *((f"ray-{w}", f"--ray, {w} worker{'s' * (w > 1)}") for w in WORKERS),
    ]:
        cells = [name]
        for latency in LATENCIES:
            row = results[f"{key}/{latency * 1000:.0f} ms"]
            speedup = f" ({row['speedup']:.2f}x)" if "speedup" in row else ""
            busy = f", {row['cores_busy']:.1f} cores" if row.get("cores_busy") is not None else ""
            cells.append(f"{row['sessions_per_second']:.1f}/s{speedup}{busy}")
        lines.append(cells)  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    render = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
              for line in lines]  # fmt: skip
    render.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in render)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="also write the JSON document here")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="sessions at a time per process (default: 16)")  # fmt: skip
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ATLAS_GRAPH_TEST_DATABASE_URL", DEFAULT_SERVER),
        help="PostgreSQL server (a database is created and dropped)",
    )
    args = parser.parse_args()
    rows, document = asyncio.run(run(args.quick, args.database_url, args.concurrency))
    document["rows"] = [
        {"measure": r.measure, "value": round(r.value, 3), "unit": r.unit} for r in rows
    ]
    print(table(rows))
    print()
    print(scale_table(document["results"]))
    print()
    report(document, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
