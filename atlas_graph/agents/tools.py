"""Tools declared in config, LangChain tools, and the Python functions that implement them.

A ``Toolbox`` answers tool calls and never raises for a bad call: an unknown tool, missing or
unexpected arguments, a tool without an implementation or an exception in the tool all become
an error result the agent reads and can recover from. LangChain tools (``@tool``, MCP tools
from ``langchain-mcp-adapters``, plain functions given as ``tools=[...]``) keep their own
argument schema and run through LangGraph's ``ToolNode`` inside a graph, so ``InjectedState``
(the step task), ``InjectedToolCallId``, ``InjectedStore`` and ``ToolRuntime`` arguments are
filled in as in any LangGraph agent. LangGraph's ``interrupt()`` in a tool pauses the session.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeAlias

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.tools import tool as as_langchain_tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.config import get_config
from langgraph.errors import GraphBubbleUp
from langgraph.prebuilt import ToolNode

from atlas_graph.agents.base import ToolResult
from atlas_graph.callables import load_object
from atlas_graph.config import ToolDefinition

ToolLike: TypeAlias = BaseTool | Callable[..., object]
"""What ``tools=`` takes: a LangChain ``BaseTool`` (MCP tools too) or a plain typed function
with a docstring."""
SelfRun = Callable[[str, dict[str, Any]], Awaitable[Any]]
"""How an agent runs a tool it implements itself (Atlas's callback with ``{"tool": ...}``)."""

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
        definitions: Tools from ``agent.tools``. One whose ``implementation`` is a LangChain
            ``BaseTool`` and that declares no ``parameters`` is offered with the tool's own
            argument schema.
        implementations: Functions (or LangChain tools) by name, added to (and over) the ones
            definitions name with ``implementation``.
        tools: LangChain ``BaseTool``s (MCP tools included) or plain functions, offered with
            their own schemas in addition to ``definitions``.

    Raises:
        ImportReferenceError: an ``implementation`` cannot be imported.
    """

    def __init__(
        self,
        definitions: Iterable[ToolDefinition] = (),
        implementations: dict[str, Callable[..., Any]] | None = None,
        tools: Iterable[BaseTool | Callable[..., Any]] = (),
    ) -> None:
        self.definitions = {tool.name: tool for tool in definitions}
        self.functions: dict[str, Any] = {
            name: load_object(tool.implementation)
            for name, tool in self.definitions.items()
            if tool.implementation
        }
        self.functions.update(implementations or {})
        for item in tools:
            extra = item if isinstance(item, BaseTool) else as_langchain_tool(item)
            self.functions[extra.name] = extra
        self.langchain_tools: dict[str, BaseTool] = {
            name: function for name, function in self.functions.items()
            if isinstance(function, BaseTool)
        }  # fmt: skip
        self._node = (
            ToolNode(list({id(t): t for t in self.langchain_tools.values()}.values()),
                     handle_tool_errors=True)
            if self.langchain_tools
            else None
        )  # fmt: skip

    def __bool__(self) -> bool:
        return bool(self.definitions or self.langchain_tools)

    def names(self) -> list[str]:
        """Every tool the agent is offered."""
        return list(dict.fromkeys([*self.definitions, *self.langchain_tools]))

    def _own_schema(self, name: str) -> bool:
        """The tool's schema comes from its LangChain tool, not from a hand-written one."""
        definition = self.definitions.get(name)
        return name in self.langchain_tools and (
            definition is None or not definition.parameters.properties
        )

    def schemas(self) -> list[dict[str, Any]]:
        """The OpenAI function-tool form of every tool, as ``bind_tools`` takes them."""
        schemas = []
        for name in self.names():
            definition = self.definitions.get(name)
            if not self._own_schema(name):
                schemas.append(definition.as_openai_tool() if definition else {})
                continue
            schema = convert_to_openai_tool(self.langchain_tools[name])
            schema["function"]["name"] = name
            if definition is not None:
                schema["function"]["description"] = definition.description
            schemas.append(schema)
        return schemas

    def problem(self, name: str, args: dict[str, Any], *, self_run: bool = False) -> str | None:
        """Why a call cannot run, or ``None``: checks the tool, its arguments, its code.

        With ``self_run`` a tool without an implementation is fine: the agent runs it.
        """
        if self._own_schema(name):
            return None  # the LangChain tool validates its own arguments
        tool = self.definitions.get(name)
        if tool is None:
            known = ", ".join(sorted(self.names())) or "none"
            return f"unknown tool '{name}'; available tools: {known}"
        parameters = tool.parameters
        missing = [key for key in parameters.required if key not in args]
        if missing:
            return f"tool '{name}' is missing required argument(s): {', '.join(missing)}"
        if not parameters.additionalProperties:
            unexpected = sorted(key for key in args if key not in parameters.properties)
            if unexpected:
                return f"tool '{name}' got unexpected argument(s): {', '.join(unexpected)}"
        if name not in self.functions and not self_run:
            return (
                f"tool '{name}' has no implementation here; answer without it "
                "(set `implementation: module:function` on the tool to run it)"
            )
        return None

    async def call(
        self,
        call: dict[str, Any],
        state: Mapping[str, Any] | None = None,
        self_run: SelfRun | None = None,
    ) -> ToolResult:
        """Run one normalised call (``{"id", "name", "args"}``); failures become error results.

        Args:
            call: The call.
            state: What ``InjectedState``/``ToolRuntime.state`` arguments receive (the step
                task of the attempt).
            self_run: Where a declared tool without an implementation goes (an Atlas agent
                that runs its own tools); without it such a call is an error result.
        """
        name, args = call["name"], call["args"]
        problem = self.problem(name, args, self_run=self_run is not None)
        if problem is None and name in self.langchain_tools and _in_graph():
            return await self._run_tool_node(call, state)
        if problem is None:
            try:
                if name in self.functions:
                    output = await self._invoke(self.functions[name], args)
                else:
                    assert self_run is not None  # problem() said the agent runs it
                    output = await self_run(name, args)
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

    async def _run_tool_node(
        self, call: dict[str, Any], state: Mapping[str, Any] | None
    ) -> ToolResult:
        """One call through ``ToolNode``: argument checks, injection, errors as messages."""
        assert self._node is not None
        tool = self.langchain_tools[call["name"]]
        tool_call = {"type": "tool_call", "id": call["id"], "name": tool.name,
                     "args": call["args"]}  # fmt: skip
        output = await self._node.ainvoke(
            {
                "__type": "tool_call_with_context",
                "tool_call": tool_call,
                "state": {**(state or {}), "messages": []},
            }
        )
        messages = output.get("messages", []) if isinstance(output, dict) else []
        message = next((m for m in messages if isinstance(m, ToolMessage)), None)
        content: Any = message.content if message is not None else output
        return ToolResult(
            tool_call_id=call["id"], name=call["name"], args=call["args"],
            content=_as_text(content),
            is_error=message is not None and message.status == "error",
        )  # fmt: skip


def _in_graph() -> bool:
    """Inside a graph node, where ``ToolNode`` finds the runtime it injects."""
    try:
        get_config()
    except RuntimeError:
        return False
    return True
