"""A LangChain/LangGraph agent as the student keeps its own trajectory: the tool calls it runs
itself reach the attempt's ``tool_calls``, the trace, the events and the export, and usage
counts every model call it makes."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import teacher_responder
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from atlas_graph.export import iter_session_traces
from atlas_graph.runner import arun
from atlas_graph.telemetry.events import AtlasEvent
from atlas_graph.testing import ScriptedChatModel


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def scripted_student() -> ScriptedChatModel:
    return ScriptedChatModel(responses=[
        AIMessage(content="", tool_calls=[
            {"id": "m1", "name": "multiply", "args": {"a": 17, "b": 23}},
            {"id": "m2", "name": "multiply", "args": {"a": "x", "b": 1}},
        ]),
        "17 × 23 = 391.",
    ])  # fmt: skip


def create_agent_student(model: ScriptedChatModel) -> Any:
    agents = pytest.importorskip("langchain.agents")
    return agents.create_agent(model, tools=[multiply])


def create_react_agent_student(model: ScriptedChatModel) -> Any:
    from langgraph.prebuilt import create_react_agent

    return create_react_agent(model, tools=[multiply])


@pytest.mark.filterwarnings("ignore:create_react_agent has been moved")
@pytest.mark.parametrize("build", [create_agent_student, create_react_agent_student])
async def test_agent_graph_trajectory_reaches_attempt_trace_events_and_export(
    build: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    model = scripted_student()
    events: list[AtlasEvent] = []
    store = InMemoryStore()
    result = await arun(
        "Multiply 17 by 23.", agent=build(model), mode="paired", stream_progress=False,
        models={"teacher": ScriptedChatModel(responder=teacher_responder())},
        checkpointer=InMemorySaver(), store=store, on_event=events.append,
    )  # fmt: skip
    model.assert_complete()
    assert result.final_answer == "17 × 23 = 391."
    calls = result.steps[0].attempt_history[0].tool_calls
    assert [(c["id"], c["name"], c["is_error"]) for c in calls] == [
        ("m1", "multiply", False), ("m2", "multiply", True),
    ]  # fmt: skip
    assert calls[0]["args"] == {"a": 17, "b": 23} and calls[0]["output"] == "391"
    assert result.usage["student"]["calls"] == 2  # two model calls inside the agent
    tool_events = [e for e in events if e["atlas_event"] in ("tool_call", "tool_result")]
    assert [e["atlas_event"] for e in tool_events] == [
        "tool_call", "tool_result", "tool_call", "tool_result",
    ]  # fmt: skip

    [trace] = list(iter_session_traces(store, statuses=["succeeded", "failed"]))
    exported = trace["steps"][0]["metadata"]["attempt_history"][0]["tool_calls"]
    assert [c["id"] for c in exported] == ["m1", "m2"]
