"""LangChain tools as users have them: a ``@tool`` named in YAML keeps its schema; ``tools=``
takes BaseTools, MCP tools and plain functions; one round's calls run concurrently; injected
arguments are filled in as ``ToolNode`` does."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import teacher_responder
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from atlas_graph.agents import AgentRequest, AgentResponse
from atlas_graph.agents.tools import Toolbox
from atlas_graph.config import parse_config
from atlas_graph.runner import arun
from atlas_graph.testing import ScriptedChatModel

HERE = Path(__file__).parent


def teacher() -> dict[str, Any]:
    return {"teacher": ScriptedChatModel(responder=teacher_responder())}


def calling(*calls: dict[str, Any]) -> Any:
    """An agent that makes ``calls`` in one round, then reports the results."""
    seen: list[AgentRequest] = []

    async def agent(request: AgentRequest) -> AgentResponse:
        seen.append(request)
        if request.tool_rounds:
            results = request.tool_rounds[-1].results
            return AgentResponse(content=" ; ".join(r.content for r in results))
        return AgentResponse(content="", tool_calls=list(calls))

    agent.seen = seen  # type: ignore[attr-defined]
    return agent


def test_a_yaml_tool_pointing_at_a_langchain_tool_offers_its_own_schema() -> None:
    config = parse_config({"agent": {"type": "python", "import_path": "x:y", "tools": [
        {"name": "convert", "description": "Convert money.",
         "implementation": "langchain_tools:convert"},
    ]}})  # fmt: skip
    assert config.agent is not None
    toolbox = Toolbox(config.agent.tools)
    [schema] = toolbox.schemas()
    assert schema["function"]["name"] == "convert"
    assert schema["function"]["description"] == "Convert money."
    parameters = schema["function"]["parameters"]
    assert set(parameters["properties"]) == {"amount", "currency"}
    assert sorted(parameters["required"]) == ["amount", "currency"]
    assert toolbox.problem("convert", {"amount": 3, "currency": "USD"}) is None


async def test_yaml_langchain_tool_runs_in_a_session_with_injected_arguments() -> None:
    agent = calling(
        {"id": "a", "name": "convert", "args": {"amount": 3, "currency": "USD"}},
        {"id": "b", "name": "whoami", "args": {"note": "hi"}},
        {"id": "c", "name": "convert", "args": {"amount": "lots"}},
    )
    config = {
        "storage": {"backend": "memory"},
        "agent": {"type": "python", "import_path": "x:y", "tools": [
            {"name": "convert", "description": "Convert.",
             "implementation": "langchain_tools:convert"},
            {"name": "whoami", "description": "Who.", "implementation": "langchain_tools:whoami"},
        ]},
    }  # fmt: skip
    result = await arun("Task T", config=config, agent=agent, mode="paired", models=teacher(),
                        stream_progress=False)  # fmt: skip
    offered = agent.seen[0].tools
    whoami = next(t for t in offered if t["function"]["name"] == "whoami")
    assert set(whoami["function"]["parameters"]["properties"]) == {"note"}  # injected: hidden
    calls = result.steps[0].attempt_history[0].tool_calls
    assert [(c["id"], c["is_error"]) for c in calls] == [("a", False), ("b", False), ("c", True)]
    assert calls[0]["output"] == "6 USD"
    assert calls[1]["output"] == "hi|Task T|b"
    assert "currency" in calls[2]["output"]  # the tool's own validation, sent back to the agent


async def test_tools_argument_takes_langchain_tools_and_plain_functions() -> None:
    barrier = asyncio.Barrier(3)  # passes only when all three calls run at once

    @tool
    async def slow(name: str) -> str:
        """Wait for the other calls of the round, then greet."""
        async with asyncio.timeout(10):
            await barrier.wait()
        return f"hello {name}"

    from langchain_tools import shout

    agent = calling(
        *({"id": f"s{i}", "name": "slow", "args": {"name": str(i)}} for i in range(3)),
        {"id": "u", "name": "shout", "args": {"text": "hey"}},
    )
    result = await arun("Greet", agent=agent, tools=[slow, shout], mode="paired",
                        models=teacher(), config={"storage": {"backend": "memory"}},
                        stream_progress=False)  # fmt: skip
    names = {t["function"]["name"] for t in agent.seen[0].tools}
    assert names == {"slow", "shout"}
    calls = result.steps[0].attempt_history[0].tool_calls
    # the three calls of the round met at the barrier: they ran concurrently, in call order
    assert [c["output"] for c in calls] == ["hello 0", "hello 1", "hello 2", "HEY"]


async def test_interrupt_in_a_langchain_tool_pauses_and_resumes() -> None:
    from langgraph.types import interrupt

    @tool
    def confirm(action: str) -> str:
        """Ask a person to confirm an action."""
        return "confirmed" if interrupt({"confirm": action}) else "declined"

    agent = calling({"id": "c", "name": "confirm", "args": {"action": "deploy"}})
    saver = InMemorySaver()
    kwargs: dict[str, Any] = {"agent": agent, "tools": [confirm], "checkpointer": saver,
                              "models": teacher(), "stream_progress": False}  # fmt: skip
    paused = await arun("Deploy", mode="paired", thread_id="c1", **kwargs)
    assert paused.waiting_for == {"confirm": "deploy"}
    done = await arun(None, thread_id="c1", resume=True, **kwargs)
    assert done.final_answer == "confirmed"


async def test_mcp_tools_from_a_stdio_server() -> None:
    try:
        from langchain_mcp_adapters import client as adapters
    except ImportError as error:  # not installed, or not importable with this mcp version
        pytest.skip(f"langchain-mcp-adapters unavailable: {error}")
    client = adapters.MultiServerMCPClient({
        "arithmetic": {"command": sys.executable, "args": [str(HERE / "mcp_server.py")],
                       "transport": "stdio"},
    })  # fmt: skip
    tools = await client.get_tools()
    agent = calling({"id": "m", "name": "add", "args": {"a": 2, "b": 40}})
    result = await arun("Add", agent=agent, tools=tools, mode="paired", models=teacher(),
                        config={"storage": {"backend": "memory"}},
                        stream_progress=False)  # fmt: skip
    [offered] = agent.seen[0].tools
    assert set(offered["function"]["parameters"]["properties"]) == {"a", "b"}
    [call] = result.steps[0].attempt_history[0].tool_calls
    assert call["is_error"] is False and "42" in call["output"]
