"""Adapter for a Python callable: the agent is a function the user already has."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from atlas_graph.agents.base import AgentRequest, coerce_response
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


class PythonAgent:
    """Call a sync or async function (or callable object) as the student's agent.

    A function with two required positional parameters gets the Atlas signature
    ``(prompt, metadata)``; any other gets the structured ``AgentRequest``. Sync functions run
    in a worker thread so a blocking agent does not stall parallel steps.
    """

    def __init__(self, function: Callable[..., Any], *, name: str | None = None) -> None:
        self.function = function
        self.name = name or getattr(function, "__name__", type(function).__name__)
        self._atlas_signature = _positional_arity(function) >= 2

    def _arguments(self, request: AgentRequest) -> tuple[Any, ...]:
        if self._atlas_signature:
            metadata = {**request.metadata, "mode": request.mode, "step": request.step}
            return (request.prompt, metadata)
        return (request,)

    async def ainvoke(self, request: AgentRequest) -> Any:
        """Run the function and normalise its answer."""
        return coerce_response(await call_maybe_async(self.function, *self._arguments(request)))
