"""Runs set their own recursion limit: a long escalate session never depends on LangGraph's
default (25 in LangGraph 1.0.1–1.0.5)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import teacher_responder
from langgraph.graph.state import CompiledStateGraph

from atlas_graph.agents import AgentRequest, AgentResponse
from atlas_graph.runner import SESSION_RECURSION_LIMIT, arun
from atlas_graph.testing import ScriptedChatModel

STEPS = 12


async def chain_agent(request: AgentRequest) -> AgentResponse:
    """Plans a chain of 12 dependent steps and answers each one."""
    if request.mode == "planning":
        steps = [
            {"id": i, "description": f"Compute item {i} from the one before",
             "depends_on": [i - 1] if i > 1 else []}
            for i in range(1, STEPS + 1)
        ]  # fmt: skip
        return AgentResponse(content=json.dumps({"steps": steps}))
    return AgentResponse(content=f"done {request.step['id'] if request.step else 'all'}")


async def test_a_twelve_step_escalate_session_runs_under_the_session_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config: dict[str, Any] = {"storage": {"backend": "memory"}}
    teacher = ScriptedChatModel(responder=teacher_responder())
    seen_limits: list[Any] = []
    astream = CompiledStateGraph.astream

    def spy(self: Any, graph_input: Any, config: Any = None, **kwargs: Any) -> Any:
        seen_limits.append((config or {}).get("recursion_limit"))
        return astream(self, graph_input, config, **kwargs)

    monkeypatch.setattr(CompiledStateGraph, "astream", spy)
    result = await arun("Do twelve things in order.", config=config, agent=chain_agent,
                        models={"teacher": teacher}, mode="escalate",
                        stream_progress=False)  # fmt: skip
    assert len(result.steps) == STEPS
    assert [step.status for step in result.steps] == ["succeeded"] * STEPS
    assert seen_limits == [SESSION_RECURSION_LIMIT]  # the run's own limit, whatever the default
