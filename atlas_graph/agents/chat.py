"""Adapter for "the student is a chat model": any LangChain ``BaseChatModel``.

This is the ``openai`` adapter of the config (Atlas also calls it ``litellm``): the model is a
``ChatOpenAI`` pointed at any OpenAI-compatible endpoint, but any chat model works in code.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.language_models import BaseChatModel

from atlas_graph.agents.base import AgentRequest, AgentResponse
from atlas_graph.agents.messages import reasoning_of, request_messages, text_of
from atlas_graph.models import usage_of
from atlas_graph.usage import token_counts


class ChatModelAgent:
    """Send each request to a chat model: system prompt, user message, then tool rounds.

    Tools from config are offered with ``bind_tools`` when executing a step; a planning
    request lists them in the system prompt instead, so a plan can name them.
    ``tool_choice="required"`` forces a tool call only before the first tool round, so the
    model can answer once it has results.
    ``response_format`` (an OpenAI ``response_format`` such as a JSON schema) applies to
    execute and synthesize requests; plans keep their own format.
    ``deadline`` bounds a whole call in seconds (client timeouts bound each read only, so a
    server that drips a byte a second would otherwise hold the session for ever).
    """

    def __init__(
        self,
        model: BaseChatModel,
        *,
        tool_choice: str = "auto",
        response_format: dict[str, Any] | None = None,
        deadline: float | None = None,
    ) -> None:
        self.model = model
        self.tool_choice = tool_choice
        self.response_format = response_format
        self.deadline = deadline
        self.name = getattr(model, "model_name", None) or type(model).__name__

    def _runnable(self, request: AgentRequest) -> Any:
        runnable: Any = self.model
        if request.tools and request.mode == "execute":
            choice = self.tool_choice if not request.tool_rounds else "auto"
            runnable = self.model.bind_tools(request.tools, tool_choice=choice)
        # The mode's budget applies, but never above a cap set on the model itself.
        budgets = [b for b in (request.max_tokens, getattr(self.model, "max_tokens", None)) if b]
        bound: dict[str, Any] = {}
        if budgets:
            bound["max_tokens"] = min(budgets)
        if self.response_format and request.mode != "planning":
            bound["response_format"] = self.response_format
        return runnable.bind(**bound) if bound else runnable

    async def ainvoke(self, request: AgentRequest) -> AgentResponse:
        """Ask the model; cap the reply at the request's token budget."""
        if request.tools and request.mode == "planning":
            # A plan names tools for its steps; it does not call them. Listing them in the
            # system prompt keeps a `tool_choice: required` model from calling one here.
            listing = "\n".join(
                f"- {tool['function']['name']}: {tool['function'].get('description', '')}"
                for tool in request.tools
                if isinstance(tool.get("function"), dict)
            )
            system = f"{request.system_prompt}\n\nTools the steps can use:\n{listing}".strip()
            request = request.model_copy(update={"system_prompt": system})
        async with asyncio.timeout(self.deadline):
            reply = await self._runnable(request).ainvoke(request_messages(request))
        return AgentResponse(
            content=text_of(reply),
            tool_calls=[dict(call) for call in getattr(reply, "tool_calls", []) or []],
            usage=token_counts(usage_of(reply)),
            reasoning=reasoning_of(reply),
        )
