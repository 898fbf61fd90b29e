"""Bring-your-own-agent adapters behind one protocol.

``as_agent`` accepts what a user already has: an object with ``ainvoke(request)``, a chat
model, or a plain function. ``agent_from_config`` builds the adapter named by ``agent.type``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable

from atlas_graph.agents.base import Agent, AgentError, AgentRequest, AgentResponse, coerce_response
from atlas_graph.agents.chat import ChatModelAgent
from atlas_graph.agents.python import PythonAgent

if TYPE_CHECKING:
    from atlas_graph.config import AgentConfig, StudentConfig

__all__ = [
    "Agent",
    "AgentError",
    "AgentRequest",
    "AgentResponse",
    "ChatModelAgent",
    "PythonAgent",
    "agent_from_config",
    "as_agent",
    "coerce_response",
]


def as_agent(value: Any, *, tool_choice: str = "auto") -> Agent:
    """Wrap a user's object in the agent protocol.

    Raises:
        TypeError: the value is neither an agent, a chat model nor a callable.
    """
    if isinstance(value, BaseChatModel):
        return ChatModelAgent(value, tool_choice=tool_choice)
    if isinstance(value, Runnable):
        raise TypeError(
            f"{type(value).__name__} is a Runnable but not a chat model; wrap it in a function "
            "that takes an AgentRequest and returns its answer"
        )
    if callable(getattr(value, "ainvoke", None)):
        return value  # type: ignore[no-any-return]
    if callable(value):
        return PythonAgent(value)
    raise TypeError(
        f"cannot use {type(value).__name__} as an agent: pass an object with "
        "`async ainvoke(request)`, a chat model, or a function"
    )


def agent_from_config(agent: AgentConfig, student: StudentConfig) -> Agent:
    """Build the adapter that ``agent.type`` names."""
    from atlas_graph.callables import load_object

    if agent.type == "python":
        function = load_object(agent.import_path, agent.attribute, agent.working_directory)
        return as_agent(function, tool_choice=student.tool_choice)
    from atlas_graph.models import chat_model_from_params

    return ChatModelAgent(
        chat_model_from_params(agent.llm, role="student"), tool_choice=student.tool_choice
    )
