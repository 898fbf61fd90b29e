"""Adapter for a Python callable: the agent is a function the user already has."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from atlas_graph.agents.base import AgentError, AgentRequest, AgentResponse, coerce_response
from atlas_graph.callables import call_maybe_async


def _takes_prompt_and_metadata(function: Callable[..., Any]) -> bool:
    """Whether the callable has Atlas's ``(prompt, metadata)`` signature.

    Two or more positional parameters (required or optional, as in Atlas's documented
    ``async def create_agent(prompt=None, metadata=None)``), ``*args``, or a parameter named
    ``metadata`` mean Atlas's form; one positional parameter gets the ``AgentRequest``.
    """
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return True
    return len(positional) >= 2 or any(p.name == "metadata" for p in parameters)


def _metadata_keyword_only(function: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "metadata" and p.kind is p.KEYWORD_ONLY for p in parameters)


def parse_json_reply(value: Any) -> Any:
    """A string reply that is Atlas's JSON ``{"content", "tool_calls"}`` form, as a dict.

    Atlas agents that want tools run return that JSON as text; anything else (plain text,
    JSON without ``tool_calls``) is left as it is, so a JSON answer stays an answer.
    """
    if not isinstance(value, str) or not value.lstrip().startswith("{"):
        return value
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return value
    calls = parsed.get("tool_calls") if isinstance(parsed, dict) else None
    if isinstance(calls, list) and calls and set(parsed) <= {"content", "tool_calls", "usage"}:
        return {**parsed, "content": parsed.get("content") or ""}
    return value


def _digest(metadata: dict[str, Any], max_chars: int) -> str:
    text = json.dumps(metadata, default=str, sort_keys=True)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


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
    reasoning = "".join(part.reasoning for part in parts if part.reasoning)
    return AgentResponse(
        content="".join(part.content for part in parts),
        tool_calls=[call for part in parts for call in part.tool_calls],
        usage=usage,
        deliverable=delivered[-1] if delivered else None,
        artifacts={key: value for part in parts for key, value in part.artifacts.items()},
        reasoning=reasoning or None,
    )


class PythonAgent:
    """Call a Python callable as the student's agent, whatever kind it is.

    Sync and async functions, sync and async generators (their chunks are concatenated) and
    objects with a sync or async ``__call__`` all work. A callable with Atlas's signature
    ``(prompt, metadata)`` (see ``_takes_prompt_and_metadata``) gets the prompt text and a
    metadata dict carrying Atlas's ``task_payload``, ``step_payload`` and, when the python
    adapter has an ``llm`` block, ``llm_config``; any other gets the structured
    ``AgentRequest``. A string reply in Atlas's JSON ``{"content", "tool_calls"}`` form is read
    as tool calls. ``acall_tool`` calls the agent back with Atlas's ``{"tool": {"name",
    "arguments"}}`` for declared tools without an implementation. Sync code runs in worker
    threads so a blocking agent does not stall parallel steps.
    """

    def __init__(
        self,
        function: Callable[..., Any],
        *,
        name: str | None = None,
        allow_generator: bool = True,
        llm_config: dict[str, Any] | None = None,
        digest_chars: int | None = None,
    ) -> None:
        if not callable(function):
            raise TypeError(f"{type(function).__name__} is not callable")
        self.function = function
        self.name = name or getattr(function, "__name__", type(function).__name__)
        self.allow_generator = allow_generator
        self.llm_config = llm_config
        self.digest_chars = digest_chars
        self._atlas_signature = _takes_prompt_and_metadata(function)
        self._metadata_keyword = _metadata_keyword_only(function)

    def atlas_metadata(self, request: AgentRequest) -> dict[str, Any]:
        """The metadata dict an Atlas-style agent reads, built from the request.

        ``task_payload`` is the task text; ``step_payload`` is the step being run (``None``
        while planning and synthesizing) with its attempt, guidance and prior results.
        """
        step_payload: dict[str, Any] | None = None
        if request.step is not None:
            step_payload = {
                **request.step,
                "step_id": request.step.get("id"),
                "attempt": request.attempt,
                "guidance": list(request.guidance),
                "prior_results": dict(request.prior_results),
            }
        metadata: dict[str, Any] = {
            **request.metadata,
            "mode": request.mode,
            "system_prompt": request.system_prompt,  # persona prompt and memories
            "step": request.step,
            "attempt": request.attempt,
            "tools": request.tools,
            "tool_rounds": [entry.model_dump() for entry in request.tool_rounds],
            "task_payload": request.task,
            "step_payload": step_payload,
        }
        if self.llm_config is not None:
            metadata["llm_config"] = dict(self.llm_config)
        if self.digest_chars is not None:
            metadata["metadata_digest"] = _digest(request.metadata, self.digest_chars)
        return metadata

    async def _call(self, prompt: str, metadata: dict[str, Any]) -> Any:
        if self._metadata_keyword:
            bound = functools.partial(self.function, metadata=metadata)
            return await call_maybe_async(bound, prompt)
        return await call_maybe_async(self.function, prompt, metadata)

    @property
    def runs_own_tools(self) -> bool:
        """Whether declared tools without an implementation go back to this agent (Atlas's
        ``(prompt, metadata)`` agents only)."""
        return self._atlas_signature

    async def acall_tool(
        self, name: str, arguments: dict[str, Any], request: AgentRequest | None = None
    ) -> Any:
        """Run a declared tool the agent implements itself, as Atlas does.

        The agent is called with the JSON of ``{"tool": {"name", "arguments"}}`` as prompt and
        the same ``tool`` key in its metadata; what it returns is the tool's result.

        Raises:
            AgentError: the agent takes an ``AgentRequest``, not Atlas's ``(prompt, metadata)``.
        """
        if not self._atlas_signature:
            raise AgentError(
                f"agent '{self.name}' takes an AgentRequest and cannot run tool '{name}'; "
                "set `implementation: module:function` on the tool"
            )
        payload = {"tool": {"name": name, "arguments": arguments}}
        base = self.atlas_metadata(request) if request is not None else {}
        result = await self._call(json.dumps(payload), {**base, **payload})
        while inspect.isawaitable(result):
            result = await result
        return result

    async def ainvoke(self, request: AgentRequest) -> AgentResponse:
        """Run the callable and normalise its answer."""
        if self._atlas_signature:
            result = await self._call(request.prompt, self.atlas_metadata(request))
        else:
            result = await call_maybe_async(self.function, request)
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
        return coerce_response(parse_json_reply(result))
