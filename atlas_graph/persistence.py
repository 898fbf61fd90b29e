"""Open the checkpointer and node cache that ``run()`` and the CLI use.

The embedded default is one SQLite file (``storage.path``, under ``.atlas_graph/``); the
plan-review cache sits beside it so cached reviews survive between CLI runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from langgraph.cache.base import BaseCache
from langgraph.cache.memory import InMemoryCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from atlas_graph.config import StorageConfig


@dataclass(frozen=True)
class Persistence:
    """A checkpointer and a node cache opened together."""

    checkpointer: BaseCheckpointSaver[str]
    cache: BaseCache[object]


@asynccontextmanager
async def open_persistence(storage: StorageConfig) -> AsyncIterator[Persistence]:
    """Open what ``storage`` names; SQLite files and folders are created on first use."""
    if storage.backend == "memory":
        yield Persistence(InMemorySaver(), InMemoryCache())
        return
    from langgraph.cache.sqlite import SqliteCache
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = Path(storage.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cache_path = path.with_name(f"{path.stem}.cache{path.suffix or '.sqlite'}")
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        yield Persistence(saver, SqliteCache(path=str(cache_path)))
