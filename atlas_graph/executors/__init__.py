"""Where a batch's sessions run: in this process (``local``) or on a Ray cluster (``ray``).

An executor takes the batch's jobs (a task and the thread id its session runs under) and a
``SessionWork`` that knows how to run one job on an open graph and how to write the line of a
job it could not run. It hands every result line to ``emit`` as soon as it has it; reading
task files, skipping finished tasks and appending result lines stay with the batch
(``atlas_graph.evaluation.batch``), so every executor resumes the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from langgraph.graph.state import CompiledStateGraph

ExecutorName = Literal["local", "ray"]
EXECUTORS: tuple[ExecutorName, ...] = ("local", "ray")

Emit = Callable[[dict[str, Any]], None]
"""Receives each result line on the driver, in the order sessions end."""


@dataclass(frozen=True)
class Job:
    """One session to run: ``session_id`` is its thread id and never changes between tries,
    so a session whose worker was lost resumes from its checkpoints elsewhere."""

    key: str
    session_id: str
    item: Any
    tries: int = 0
    """Earlier tries lost with their worker (0 for a first run)."""


class SessionWork(Protocol):
    """What runs one job; must pickle (Ray ships it to every worker once)."""

    async def run(self, graph: CompiledStateGraph[Any, Any, Any, Any], job: Job) -> dict[str, Any]:
        """Run or continue the job's session on ``graph``; return its result line."""
        ...

    def lost(self, job: Job, message: str) -> dict[str, Any]:
        """The result line of a job the executor could not finish (it runs again on a rerun)."""
        ...
