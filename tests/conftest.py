"""Shared fixtures: a graph runner that records node order and events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore
from pg import pg_url

from atlas_graph.graph import create_atlas_graph
from atlas_graph.telemetry.events import is_event

__all__ = ["pg_url"]  # the PostgreSQL fixture, shared by every test module

MEMORY = {"storage": {"backend": "memory"}}


class GraphRun:
    """Run a compiled graph and keep what the stream showed."""

    def __init__(self, builder: Any, **compile_kwargs: Any) -> None:
        compile_kwargs.setdefault("checkpointer", InMemorySaver())
        self.graph = builder.compile(**compile_kwargs)
        self.nodes: list[str] = []
        self.events: list[dict[str, Any]] = []

    async def __call__(
        self,
        task: str,
        *,
        mode: str | None = None,
        thread: str = "t1",
        metadata: dict[str, Any] | None = None,
    ) -> Any:
        config = {"configurable": {"thread_id": thread}}
        payload: dict[str, Any] = {"task": task}
        if mode:
            payload["mode"] = mode
        if metadata is not None:
            payload["session_metadata"] = metadata
        async for kind, chunk in self.graph.astream(
            payload, config, stream_mode=["updates", "custom"]
        ):
            if kind == "updates":
                self.nodes.extend(chunk)
            elif is_event(chunk):
                self.events.append(chunk)
        return (await self.graph.aget_state(config)).values


@pytest.fixture
def make_run() -> Callable[..., GraphRun]:
    """Build a graph from config overrides, agent and models, ready to run.

    ``store=`` compiles it with a LangGraph Store (cross-session history and memory).
    """

    def build(
        config: dict[str, Any] | None = None, *, store: BaseStore | None = None, **kwargs: Any
    ) -> GraphRun:
        compile_kwargs = kwargs.pop("compile_kwargs", {})
        if store is not None:
            compile_kwargs["store"] = store
        return GraphRun(
            create_atlas_graph({**MEMORY, **(config or {})}, **kwargs), **compile_kwargs
        )

    return build
