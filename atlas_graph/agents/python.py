"""Adapter for a Python callable: the agent is a function the user already has."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from atlas_graph.agents.base import AgentError, AgentRequest, AgentResponse, coerce_response
from atlas_graph.callables import call_maybe_async


def _positional_arity(function: Callable[..., Any]) -> int:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return 1
    positional = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return 2
    return len(positional)


_DONE = object()


def _next_chunk(iterator: Iterator[Any]) -> Any:
    return next(iterator, _DONE)


async def _drain_sync(iterator: Iterator[Any]) -> list[Any]:
    """Pull a sync generator chunk by chunk in worker threads, so it never blocks the loop."""
    chunks: list[Any] = []
    while (chunk := await asyncio.to_thread(_next_chunk, iterator)) is not _DONE:
        chunks.append(chunk)
    return chunks


async def _drain_async(iterator: AsyncIterator[Any]) -> list[Any]:
    return [chunk async for chunk in iterator]


def _concatenate(chunks: list[Any]) -> AgentResponse:
    """One response from streamed chunks: text joined, usage summed, tool calls collected."""
    parts = [coerce_response(chunk) for chunk in chunks if chunk is not None]
    usage: dict[str, int] = {}
    for part in parts:
        for key, value in part.usage.items():
            usage[key] = usage.get(key, 0) + value
    delivered = [part.deliverable for part in parts if part.deliverable is not None]
    return AgentResponse(
        content="".join(part.content for part in parts),
        tool_calls=[call for part in parts for call in part.tool_calls],
        usage=usage,
        deliverable=delivered[-1] if delivered else None,
        artifacts={key: value for part in parts for key, value in part.artifacts.items()},
    )


class PythonAgent:
    """Call a Python callable as the student's agent, whatever kind it is.

    Sync and async functions, sync and async generators (their chunks are concatenated) and
    objects with a sync or async ``__call__`` all work. A callable with two required
    positional parameters gets the Atlas signature ``(prompt, metadata)``; any other gets the
    structured ``AgentRequest``. Sync code runs in worker threads so a blocking agent does not
    stall parallel steps.
    """

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        allow_generator: bool = True,
    ) -> None:
        if not callable(function):
            raise TypeError(f"{type(function).__name__} is not callable")
        self.function = function
        self.name = name or getattr(function, "__name__", type(function).__name__)
        self.allow_generator = allow_generator
        self._atlas_signature = _positional_arity(function) >= 2

    def _arguments(self, request: AgentRequest) -> tuple[Any, ...]:
        if self._atlas_signature:
            metadata = {
                **request.metadata,
                "mode": request.mode,
                "system_prompt": request.system_prompt,  # persona prompt and memories
                "step": request.step,
                "attempt": request.attempt,
                "tools": request.tools,
                "tool_rounds": [entry.model_dump() for entry in request.tool_rounds],
            }
            return (request.prompt, metadata)
        return (request,)

    async def ainvoke(self, request: AgentRequest) -> AgentResponse:
        """Run the callable and normalise its answer."""
        result = await call_maybe_async(self.function, *self._arguments(request))
        # An awaitable may come back from a sync wrapper around async code: finish it here,
        # never hand its repr to the teacher.
        while inspect.isawaitable(result):
            result = await result
        is_generator = inspect.isgenerator(result) or inspect.isasyncgen(result)
        if is_generator and not self.allow_generator:
            raise AgentError(
                f"agent '{self.name}' returned a generator; set agent.allow_generator: true to "
                "concatenate its chunks"
            )
        if inspect.isasyncgen(result):
            return _concatenate(await _drain_async(result))
        if inspect.isgenerator(result):
            return _concatenate(await _drain_sync(result))
        return coerce_response(result)
