"""Bring-your-own-agent adapters behind one protocol.

``as_agent`` accepts what a user already has: an object with ``ainvoke(request)``, a chat
model, any other LangChain Runnable or compiled graph, or a plain function.
``agent_from_config`` builds the adapter that ``agent.type`` names: ``python``, ``http_api``,
``openai`` (alias ``litellm``) or ``runnable``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable

from atlas_graph.agents.base import (
    Agent,
    AgentError,
    AgentRequest,
    AgentResponse,
    ToolResult,
    ToolRound,
    coerce_response,
)
from atlas_graph.agents.chat import ChatModelAgent
from atlas_graph.agents.http import HttpAgent
from atlas_graph.agents.python import PythonAgent
from atlas_graph.agents.runnable import RunnableAgent

if TYPE_CHECKING:
    from atlas_graph.config import AgentConfig, StudentConfig

AgentLike: TypeAlias = Agent | BaseChatModel | Runnable[Any, Any] | Callable[..., object]
"""What ``agent=`` takes: an object with ``async ainvoke(request)``, a chat model, a LangChain
Runnable or compiled graph, or a function (sync or async, ``(request)`` or Atlas's
``(prompt, metadata)``) returning a string, a dict or an ``AgentResponse``."""

__all__ = [
    "Agent",
    "AgentError",
    "AgentLike",
    "AgentRequest",
    "AgentResponse",
    "ChatModelAgent",
    "HttpAgent",
    "PythonAgent",
    "RunnableAgent",
    "ToolResult",
    "ToolRound",
    "agent_from_config",
    "as_agent",
    "coerce_response",
]


def as_agent(value: AgentLike, *, tool_choice: str = "auto") -> Agent:
    """Wrap a user's object in the agent protocol.

    Raises:
        TypeError: the value is neither an agent, a Runnable nor a callable.
    """
    if isinstance(value, BaseChatModel):
        return ChatModelAgent(value, tool_choice=tool_choice)
    if isinstance(value, Runnable):
        return RunnableAgent(value)
    if callable(getattr(value, "ainvoke", None)):
        return cast(Agent, value)
    if callable(value):
        return PythonAgent(value)
    raise TypeError(
        f"cannot use {type(value).__name__} as an agent: pass an object with "
        "`async ainvoke(request)`, a chat model, or a function"
    )


def agent_from_config(agent: AgentConfig, student: StudentConfig) -> Agent:
    """Build the adapter that ``agent.type`` names.

    Raises:
        ImportReferenceError: a python or runnable agent's import path does not load.
        ModelConfigError: an openai agent's model cannot be built (e.g. its key is unset).
        TypeError: a runnable agent's import path names something that is not a Runnable.
    """
    from atlas_graph.callables import load_object

    if agent.type == "python":
        function = load_object(agent.import_path, agent.attribute, agent.working_directory)
        if not callable(function):
            raise TypeError(
                f"agent {agent.import_path} is a {type(function).__name__}, not callable"
            )
        digest = agent.metadata_digest
        return PythonAgent(
            function,
            name=agent.name,
            allow_generator=agent.allow_generator,
            # the key's variable name travels, never the key itself
            llm_config=agent.llm.model_dump(mode="json") if agent.llm else None,
            digest_chars=digest.max_chars if digest is not None and digest.enabled else None,
        )
    if agent.type == "runnable":
        target = load_object(agent.import_path, agent.attribute, agent.working_directory)
        if not isinstance(target, Runnable) and callable(target):
            target = target()  # a factory that builds the graph
        if not isinstance(target, Runnable):
            raise TypeError(
                f"runnable agent {agent.import_path} is a {type(target).__name__}, not a "
                "LangChain Runnable or compiled graph (or a function returning one)"
            )
        return RunnableAgent(target, input_key=agent.input_key, name=agent.name)
    if agent.type == "http_api":
        transport = agent.transport
        return HttpAgent(
            transport.base_url,
            headers=transport.headers,
            headers_env=transport.headers_env,
            timeout_seconds=transport.timeout_seconds,
            attempts=transport.retry.attempts,
            backoff_seconds=transport.retry.backoff_seconds,
            payload_template=agent.payload_template,
            result_path=agent.result_path,
            name=agent.name,
        )
    from atlas_graph.models import chat_model_from_params

    return ChatModelAgent(
        chat_model_from_params(agent.llm, role="student"),
        tool_choice=student.tool_choice,
        response_format=agent.response_format,
        deadline=agent.llm.timeout_seconds * (agent.llm.retries + 1),
    )
