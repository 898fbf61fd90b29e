"""The in-process executor: every session on this event loop, one graph and one storage.

The graph is built and compiled once and its storage opened once (one PostgreSQL pool, or one
SQLite connection) for the whole batch; at most ``concurrency`` sessions run at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel

from atlas_graph.config import AtlasConfig
from atlas_graph.executors import Emit, Job, SessionWork
from atlas_graph.runner import aopen_graph
from atlas_graph.storage.persistence import Persistence


async def run_local(
    jobs: Sequence[Job],
    work: SessionWork,
    emit: Emit,
    *,
    config: AtlasConfig,
    concurrency: int,
    models: Mapping[str, BaseChatModel] | None = None,
    agent: Any = None,
    persistence: Persistence | None = None,
) -> None:
    """Run ``jobs`` here, at most ``concurrency`` at a time, emitting each line as it ends."""
    if not jobs:
        return
    queue: asyncio.Queue[Job] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    async with aopen_graph(config, models=models, agent=agent, persistence=persistence) as graph:

        async def worker() -> None:
            while not queue.empty():
                emit(await work.run(graph, queue.get_nowait()))

        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(jobs))):
                group.create_task(worker())
