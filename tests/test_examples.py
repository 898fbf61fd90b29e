"""Each example config in configs/examples runs end to end against loopback servers.

The configs are used as shipped: their endpoints come from environment variables, which the
tests point at a local OpenAI-compatible server (teacher, chat students) and a local agent
endpoint (the HTTP student).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import openai_server as wire
import pytest
from agent_server import AgentServer

from atlas_graph.runner import arun
from atlas_graph.telemetry.events import AtlasEvent

EXAMPLES = Path(__file__).resolve().parent.parent / "configs" / "examples"
TASK = "Multiply 17 by 23."


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy key, no tracing, no proxies, and checkpoints in a temporary directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-example-test")
    for name in (
        "LANGSMITH_TRACING", "LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING_V2",
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def calculator_student(body: dict[str, Any]) -> wire.Reply:
    """Teacher schemas pass; a student offered `calculate` uses it once, then answers."""
    if set(wire.schema_names(body)) & set(wire.DEFAULT_TOOL_ARGUMENTS):
        return wire.default_handler(body)
    results = [m for m in body["messages"] if m.get("role") == "tool"]
    if "calculate" in wire.tool_names(body) and not results:
        numbers = re.findall(r"\d+", wire.message_text(body, "user"))
        return wire.tool_call("calculate", {"expression": " * ".join(numbers[-2:])})
    if results:
        return f"17 multiplied by 23 is {results[-1]['content']}."
    return wire.DEFAULT_ANSWER


def point_at(monkeypatch: pytest.MonkeyPatch, server: wire.OpenAIServer) -> None:
    monkeypatch.setenv("ATLAS_TEACHER_API_BASE", server.base_url)
    monkeypatch.setenv("ATLAS_AGENT_API_BASE", server.base_url)


def tool_events(events: list[AtlasEvent]) -> list[str]:
    return [e["atlas_event"] for e in events if e["atlas_event"] in ("tool_call", "tool_result")]


async def test_openai_agent_example(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[AtlasEvent] = []
    with wire.OpenAIServer(calculator_student) as server:
        point_at(monkeypatch, server)
        result = await arun(TASK, config=EXAMPLES / "openai_agent.yaml", on_event=events.append)
    assert not server.errors
    assert result.status == "succeeded"
    assert result.final_answer == "17 multiplied by 23 is 391."
    assert tool_events(events) == ["tool_call", "tool_result"]
    assert {r.model for r in server.chat_requests} == {"gpt-4.1-mini"}
    assert result.usage["student"]["calls"] >= 2


async def test_python_agent_example(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[AtlasEvent] = []
    with wire.OpenAIServer() as server:
        point_at(monkeypatch, server)
        result = await arun(TASK, config=EXAMPLES / "python_agent.yaml", on_event=events.append)
    assert not server.errors
    assert result.status == "succeeded"
    assert result.final_answer == "The result is 391."
    assert tool_events(events) == ["tool_call", "tool_result"]
    assert all(r.schema_names for r in server.chat_requests)  # only the teacher used the server


async def test_langchain_agent_example(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[AtlasEvent] = []
    with wire.OpenAIServer(calculator_student) as server:
        point_at(monkeypatch, server)
        result = await arun(TASK, config=EXAMPLES / "langchain_agent.yaml", on_event=events.append)
    assert not server.errors
    assert result.status == "succeeded"
    assert result.final_answer == "17 multiplied by 23 is 391."
    # the graph ran its own tool: its call is kept in the attempt, and every model call counted
    assert tool_events(events) == ["tool_call", "tool_result"]
    [call] = result.steps[0].attempt_history[0].tool_calls
    assert call["name"] == "calculate" and call["output"] == "391"
    graph_calls = [r for r in server.chat_requests if r.tool_names == ["calculate"]]
    assert len(graph_calls) >= 2
    assert result.usage["student"]["prompt_tokens"] == 11 * len(graph_calls)
    assert result.usage["student"]["calls"] == len(graph_calls)


async def test_http_agent_example(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token = "Bearer example-secret-token"
    monkeypatch.setenv("ATLAS_HTTP_AGENT_TOKEN", token)

    def agent(body: dict[str, Any]) -> dict[str, Any]:
        return {"output": "17 * 23 = 391", "usage": {"prompt_tokens": 5}}

    with AgentServer(default=agent) as endpoint, wire.OpenAIServer() as server:
        point_at(monkeypatch, server)
        monkeypatch.setenv("ATLAS_HTTP_AGENT_URL", endpoint.url)
        result = await arun(TASK, config=EXAMPLES / "http_agent.yaml")
    assert result.status == "succeeded"
    assert result.final_answer == "17 * 23 = 391"
    received = endpoint.received
    assert received and all(r.headers["authorization"] == token for r in received)
    assert received[0].headers["x-client"] == "atlas-graph"
    assert received[0].body["mode"] == "atlas"
    # the token went over the wire only: not into the checkpoint database
    database = tmp_path / ".atlas_graph" / "http_agent.sqlite"
    assert database.exists()
    with sqlite3.connect(database) as connection:
        blobs = [
            bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
            for table in ("checkpoints", "writes")
            for row in connection.execute(f"SELECT * FROM {table}")
            for value in row
            if value is not None
        ]
    assert blobs and not any(b"example-secret-token" in blob for blob in blobs)
