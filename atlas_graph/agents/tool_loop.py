"""The bounded agent ⇄ tool loop of one step attempt.

The agent answers; while its answer asks for tools, the toolbox runs them and the agent is
asked again with the results (``AgentRequest.tool_rounds``, and as text in ``prompt`` for
agents that only read the prompt). After ``max_rounds`` tool rounds an agent that still
calls tools fails the attempt. Everything that happened is kept in a ``ToolLoop`` as it
happens, so a timeout or an agent error part-way still leaves the calls and token usage.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from atlas_graph.agents.base import (
    Agent,
    AgentRequest,
    AgentResponse,
    ToolResult,
    ToolRound,
    coerce_response,
)
from atlas_graph.agents.messages import normalize_tool_call
from atlas_graph.agents.tools import SelfRun, Toolbox
from atlas_graph.prompts import format_tool_calls
from atlas_graph.state import ToolCallRecord
from atlas_graph.usage import Usage, reply_usage, sum_usage

ToolCallHook = Callable[[int, dict[str, Any]], None]
ToolResultHook = Callable[[int, ToolResult], None]


async def ask(agent: Agent, request: AgentRequest) -> AgentResponse:
    """One agent call, normalised; an agent that hands back an awaitable is awaited."""
    result: Any = agent.ainvoke(request)
    while inspect.isawaitable(result):
        result = await result
    return coerce_response(result)


def _self_run(agent: Agent, request: AgentRequest) -> SelfRun | None:
    """The agent's own tool runner (``acall_tool``), bound to this request, if it has one.

    Only agents that say ``runs_own_tools`` (Atlas-style python agents) get the calls; for
    the rest a tool without an implementation stays an error result the agent reads.
    """
    method = getattr(agent, "acall_tool", None)
    if not callable(method) or not getattr(agent, "runs_own_tools", False):
        return None

    async def run(name: str, arguments: dict[str, Any]) -> Any:
        return await method(name, arguments, request)

    return run


def results_text(rounds: list[ToolRound]) -> str:
    """The tool rounds as text, for agents that read only the prompt."""
    lines = ["Tool results so far (answer the step when you have what you need):"]
    for number, entry in enumerate(rounds, 1):
        for result in entry.results:
            status = "error" if result.is_error else "result"
            arguments = json.dumps(result.args, default=str)
            lines.append(f"[round {number}] {result.name}({arguments}) {status}: {result.content}")
    return "\n".join(lines)


@dataclass
class ToolLoop:
    """The record of one attempt's loop: rounds, final response, usage, failure if any."""

    toolbox: Toolbox
    max_rounds: int
    on_call: ToolCallHook | None = None
    on_result: ToolResultHook | None = None
    state: Mapping[str, Any] | None = None
    """What tools with ``InjectedState``/``ToolRuntime`` arguments see (the step task)."""
    rounds: list[ToolRound] = field(default_factory=list)
    used: list[tuple[int, ToolResult]] = field(default_factory=list)
    """Calls the agent ran itself (``AgentResponse.tools_used``), by round."""
    response: AgentResponse | None = None
    error: str | None = None
    usage: Usage = field(default_factory=lambda: sum_usage([]))

    def _count(self, response: AgentResponse) -> None:
        self.usage = sum_usage([self.usage, reply_usage(response.usage)])

    async def run(self, agent: Agent, request: AgentRequest) -> AgentResponse:
        """Ask the agent, running its tool calls until it answers or the round limit hits.

        An agent with no tools configured is asked once; tool calls it returns anyway are
        kept in the trace but not run.
        """
        base_prompt = request.prompt
        while True:
            response = await ask(agent, request)
            self._count(response)
            self.response = response
            self._keep_used(response)
            if not response.tool_calls or not self.toolbox:
                return response
            if len(self.rounds) >= self.max_rounds:
                self.error = (
                    f"tool loop stopped: the agent still called tools after {self.max_rounds} "
                    "round(s) (agent.max_tool_rounds)"
                )
                return response
            self.rounds.append(await self._round(response, _self_run(agent, request)))
            request = request.model_copy(
                update={
                    "tool_rounds": list(self.rounds),
                    "prompt": f"{base_prompt}\n\n{results_text(self.rounds)}",
                }
            )

    def _keep_used(self, response: AgentResponse) -> None:
        """Record (and announce) the tool calls the agent already ran inside itself."""
        number = len(self.rounds) + 1
        for index, entry in enumerate(response.tools_used):
            call_id = str(entry.get("id") or f"used_{number}_{index}")
            name, args = str(entry.get("name", "?")), dict(entry.get("args") or {})
            call: dict[str, Any] = {"id": call_id, "name": name, "args": args}
            result = ToolResult(
                tool_call_id=call_id, name=name, args=args,
                content=str(entry.get("output", "")), is_error=bool(entry.get("is_error")),
            )  # fmt: skip
            if self.on_call:
                self.on_call(number, call)
            if self.on_result:
                self.on_result(number, result)
            self.used.append((number, result))

    async def _round(self, response: AgentResponse, self_run: SelfRun | None) -> ToolRound:
        """Run one round's calls concurrently; hooks and results keep the calls' order."""
        number = len(self.rounds) + 1
        calls: list[dict[str, Any]] = []
        bad: dict[int, ToolResult] = {}
        for index, raw in enumerate(response.tool_calls):
            fallback_id = f"call_{number}_{index}"
            try:
                call = normalize_tool_call(raw, fallback_id=fallback_id)
            except ValueError as error:
                name = str(raw.get("name") or (raw.get("function") or {}).get("name") or "?")
                call = {"id": str(raw.get("id") or fallback_id), "name": name, "args": {}}
                bad[index] = ToolResult(
                    tool_call_id=call["id"], name=name, content=f"bad tool call: {error}",
                    is_error=True,
                )  # fmt: skip
            else:
                if self.on_call:
                    self.on_call(number, call)
            calls.append(call)
        ran = iter(
            await asyncio.gather(*(
                self.toolbox.call(call, self.state, self_run)
                for index, call in enumerate(calls) if index not in bad
            ))
        )  # fmt: skip
        results = [bad[index] if index in bad else next(ran) for index in range(len(calls))]
        if self.on_result:
            for result in results:
                self.on_result(number, result)
        return ToolRound(content=response.content, tool_calls=calls, results=results)

    def records(self) -> list[ToolCallRecord]:
        """Every call with its result, JSON-shaped for the attempt record."""
        run = [(number, result) for number, entry in enumerate(self.rounds, 1)
               for result in entry.results]  # fmt: skip
        # the agent's own calls of a round came before the calls it asked the loop to run
        ordered = sorted(self.used + run, key=lambda pair: pair[0])
        return [
            {
                "round": number,
                "id": result.tool_call_id,
                "name": result.name,
                "args": result.args,
                "output": result.content,
                "is_error": result.is_error,
            }
            for number, result in ordered
        ]

    def trace(self) -> str:
        """The attempt as text: each tool call and result, then the final answer."""
        records = self.records()
        lines: list[str] = [format_tool_calls(records)] if records else []
        response = self.response
        if response is not None and response.tool_calls and (self.error or not self.toolbox):
            lines.extend(
                f"tool call (not run): {json.dumps(call, default=str)}"
                for call in response.tool_calls
            )
        if response is not None and response.content:
            lines.append(response.content)
        if self.error:
            lines.append(self.error)
        return "\n".join(lines)
