"""Many sessions on one PostgreSQL pool: 100 concurrent sessions through at most 10 connections."""

from __future__ import annotations

import asyncio

import psycopg

from atlas_graph.config import StorageConfig
from atlas_graph.runner import arun
from atlas_graph.storage.ledger import alist_records
from atlas_graph.storage.persistence import aopen_persistence
from atlas_graph.testing import ScriptedAgent

SESSIONS = 100
POOL_MAX = 10
CONFIG = {"teacher": {"validator": "atlas_graph.demo:validator"}}


async def test_hundred_concurrent_sessions_share_a_pool_of_ten(pg_url: str) -> None:
    storage = StorageConfig(backend="postgres", database_url=pg_url, max_size=POOL_MAX)
    peak = 0

    async def watch_connections(stop: asyncio.Event) -> None:
        nonlocal peak
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            while not stop.is_set():
                cursor = await conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name = '' AND pid <> pg_backend_pid()"
                )
                row = await cursor.fetchone()
                peak = max(peak, row[0] if row else 0)
                await asyncio.sleep(0.02)

    async with aopen_persistence(storage) as opened:
        pool = opened.checkpointer.conn  # type: ignore[attr-defined]
        assert pool.max_size == POOL_MAX
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_connections(stop))

        async def one(index: int) -> str:
            agent = ScriptedAgent(outputs={1: [str(index * 2)]}, latency=0.005)
            result = await arun(
                f"Multiply {index} by 2.", config=CONFIG, mode="paired",
                thread_id=f"load-{index}", agent=agent, persistence=opened,
                session_metadata={"index": index},
            )  # fmt: skip
            assert result.final_answer == str(index * 2)
            return result.status

        statuses = await asyncio.gather(*(one(index) for index in range(SESSIONS)))
        stop.set()
        await watcher
        assert statuses == ["succeeded"] * SESSIONS
        assert pool.get_stats()["pool_max"] == POOL_MAX
        assert opened.store is not None
        records = await alist_records(opened.store, limit=1000)
        by_id = {r["session_id"]: r for r in records if r["session_id"].startswith("load-")}
        assert set(by_id) == {f"load-{index}" for index in range(SESSIONS)}
        assert all(record["status"] == "succeeded" for record in by_id.values())
        assert all(by_id[f"load-{i}"]["session_metadata"] == {"index": i} for i in range(SESSIONS))
        for index in range(SESSIONS):
            saved = await opened.checkpointer.aget_tuple(
                {"configurable": {"thread_id": f"load-{index}"}}
            )
            assert saved is not None
            assert saved.checkpoint["channel_values"]["final_answer"] == str(index * 2)
    # the watcher's own connection is excluded; the pool never went past its maximum
    assert 0 < peak <= POOL_MAX
