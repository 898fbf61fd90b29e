"""Export throughput from PostgreSQL: sessions per second written as JSON lines.

Run from the repository root::

    python bench/export.py                      # 5,000 sessions of 5 steps
    python bench/export.py --sessions 20000     # more sessions
    python bench/export.py --batch-size 500     # records per Store read
    python bench/export.py --json out.json      # also write the JSON document to a file
    python bench/export.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

One real escalate session with 5 steps (scripted student and teacher, zero latency) is run to
get a genuine ledger record; it is cloned under new session ids into a fresh database on the
server named by ``--database-url`` (or ``ATLAS_GRAPH_TEST_DATABASE_URL``), which is dropped
afterwards. Each record is written in its own transaction, as runs write them. The export
(``aexport_sessions``, the code behind ``atlas-graph export``) then writes every session to a
temporary file; the rate is sessions divided by its wall time, best of ``--repeats``. The
same export is also timed to ``/dev/null`` with the JSON encoding alone, and the Store reads
alone, to show where the time goes. A benchmark, not a test: nothing asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import sys
import tempfile
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from overhead import machine, report, teacher_reply

from atlas_graph.config import StorageConfig
from atlas_graph.export import aexport_sessions
from atlas_graph.graph import create_atlas_graph
from atlas_graph.storage.ledger import NAMESPACE
from atlas_graph.storage.persistence import Persistence, aopen_persistence, redact_dsn
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_SESSIONS_PER_SECOND = 1000.0
PLAN_5 = [
    {"id": 1, "description": "collect the numbers", "depends_on": []},
    {"id": 2, "description": "add the first pair", "depends_on": [1]},
    {"id": 3, "description": "add the second pair", "depends_on": [1]},
    {"id": 4, "description": "multiply both sums", "depends_on": [2, 3]},
    {"id": 5, "description": "report the result with its unit", "depends_on": [4]},
]


async def template_record() -> dict[str, Any]:
    """The ledger record of one real 5-step escalate session."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.store.memory import InMemoryStore

    store = InMemoryStore()
    agent = ScriptedAgent(plan=PLAN_5)
    teacher = ScriptedChatModel(responder=teacher_reply, name="teacher")
    builder = create_atlas_graph({}, agent=agent, models={"teacher": teacher})
    graph = builder.compile(checkpointer=InMemorySaver(), store=store)
    thread = {"configurable": {"thread_id": "template"}}
    await graph.ainvoke({"task": "benchmark task", "mode": "escalate"}, thread)
    item = await store.aget(NAMESPACE, "template")
    if item is None or len(item.value.get("steps") or {}) != 5:
        raise RuntimeError("the template session did not record 5 steps")
    return dict(item.value)


async def seed(persistence: Persistence, record: dict[str, Any], count: int) -> float:
    """Clone ``record`` ``count`` times, one write each; returns seconds taken."""
    assert persistence.store is not None
    started = time.perf_counter()
    for index in range(count):
        clone = copy.copy(record)
        session_id = f"bench-{index:07d}"
        clone.update(session_id=session_id, thread_id=session_id)
        await persistence.store.aput(NAMESPACE, session_id, clone, index=False)
    return time.perf_counter() - started


async def read_only(persistence: Persistence, batch_size: int) -> tuple[int, float]:
    """Sessions read and seconds: the Store pages alone, nothing encoded."""
    assert persistence.store is not None
    started = time.perf_counter()
    offset = read = 0
    while True:
        items = await persistence.store.asearch(NAMESPACE, limit=batch_size, offset=offset)
        read += len(items)
        if len(items) < batch_size:
            return read, time.perf_counter() - started
        offset += batch_size


async def timed_export(persistence: Persistence, path: str, batch_size: int) -> tuple[Any, float]:
    assert persistence.store is not None
    started = time.perf_counter()
    counts = await aexport_sessions(persistence.store, path, batch_size=batch_size)
    return counts, time.perf_counter() - started


def fresh_database(server: str) -> tuple[str, str]:
    import psycopg

    name = f"atlas_graph_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server)
    return name, urlunsplit(parts._replace(path=f"/{name}"))


def drop_database(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def measure(url: str, sessions: int, batch_size: int, repeats: int) -> dict[str, Any]:
    record = await template_record()
    record_bytes = len(json.dumps(record))
    async with aopen_persistence(StorageConfig(database_url=url, max_size=2)) as persistence:
        seed_seconds = await seed(persistence, record, sessions)
        export_runs: list[float] = []
        steps = written = 0
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "traces.jsonl")
            for _ in range(repeats):
                counts, seconds = await timed_export(persistence, path, batch_size)
                export_runs.append(seconds)
                written, steps = counts.sessions, counts.steps
            file_bytes = os.path.getsize(path)
            with open(path, encoding="utf-8") as handle:
                unique = len({json.loads(line)["session_id"] for line in handle})
        read_runs = [(await read_only(persistence, batch_size))[1] for _ in range(repeats)]
    if written != sessions or unique != sessions or steps != 5 * sessions:
        raise RuntimeError(
            f"export wrote {written} sessions ({unique} distinct, {steps} steps), "
            f"expected {sessions} with {5 * sessions} steps"
        )
    best = min(export_runs)
    return {
        "sessions": sessions,
        "steps_per_session": 5,
        "batch_size": batch_size,
        "record_bytes": record_bytes,
        "output_bytes": file_bytes,
        "seed_seconds": seed_seconds,
        "export_seconds": export_runs,
        "store_read_seconds": read_runs,
        "sessions_per_second": sessions / best,
        "store_read_share": min(read_runs) / best,
    }


def table(rows: list[tuple[str, str, str, str]]) -> str:
    header = ("measure", "value", "target", "ok?")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sessions", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--database-url", default=os.environ.get(
        "ATLAS_GRAPH_TEST_DATABASE_URL", DEFAULT_SERVER))  # fmt: skip
    parser.add_argument("--json", metavar="FILE", help="also write the JSON document here")
    args = parser.parse_args()
    try:
        name, url = fresh_database(args.database_url)
    except Exception as error:
        print(f"no PostgreSQL: {redact_dsn(str(error)).splitlines()[0]}", file=sys.stderr)
        return 1
    try:
        result = asyncio.run(measure(url, args.sessions, args.batch_size, args.repeats))
    finally:
        drop_database(args.database_url, name)
    rate = result["sessions_per_second"]
    rows = [
        (f"export {args.sessions} five-step sessions from PostgreSQL (best of {args.repeats})",
         f"{rate:,.0f} sessions/s", f">= {TARGET_SESSIONS_PER_SECOND:,.0f} sessions/s",
         "yes" if rate >= TARGET_SESSIONS_PER_SECOND else "NO"),
        ("share of export time spent in Store reads",
         f"{result['store_read_share'] * 100:.0f}%", "", ""),
        ("ledger record / exported line",
         f"{result['record_bytes'] / 1024:.1f} KiB / "
         f"{result['output_bytes'] / args.sessions / 1024:.1f} KiB", "", ""),
    ]  # fmt: skip
    document = {
        "benchmark": "export",
        "machine": machine(),
        "settings": {"sessions": args.sessions, "batch_size": args.batch_size,
                     "repeats": args.repeats, "database": redact_dsn(args.database_url)},
        "results": result,
        "target_sessions_per_second": TARGET_SESSIONS_PER_SECOND,
        "ok": rate >= TARGET_SESSIONS_PER_SECOND,
    }  # fmt: skip
    print(table(rows))
    print()
    report(document, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
