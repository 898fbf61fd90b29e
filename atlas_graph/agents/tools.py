"""Tools declared in config and the Python functions that implement them.

A ``Toolbox`` answers one tool call at a time and never raises for a bad call: an unknown
tool, missing or unexpected arguments, a tool without an implementation or an exception in
the tool all become an error result the agent reads and can recover from.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Iterable
from typing import Any

from langchain_core.tools import BaseTool
from langgraph.errors import GraphBubbleUp

from atlas_graph.agents.base import ToolResult
from atlas_graph.callables import load_object
from atlas_graph.config import ToolDefinition

MAX_RESULT_CHARS = 20_000
"""Tool output beyond this is cut, so one chatty tool cannot flood the agent's context."""


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, default=str)
        except (TypeError, ValueError):
            text = str(value)
    if len(text) > MAX_RESULT_CHARS:
        return text[:MAX_RESULT_CHARS] + f"… [cut at {MAX_RESULT_CHARS} characters]"
    return text


class Toolbox:
    """The tools of one agent: their OpenAI schemas and their implementations, if any.

    Args:
        definitions: Tools from ``agent.tools``.
        implementations: Functions (or LangChain tools) by name, added to (and over) the ones
            definitions name with ``implementation``.

    Raises:
        ImportReferenceError: an ``implementation`` cannot be imported.
    """

    def __init__(
        self,
        definitions: Iterable[ToolDefinition] = (),
        implementations: dict[str, Callable[..., Any]] | None = None,
    ) -> None:
        self.definitions = {tool.name: tool for tool in definitions}
        self.functions: dict[str, Any] = {
            name: load_object(tool.implementation)
            for name, tool in self.definitions.items()
            if tool.implementation
        }
        self.functions.update(implementations or {})

    def __bool__(self) -> bool:
        return bool(self.definitions)

    def schemas(self) -> list[dict[str, Any]]:
        """The OpenAI function-tool form of every tool, as ``bind_tools`` takes them."""
        return [tool.as_openai_tool() for tool in self.definitions.values()]

    def problem(self, name: str, args: dict[str, Any]) -> str | None:
        """Why a call cannot run, or ``None``: checks the tool, its arguments, its code."""
        tool = self.definitions.get(name)
        if tool is None:
            known = ", ".join(sorted(self.definitions)) or "none"
            return f"unknown tool '{name}'; available tools: {known}"
        parameters = tool.parameters
        missing = [key for key in parameters.required if key not in args]
        if missing:
            return f"tool '{name}' is missing required argument(s): {', '.join(missing)}"
        if not parameters.additionalProperties:
            unexpected = sorted(key for key in args if key not in parameters.properties)
            if unexpected:
                return f"tool '{name}' got unexpected argument(s): {', '.join(unexpected)}"
        if name not in self.functions:
            return (
                f"tool '{name}' has no implementation here; answer without it "
                "(set `implementation: module:function` on the tool to run it)"
            )
        return None

    async def call(self, call: dict[str, Any]) -> ToolResult:
        """Run one normalised call (``{"id", "name", "args"}``); failures become error results."""
        name, args = call["name"], call["args"]
        problem = self.problem(name, args)
        if problem is None:
            try:
                output = await self._invoke(self.functions[name], args)
            except GraphBubbleUp:  # an interrupt() pauses the session
                raise
            except Exception as error:
                problem = f"tool '{name}' failed: {type(error).__name__}: {error}"
            else:
                return ToolResult(
                    tool_call_id=call["id"], name=name, args=args, content=_as_text(output)
                )
        return ToolResult(
            tool_call_id=call["id"], name=name, args=args, content=problem, is_error=True
        )

    @staticmethod
    async def _invoke(function: Callable[..., Any], args: dict[str, Any]) -> Any:
        """LangChain tools via ``ainvoke``; async functions on the loop, sync ones in a thread."""
        if isinstance(function, BaseTool):
            return await function.ainvoke(args)
        if inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
            getattr(function, "__call__", None)  # noqa: B004
        ):
            result = await function(**args)
        else:
            result = await asyncio.to_thread(function, **args)
        while inspect.isawaitable(result):
            result = await result
        return result
