"""Savers that fail on purpose, for the chaos tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver


class SaverFault(RuntimeError):
    """The injected storage failure."""


class FailingPutSaver(InMemorySaver):
    """An ``InMemorySaver`` whose ``aput`` fails once, on its ``fail_at``-th call.

    Task writes (``aput_writes``) are kept, so the failure lands exactly between a superstep's
    saved results and the checkpoint that should follow them: a database that went away, or a
    full disk, at the worst moment.
    """

    def __init__(self, fail_at: int, error: Exception | None = None) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.error = error
        self.puts = 0
        self.failed = False

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        self.puts += 1
        if self.puts == self.fail_at and not self.failed:
            self.failed = True
            raise self.error or SaverFault("could not write: server closed the connection")
        return await super().aput(config, checkpoint, metadata, new_versions)


HERE = Path(__file__).parent


@contextmanager
def held_elsewhere(kind: str, where: str, thread: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``thread``'s claim for the block."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), str(HERE)])}
    holder = subprocess.Popen(
        [sys.executable, str(HERE / "hold_claim.py"), kind, where, thread],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
