"""The agent ⇄ tool loop inside a step: tools run, errors go back to the agent, rounds bounded."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from helpers import CALCULATE, teacher_responder

from atlas_graph.agents import AgentRequest, AgentResponse
from atlas_graph.agents.tool_loop import ToolLoop
from atlas_graph.agents.tools import Toolbox
from atlas_graph.config import ConfigError, parse_config
from atlas_graph.graph import create_atlas_graph
from atlas_graph.testing import ScriptedChatModel


def broken_tool(expression: str) -> str:
    raise RuntimeError(f"backend down for {expression}")


async def async_lookup(city: str) -> dict[str, Any]:
    return {"city": city, "temperature_c": 21}


def config(agent: str = "atlas_graph.examples.agents:calculator_agent", **extra: Any) -> Any:
    return {
        "storage": {"backend": "memory"},
        "agent": {"type": "python", "import_path": agent, "tools": [CALCULATE], **extra},
    }


def teacher() -> dict[str, Any]:
    return {"teacher": ScriptedChatModel(responder=teacher_responder())}


async def test_python_agent_tool_round_trip_in_a_session(make_run: Any) -> None:
    run = make_run(config(), models=teacher())
    state = await run("Multiply 17 by 23.", mode="paired")

    assert state["final_answer"] == "The result is 391."
    attempt = state["steps"]["1"]["attempts"][0]
    assert attempt["error"] is None
    assert attempt["tool_calls"] == [
        {"round": 1, "id": "calc-1", "name": "calculate", "args": {"expression": "17 * 23"},
         "output": "391", "is_error": False},
    ]  # fmt: skip
    assert 'tool call [round 1]: calculate({"expression": "17 * 23"})' in attempt["trace"]
    assert "tool result [round 1] calculate: 391" in attempt["trace"]
    calls = [e for e in run.events if e["atlas_event"] == "tool_call"]
    results = [e for e in run.events if e["atlas_event"] == "tool_result"]
    assert [(e["actor"], e["step_id"], e["attempt"]) for e in calls] == [("student", 1, 1)]
    assert calls[0]["data"]["tool"] == "calculate"
    assert calls[0]["data"]["args"] == {"expression": "17 * 23"}
    assert [(e["actor"], e["step_id"], e["attempt"]) for e in results] == [("tool", 1, 1)]
    assert results[0]["data"]["output"] == "391" and results[0]["data"]["is_error"] is False
    # two agent calls in the one attempt, both counted
    assert state["usage"]["student"]["calls"] == 2


async def test_a_failing_tool_goes_back_to_the_agent(make_run: Any) -> None:
    failing = {**CALCULATE, "implementation": "test_tool_loop:broken_tool"}
    data = config()
    data["agent"]["tools"] = [failing]
    run = make_run(data, models=teacher())
    state = await run("Add 2 and 3.", mode="paired")

    attempt = state["steps"]["1"]["attempts"][0]
    assert attempt["error"] is None
    assert attempt["tool_calls"][0]["is_error"] is True
    assert "RuntimeError: backend down for 2 + 3" in attempt["tool_calls"][0]["output"]
    assert state["final_answer"].startswith("I could not compute it: tool 'calculate' failed")
    result = next(e for e in run.events if e["atlas_event"] == "tool_result")
    assert result["data"]["is_error"] is True


def always_calls_tools(request: AgentRequest) -> AgentResponse:
    if request.mode == "planning":
        return AgentResponse(content="not a plan")
    call = {"id": f"c{len(request.tool_rounds)}", "name": "calculate",
            "args": {"expression": "1 + 1"}}  # fmt: skip
    return AgentResponse(content="", tool_calls=[call], usage={"prompt_tokens": 2})


async def test_the_round_limit_is_a_recorded_failed_attempt(make_run: Any) -> None:
    run = make_run(config("test_tool_loop:always_calls_tools", max_tool_rounds=2), models=teacher())
    state = await run("Add 1 and 1.", mode="paired")

    step = state["steps"]["1"]
    assert step["status"] == "failed"
    attempt = step["attempts"][0]
    assert "after 2 round(s) (agent.max_tool_rounds)" in attempt["error"]
    assert [call["round"] for call in attempt["tool_calls"]] == [1, 2]
    assert "tool call (not run)" in attempt["trace"]
    assert state["usage"]["student"] == {
        "prompt_tokens": 6, "completion_tokens": 0, "total_tokens": 6, "calls": 3,
    }  # fmt: skip


async def test_bad_calls_are_reported_to_the_agent_not_raised() -> None:
    toolbox = Toolbox(
        [parse_config({"agent": {"type": "python", "import_path": "x:y", "tools": [
            CALCULATE,
            {"name": "weather", "description": "w",
             "parameters": {"properties": {"city": {"type": "string"}}, "required": ["city"]},
             "implementation": "test_tool_loop:async_lookup"},
            {"name": "declared_only", "description": "no code"},
        ]}}).agent.tools[i] for i in range(3)]  # type: ignore[union-attr]
    )  # fmt: skip
    calls = [
        {"id": "1", "name": "nope", "args": {}},
        {"id": "2", "name": "calculate", "args": {}},
        {"id": "3", "name": "calculate", "args": {"expression": "1", "extra": 1}},
        {"id": "4", "name": "declared_only", "args": {}},
        {"id": "5", "name": "weather", "args": {"city": "Oslo"}},
        {"id": "6", "name": "calculate", "args": {"expression": "import os"}},
    ]
    results = [await toolbox.call(call) for call in calls]
    assert [r.is_error for r in results] == [True, True, True, True, False, True]
    assert "unknown tool 'nope'; available tools: calculate, declared_only, weather" in (
        results[0].content
    )
    assert "missing required argument(s): expression" in results[1].content
    assert "unexpected argument(s): extra" in results[2].content
    assert "has no implementation" in results[3].content
    assert json.loads(results[4].content) == {"city": "Oslo", "temperature_c": 21}
    assert "failed: SyntaxError" in results[5].content


async def test_malformed_tool_calls_become_error_results() -> None:
    toolbox = Toolbox(parse_config(config()).agent.tools)  # type: ignore[union-attr]
    replies = iter(
        [
            AgentResponse(
                content="",
                tool_calls=[
                    {"id": "a", "function": {"name": "calculate", "arguments": "{not json"}},
                    {
                        "id": "b",
                        "type": "function",
                        "function": {"name": "calculate", "arguments": '{"expression": "2*3"}'},
                    },
                ],
            ),
            AgentResponse(content="done"),
        ]
    )

    class Agent:
        async def ainvoke(self, request: AgentRequest) -> AgentResponse:
            return next(replies)

    loop = ToolLoop(toolbox, max_rounds=3)
    request = AgentRequest(mode="execute", task="t", prompt="p")
    response = await loop.run(Agent(), request)
    assert response.content == "done"
    first, second = loop.records()
    assert first["is_error"] and "not JSON" in first["output"]
    assert not second["is_error"] and second["output"] == "6"


def test_a_tool_implementation_that_does_not_import_fails_at_build() -> None:
    data = config()
    data["agent"]["tools"] = [{**CALCULATE, "implementation": "no_such_module_x:calc"}]
    with pytest.raises(ValueError, match="cannot import module 'no_such_module_x'"):
        create_atlas_graph(data)


def test_tool_names_are_checked_in_config() -> None:
    with pytest.raises(ConfigError, match=r"agent\.tools\[0\]\.name"):
        parse_config(config(tools=[{**CALCULATE, "name": "has spaces"}]))


class FailsAfterOneRound:
    """Calls the tool once (reporting usage), then breaks or hangs on the second call."""

    def __init__(self, hang: bool) -> None:
        self.hang = hang

    async def ainvoke(self, request: AgentRequest) -> AgentResponse:
        if request.mode == "planning":
            return AgentResponse(content="no plan")
        if not request.tool_rounds:
            call = {"id": "c1", "name": "calculate", "args": {"expression": "2 + 2"}}
            return AgentResponse(
                content="", tool_calls=[call],
                usage={"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
            )  # fmt: skip
        if self.hang:
            await asyncio.Event().wait()  # never answers: the step timeout ends the attempt
        raise ConnectionError("agent backend went away")


@pytest.mark.parametrize("hang", [False, True])
async def test_an_attempt_that_breaks_mid_loop_keeps_its_tool_calls_and_usage(
    make_run: Any, hang: bool
) -> None:
    data = config()
    data["orchestration"] = {"step_timeout_seconds": 0.5}
    run = make_run(data, agent=FailsAfterOneRound(hang), models=teacher())
    state = await run("Add 2 and 2.", mode="paired")

    attempt = state["steps"]["1"]["attempts"][0]
    expected = "timed out after 0.5s" if hang else "ConnectionError: agent backend went away"
    assert expected in attempt["error"]
    assert attempt["tool_calls"][0]["output"] == "4"
    assert "tool result [round 1] calculate: 4" in attempt["trace"]
    assert expected in attempt["trace"]
    assert state["usage"]["student"] == {
        "prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10, "calls": 1,
    }  # fmt: skip


def record_tools(request: Any) -> dict[str, Any]:
    """A Python validator that passes an attempt only when a tool backed its answer."""
    seen_by_validator.append(request.tool_calls)
    return {"valid": bool(request.tool_calls), "score": 0.9 if request.tool_calls else 0.1}


seen_by_validator: list[list[dict[str, Any]]] = []


async def test_teacher_and_step_judges_see_the_attempts_tool_calls(make_run: Any) -> None:
    teacher_model = ScriptedChatModel(responder=teacher_responder())
    judge = ScriptedChatModel(
        responder=lambda _m: json.dumps({"score": 0.8, "rationale": "ok", "uncertainty": 0.1})
    )
    run = make_run(config(), models={"teacher": teacher_model, "judge": judge})
    await run("Multiply 17 by 23.", mode="coach")

    validation = str(teacher_model.calls[-1]["messages"][-1].content)
    assert 'tool call [round 1]: calculate({"expression": "17 * 23"})' in validation
    assert "tool result [round 1] calculate: 391" in validation

    step_run = make_run(
        {**config(), "rim": {"scope": "step", "reuse_validation_as_reward": False}},
        models={"teacher": teacher_model, "judge": judge},
    )
    await step_run("Multiply 17 by 23.", mode="paired", thread="step")
    judged = str(judge.calls[-1]["messages"][-1].content)
    assert "Tool calls of the last attempt:\ntool call [round 1]: calculate(" in judged


async def test_a_python_validator_receives_the_tool_calls(make_run: Any) -> None:
    seen_by_validator.clear()
    run = make_run({**config(), "teacher": {"validator": "test_tool_loop:record_tools"}})
    state = await run("Multiply 17 by 23.", mode="paired")

    assert [[call["output"] for call in calls] for calls in seen_by_validator] == [["391"]]
    assert state["steps"]["1"]["validation"]["valid"] is True


async def test_a_separate_guidance_call_sees_the_tool_calls(make_run: Any) -> None:
    verdicts = iter([
        {"valid": False, "score": 0.2, "rationale": "no unit", "guidance": ""},
        {"valid": True, "score": 0.9, "rationale": "fine", "guidance": ""},
    ])  # fmt: skip

    def respond(messages: Any) -> str:
        text = str(messages[-1].content)
        if text.startswith("Task:") and "\n\nPlan:\n" in text:
            return json.dumps({"approved": True, "concerns": []})
        if "\n\nVerdict: score " in text:
            return "Give the unit."
        return json.dumps(next(verdicts))

    model = ScriptedChatModel(responder=respond)
    run = make_run({**config(), "teacher": {"guidance_call": True}}, models={"teacher": model})
    state = await run("Multiply 17 by 23.", mode="coach")

    assert state["steps"]["1"]["guidance"] == ["Give the unit."]
    (asked,) = [
        str(call["messages"][-1].content)
        for call in model.calls
        if "\n\nVerdict: score " in str(call["messages"][-1].content)
    ]
    assert "tool result [round 1] calculate: 391" in asked
