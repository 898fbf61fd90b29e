"""Adapter for "the student is a chat model": any LangChain ``BaseChatModel``."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from atlas_graph.agents.base import AgentRequest, AgentResponse
from atlas_graph.models import usage_of


class ChatModelAgent:
    """Send each request to a chat model as a system prompt plus one user message.

    Tools from config are offered with ``bind_tools`` under ``student.tool_choice``; the tool
    calls the model makes are returned, and the step trace records them.
    """

    def __init__(self, model: BaseChatModel, *, tool_choice: str = "auto") -> None:
        self.model = model
        self.tool_choice = tool_choice
        self.name = getattr(model, "model_name", None) or type(model).__name__

    async def ainvoke(self, request: AgentRequest) -> AgentResponse:
        """Ask the model; cap the reply at the request's token budget."""
        runnable: Any = self.model
        if request.tools:
            runnable = self.model.bind_tools(request.tools, tool_choice=self.tool_choice)
        # The mode's budget applies, but never above a cap set on the model itself.
        budgets = [b for b in (request.max_tokens, getattr(self.model, "max_tokens", None)) if b]
        if budgets:
            runnable = runnable.bind(max_tokens=min(budgets))
        messages = [HumanMessage(request.prompt)]
        if request.system_prompt:
            messages.insert(0, SystemMessage(request.system_prompt))
        reply = await runnable.ainvoke(messages)
        content = reply.content if isinstance(reply.content, str) else str(reply.content)
        usage = usage_of(reply)
        usage.pop("calls")
        return AgentResponse(
            content=content,
            tool_calls=[dict(call) for call in getattr(reply, "tool_calls", []) or []],
            usage=usage,
        )
