"""The one small protocol every bring-your-own-agent adapter speaks."""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from atlas_graph.errors import AgentError

AgentMode = Literal["planning", "execute", "synthesize"]


class ToolResult(BaseModel):
    """What one tool call gave back; ``is_error`` marks a failure reported to the agent."""

    model_config = ConfigDict(extra="forbid")

    tool_call_id: str
    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    content: str
    is_error: bool = False


class ToolRound(BaseModel):
    """One turn of the agent ⇄ tool loop: the agent's reply and the results of its calls."""

    model_config = ConfigDict(extra="forbid")

    content: str = ""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    results: list[ToolResult] = Field(default_factory=list)


class AgentRequest(BaseModel):
    """What the student asks its agent to do.

    ``prompt`` is the whole request as text, for agents that only take a string (the Atlas
    ``(prompt, metadata)`` signature); the structured fields are there for agents that want them.
    ``tool_rounds`` holds this attempt's earlier tool exchanges, oldest first: each round is the
    agent's reply (``content``, ``tool_calls``) and the ``results`` the tools gave back, so an
    agent answering again can continue where its tool calls left off.
    """

    model_config = ConfigDict(extra="forbid")

    mode: AgentMode
    task: str
    prompt: str
    system_prompt: str = ""
    step: dict[str, Any] | None = None
    attempt: int = 1
    guidance: list[str] = Field(default_factory=list)
    prior_results: dict[str, str] = Field(default_factory=dict)
    tools: list[dict[str, Any]] = Field(default_factory=list)
    tool_rounds: list[ToolRound] = Field(default_factory=list)
    max_tokens: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class AgentResponse(BaseModel):
    """What the agent gave back.

    ``tool_calls`` are calls the agent asks the runtime to make (LangChain ``ToolCall`` dicts
    ``{"name", "args", "id"}`` or the OpenAI ``{"id", "function": {"name", "arguments"}}``
    form); an answer with none is final. ``tools_used`` are calls the agent already made and
    ran itself (a LangGraph agent's own tool node), each ``{"id", "name", "args", "output",
    "is_error"}``: they join the attempt's ``tool_calls``, trace and export, since that
    trajectory is training data.
    """

    model_config = ConfigDict(extra="forbid")

    content: str
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    tools_used: list[dict[str, Any]] = Field(default_factory=list)
    usage: dict[str, int] = Field(default_factory=dict)
    deliverable: Any = None
    artifacts: dict[str, Any] = Field(default_factory=dict)
    reasoning: str | None = None
    """The model's reasoning text when its provider returns it (kept in the step's trace)."""


@runtime_checkable
class Agent(Protocol):
    """Anything with ``async ainvoke(request)`` returning an ``AgentResponse``-like value.

    Adapters may return an ``AgentResponse``, a dict with its fields, or a plain string.
    """

    async def ainvoke(self, request: AgentRequest) -> Any:
        """Answer one request."""
        ...


def coerce_response(value: Any) -> AgentResponse:
    """Normalise what an agent returned; a wrong shape is an ``AgentError`` naming the type."""
    if isinstance(value, AgentResponse):
        return value
    if isinstance(value, str):
        return AgentResponse(content=value)
    if isinstance(value, dict):
        known = {key: value[key] for key in AgentResponse.model_fields if key in value}
        if "content" not in known:
            if "output" in value:
                known["content"] = value["output"]
            else:
                raise AgentError(f"agent returned a dict without 'content': keys {sorted(value)}")
        if known.get("content") is None:
            known["content"] = ""
        if not isinstance(known["content"], str):
            known["content"] = str(known["content"])
        known["usage"] = {k: int(v) for k, v in (known.get("usage") or {}).items()}
        known["artifacts"] = known.get("artifacts") or {}
        known["tool_calls"] = known.get("tool_calls") or []
        known["tools_used"] = known.get("tools_used") or []
        return AgentResponse(**known)
    raise AgentError(f"agent returned {type(value).__name__}; expected str, dict or AgentResponse")
