"""Cost of persistence per paired session: each backend and durability mode vs none.

Run from the repository root::

    python bench/persistence.py                  # 100 sessions per row after 10 warm-up
    python bench/persistence.py --quick          # 25 sessions per row
    python bench/persistence.py --json out.json  # also write the JSON document to a file
    python bench/persistence.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

Each row runs sequential paired sessions (zero-latency scripted student and teacher) on one
compiled graph. The baseline has no checkpointer and no store; the other rows compile with the
backend's saver AND store (so the session ledger's two writes are included) and run with
``durability`` exit, async or sync. The cost of a row is its median minus the baseline
median. PostgreSQL rows use a fresh database on the server named by ``--database-url`` (or
``ATLAS_GRAPH_TEST_DATABASE_URL``), dropped afterwards; they are skipped when no server
answers. A benchmark, not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from overhead import Row, machine, report, summary, table, teacher_reply

from atlas_graph.config import StorageConfig
from atlas_graph.graph import create_atlas_graph
from atlas_graph.storage.persistence import Persistence, aopen_persistence, redact_dsn
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DURABILITIES = ("exit", "async", "sync")
TARGET_POSTGRES_SYNC_MS = 15.0


def compiled(persistence: Persistence | None) -> Any:
    agent = ScriptedAgent()
    teacher = ScriptedChatModel(responder=teacher_reply, name="teacher")
    builder = create_atlas_graph({}, agent=agent, models={"teacher": teacher})
    if persistence is None:
        return builder.compile()
    return builder.compile(checkpointer=persistence.checkpointer, store=persistence.store)


async def paired_sessions(
    graph: Any, durability: str | None, sessions: int, warmup: int
) -> list[float]:
    """Milliseconds per sequential paired session, each on a new thread."""
    times: list[float] = []
    for index in range(warmup + sessions):
        if index == warmup:
            gc.collect()
        config = {"configurable": {"thread_id": uuid.uuid4().hex}}
        kwargs = {"durability": durability} if durability else {}
        started = time.perf_counter()
        result = await graph.ainvoke({"task": "benchmark task", "mode": "paired"}, config, **kwargs)
        elapsed = (time.perf_counter() - started) * 1000
        if result.get("status") != "succeeded":
            raise RuntimeError(f"paired session ended {result.get('status')!r}")
        if index >= warmup:
            times.append(elapsed)
    return times


@asynccontextmanager
async def postgres_database(server: str) -> AsyncIterator[str | None]:
    """A throwaway database on ``server``; ``None`` when no server answers."""
    import psycopg

    try:
        admin = await psycopg.AsyncConnection.connect(server, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        print(f"PostgreSQL rows skipped: {redact_dsn(str(error)).splitlines()[0]}", file=sys.stderr)
        yield None
        return
    name = f"atlas_graph_bench_{uuid.uuid4().hex[:10]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def run(quick: bool, server: str) -> tuple[list[Row], dict[str, Any]]:
    sessions, warmup = (25, 5) if quick else (100, 10)
    baseline = summary(await paired_sessions(compiled(None), None, sessions, warmup))
    base = baseline["median_ms"]
    rows = [Row("none: median ms/session", base, "ms", None, baseline)]
    results: dict[str, Any] = {"none": baseline}
    with tempfile.TemporaryDirectory() as folder:
        async with postgres_database(server) as database_url:
            storages: dict[str, StorageConfig | None] = {
                "memory": StorageConfig(backend="memory"),
                "sqlite": StorageConfig(backend="sqlite", path=str(Path(folder) / "b.sqlite")),
                "postgres": (
                    StorageConfig(backend="postgres", database_url=database_url)
                    if database_url
                    else None
                ),
            }
            for backend, storage in storages.items():
                if storage is None:
                    continue
                async with aopen_persistence(storage) as opened:
                    graph = compiled(opened)
                    for durability in DURABILITIES:
                        stats = summary(await paired_sessions(graph, durability, sessions, warmup))
                        cost = stats["median_ms"] - base
                        key = f"{backend}/{durability}"
                        results[key] = {**stats, "cost_ms": round(cost, 3)}
                        target = (
                            TARGET_POSTGRES_SYNC_MS
                            if (backend, durability) == ("postgres", "sync")
                            else None
                        )
                        rows.append(Row(f"{key}: cost ms/session vs none", cost, "ms", target,
                                        results[key]))  # fmt: skip
    settings = {"quick": quick, "sessions_per_row": sessions, "warmup_per_row": warmup,
                "lane": "paired", "ledger": True}  # fmt: skip
    return rows, {"settings": settings, "machine": machine(), "results": results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="FILE", help="also write the JSON document here")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ATLAS_GRAPH_TEST_DATABASE_URL", DEFAULT_SERVER),
        help="PostgreSQL server for the postgres rows (a database is created and dropped)",
    )
    args = parser.parse_args()
    rows, document = asyncio.run(run(args.quick, args.database_url))
    document["rows"] = [
        {"measure": r.measure, "value": round(r.value, 3), "unit": r.unit, "target": r.target,
         "ok": r.ok} for r in rows
    ]  # fmt: skip
    print(table(rows))
    print()
    report(document, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
