"""Open the default SQLite storage once the ``go`` file appears, and write one ledger record.

Twelve of these started together race on the store's first setup (its migrations), as
twelve CLI runs in a fresh folder do, without paying for twelve full sessions.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from atlas_graph.config import StorageConfig
from atlas_graph.storage.persistence import aopen_persistence


async def main(name: str) -> None:
    Path(f"ready-{name}").touch()
    while not Path("go").exists():
        time.sleep(0.005)
    async with aopen_persistence(StorageConfig()) as opened:
        assert opened.store is not None
        await opened.store.aput(
            ("atlas", "sessions"), name, {"session_id": name, "pid": os.getpid()}
        )
        config = {"configurable": {"thread_id": name}}
        assert await opened.checkpointer.aget_tuple(config) is None


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
