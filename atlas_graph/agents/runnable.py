"""Adapter for a LangChain ``Runnable`` or a compiled LangGraph graph as the agent.

For example an agent built with ``langchain.agents.create_agent``: it gets the request as
messages and its last AI message is the answer. Tools the graph runs itself are reported as
``tools_used`` (each AI tool call with its tool message), so they reach the attempt's
``tool_calls``, trace and export; tool calls left on the last AI message go to the step's tool
loop like any agent's. Usage counts every AI message as one model call.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import Runnable

from atlas_graph.agents.base import AgentError, AgentRequest, AgentResponse
from atlas_graph.agents.messages import reasoning_of, request_messages, text_of
from atlas_graph.models import usage_of
from atlas_graph.usage import sum_usage, token_counts


def _takes_state(runnable: Runnable[Any, Any]) -> bool:
    """Compiled graphs take a state dict with ``messages``; other runnables a message list."""
    from langgraph.pregel import Pregel  # on first use, so importing the adapters stays light

    return isinstance(runnable, Pregel)


class RunnableAgent:
    """Invoke a runnable with the request's messages and read back the last AI message.

    Args:
        runnable: Any ``Runnable`` (a chat model chain, a compiled graph).
        input_key: Pass ``{input_key: messages}`` instead of the message list. Default:
            ``"messages"`` for compiled graphs, the bare list for other runnables.
    """

    def __init__(
        self,
        runnable: Runnable[Any, Any],
        *,
        input_key: str | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(runnable, Runnable):
            raise TypeError(f"{type(runnable).__name__} is not a LangChain Runnable")
        self.runnable = runnable
        self.input_key = input_key or ("messages" if _takes_state(runnable) else None)
        self.name = name or getattr(runnable, "name", None) or type(runnable).__name__

    async def ainvoke(self, request: AgentRequest) -> AgentResponse:
        """Run the runnable once; usage adds up every new AI message's ``usage_metadata``."""
        messages = request_messages(request)
        payload: Any = {self.input_key: messages} if self.input_key else messages
        output = await self.runnable.ainvoke(payload)
        produced = _output_messages(output, self.input_key)
        # A graph's state hands back the whole conversation: only what follows the input is new.
        new = (
            produced[len(messages) :]
            if self.input_key and len(produced) > len(messages)
            else produced
        )
        replies = [message for message in new if isinstance(message, AIMessage)]
        if not replies:
            if isinstance(output, str):
                return AgentResponse(content=output)
            raise AgentError(
                f"runnable '{self.name}' returned {type(output).__name__} without an AI message"
            )
        usage = sum_usage([usage_of(reply) for reply in replies])
        last = replies[-1]
        return AgentResponse(
            content=text_of(last),
            tool_calls=[dict(call) for call in last.tool_calls],
            tools_used=_tools_used(new),
            usage={**token_counts(usage), "calls": len(replies)},
            # an agent graph reasons across its turns: keep every turn's reasoning, in order
            reasoning="\n".join(filter(None, map(reasoning_of, replies))) or None,
        )


def _tools_used(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    """The tool calls the runnable ran itself: each AI tool call with its tool message."""
    answers = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
    used: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, AIMessage):
            continue
        for call in message.tool_calls:
            answer = answers.get(call.get("id") or "")
            if answer is None:
                continue  # not run inside the runnable: the step's tool loop runs it
            used.append({
                "id": answer.tool_call_id, "name": call["name"], "args": dict(call["args"]),
                "output": text_of(answer), "is_error": answer.status == "error",
            })  # fmt: skip
    return used


def _output_messages(output: Any, input_key: str | None) -> list[BaseMessage]:
    if isinstance(output, BaseMessage):
        return [output]
    if isinstance(output, dict):
        value = output.get(input_key or "messages", output.get("messages"))
        return [m for m in value if isinstance(m, BaseMessage)] if isinstance(value, list) else []
    if isinstance(output, list):
        return [m for m in output if isinstance(m, BaseMessage)]
    return []
