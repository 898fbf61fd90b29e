"""Savers that fail on purpose, for the chaos tests."""

from __future__ import annotations

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

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.puts = 0
        self.failed = False

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        self.puts += 1
        if self.puts == self.fail_at and not self.failed:
            self.failed = True
            raise SaverFault("could not write the checkpoint: server closed the connection")
        return await super().aput(config, checkpoint, metadata, new_versions)
