"""The agent request as LangChain messages, shared by the chat-model and runnable adapters."""

from __future__ import annotations

import json
import uuid
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from atlas_graph.agents.base import AgentRequest


def normalize_tool_call(call: dict[str, Any], *, fallback_id: str | None = None) -> dict[str, Any]:
    """One tool call as ``{"id", "name", "args"}`` from the LangChain or the OpenAI form.

    Raises:
        ValueError: the call names no tool, or its arguments are not a JSON object.
    """
    function = call.get("function") if isinstance(call.get("function"), dict) else None
    name = (function or call).get("name")
    args: Any = (function or {}).get("arguments") if function else call.get("args")
    if args is None and not function:
        args = call.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError as error:
            raise ValueError(f"tool call arguments are not JSON: {error.msg}") from None
    if not isinstance(name, str) or not name:
        raise ValueError(f"tool call without a tool name (keys {sorted(call)})")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ValueError(
            f"arguments of tool call '{name}' are {type(args).__name__}, not an object"
        )
    call_id = call.get("id") or fallback_id or f"call_{uuid.uuid4().hex[:12]}"
    return {"id": str(call_id), "name": name, "args": args}


def request_messages(request: AgentRequest) -> list[BaseMessage]:
    """System prompt, the request's prompt, then each tool round as AI and tool messages."""
    messages: list[BaseMessage] = []
    if request.system_prompt:
        messages.append(SystemMessage(request.system_prompt))
    messages.append(HumanMessage(request.prompt))
    for round_ in request.tool_rounds:
        calls = [normalize_tool_call(call) for call in round_.tool_calls]
        messages.append(
            AIMessage(
                content=round_.content,
                tool_calls=[{**call, "type": "tool_call"} for call in calls],
            )
        )
        for result in round_.results:
            messages.append(
                ToolMessage(
                    content=result.content,
                    tool_call_id=result.tool_call_id,
                    name=result.name,
                    status="error" if result.is_error else "success",
                )
            )
    return messages


def text_of(message: BaseMessage) -> str:
    """A message's text, joining the text parts of multi-part content."""
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
    return "".join(parts)


def reasoning_of(message: BaseMessage) -> str | None:
    """The model's reasoning text, when the provider returned it; ``None`` otherwise.

    Reasoning arrives as ``additional_kwargs["reasoning_content"]`` (DeepSeek, vLLM,
    llama.cpp servers), ``additional_kwargs["reasoning"]`` with a ``summary`` (OpenAI), or as
    ``reasoning``/``thinking`` content blocks (OpenAI Responses, Anthropic).
    """
    parts: list[str] = []
    extra = message.additional_kwargs or {}
    if isinstance(extra.get("reasoning_content"), str):
        parts.append(extra["reasoning_content"])
    reasoning = extra.get("reasoning")
    if isinstance(reasoning, dict):
        parts.extend(
            str(item.get("text", "")) for item in reasoning.get("summary") or []
            if isinstance(item, dict)
        )  # fmt: skip
    if not isinstance(message.content, str):
        for block in message.content:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
                parts.append(block["thinking"])
            elif block.get("type") == "reasoning":
                if isinstance(block.get("reasoning"), str):
                    parts.append(block["reasoning"])
                parts.extend(
                    str(item.get("text", "")) for item in block.get("summary") or []
                    if isinstance(item, dict)
                )  # fmt: skip
    text = "\n".join(part for part in parts if part)
    return text or None
