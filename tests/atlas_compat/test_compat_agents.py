"""Atlas-style Python agents run unchanged: signatures, payloads, llm_config, own tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import atlas_agents
import pytest
from helpers import CALCULATE, teacher_responder

from atlas_graph.agents import AgentRequest, PythonAgent, agent_from_config
from atlas_graph.config import StudentConfig, parse_config
from atlas_graph.testing import ScriptedChatModel

HERE = str(Path(__file__).parent)


def request(**overrides: Any) -> AgentRequest:
    fields: dict[str, Any] = {
        "mode": "execute",
        "task": "Add 2 and 3.",
        "prompt": "Step 1: add.",
        "step": {"id": 1, "description": "add", "depends_on": []},
        "attempt": 2,
        "guidance": ["show your work"],
        "prior_results": {"0": "nothing"},
        "metadata": {"customer": "acme"},
    }
    return AgentRequest(**{**fields, **overrides})


@pytest.fixture(autouse=True)
def _clear_seen() -> None:
    atlas_agents.SEEN.clear()


@pytest.mark.parametrize(
    "function", [atlas_agents.agent, atlas_agents.create_agent, atlas_agents.keyword_metadata]
)
async def test_each_atlas_signature_gets_prompt_text_and_metadata(function: Any) -> None:
    await PythonAgent(function).ainvoke(request())
    prompt, metadata = atlas_agents.SEEN[0]
    assert prompt == "Step 1: add."
    assert isinstance(metadata, dict)
    assert metadata["customer"] == "acme"
    assert metadata["task_payload"] == "Add 2 and 3."
    assert metadata["step_payload"]["step_id"] == 1
    assert metadata["step_payload"]["attempt"] == 2
    assert metadata["step_payload"]["guidance"] == ["show your work"]
    assert metadata["step_payload"]["prior_results"] == {"0": "nothing"}
    assert "llm_config" not in metadata


async def test_payload_reader_answers_from_its_payloads() -> None:
    response = await PythonAgent(atlas_agents.create_agent).ainvoke(request())
    assert response.content == "step 1 (attempt 2) of Add 2 and 3."
    planning = await PythonAgent(atlas_agents.create_agent).ainvoke(
        request(mode="planning", step=None)
    )
    assert planning.content == "async answer"
    assert atlas_agents.SEEN[-1][1] is not None
    assert atlas_agents.SEEN[-1][1]["step_payload"] is None


async def test_single_parameter_agent_still_gets_the_request() -> None:
    seen: list[Any] = []

    def native(req: AgentRequest) -> str:
        seen.append(req)
        return "ok"

    await PythonAgent(native).ainvoke(request())
    assert isinstance(seen[0], AgentRequest)


def python_config(attribute: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "python",
        "import_path": "atlas_agents",
        "attribute": attribute,
        "working_directory": HERE,
        **extra,
    }


async def test_agent_llm_block_reaches_the_agent_as_llm_config_without_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-to-be-seen")
    config = parse_config(
        {"agent": python_config("llm_reader", llm={"provider": "openai", "model": "gpt-4o-mini"})}
    )
    assert config.agent is not None
    agent = agent_from_config(config.agent, StudentConfig())
    assert isinstance(agent, PythonAgent)
    assert agent.llm_config is not None and "sk-not-to-be-seen" not in json.dumps(agent.llm_config)
    response = await agent.ainvoke(request())
    assert response.content == "model=gpt-4o-mini provider=openai"


async def test_metadata_digest_is_accepted_and_bounded() -> None:
    config = parse_config(
        {"agent": python_config("agent", metadata_digest={"enabled": True, "char_budget": 80})}
    )
    assert config.agent is not None
    agent = agent_from_config(config.agent, StudentConfig())
    await agent.ainvoke(request(metadata={"notes": "x" * 500}))
    digest = atlas_agents.SEEN[0][1]["metadata_digest"]  # type: ignore[index]
    assert isinstance(digest, str) and len(digest) <= 80 and digest.startswith('{"notes"')


async def test_json_string_tool_calls_are_tool_calls_not_the_answer() -> None:
    response = await PythonAgent(atlas_agents.self_run_tools).ainvoke(request())
    assert response.content == ""
    assert response.tool_calls[0]["name"] == "calculate"


async def test_json_answer_without_tool_calls_stays_the_answer() -> None:
    response = await PythonAgent(atlas_agents.json_answer).ainvoke(request())
    assert json.loads(response.content) == {"answer": 42}
    assert response.tool_calls == []


async def test_agent_runs_its_own_declared_tool_in_a_session(make_run: Any) -> None:
    tool = {key: value for key, value in CALCULATE.items() if key != "implementation"}
    run = make_run(
        {"agent": {**python_config("self_run_tools"), "tools": [tool]}},
        models={"teacher": ScriptedChatModel(responder=teacher_responder())},
    )
    state = await run("Multiply 17 by 23.", mode="paired")

    assert state["final_answer"] == "The result is 391."
    attempt = state["steps"]["1"]["attempts"][0]
    assert attempt["tool_calls"][0]["output"] == "391"
    assert attempt["tool_calls"][0]["is_error"] is False
    callback_prompt, callback_metadata = atlas_agents.SEEN[0]
    assert json.loads(callback_prompt) == {
        "tool": {"name": "calculate", "arguments": {"expression": "17 * 23"}}
    }
    assert callback_metadata is not None and callback_metadata["task_payload"]


async def test_request_agent_cannot_self_run_and_the_tool_reports_it() -> None:
    def native(req: AgentRequest) -> str:
        return "ok"

    with pytest.raises(Exception, match="cannot run tool 'calculate'"):
        await PythonAgent(native).acall_tool("calculate", {"expression": "1"})


async def test_request_agent_keeps_the_no_implementation_error(make_run: Any) -> None:
    def native(req: AgentRequest) -> dict[str, Any]:
        if req.tool_rounds:
            return {"content": req.tool_rounds[-1].results[0].content}
        return {"content": "", "tool_calls": [{"id": "c", "name": "calculate",
                                               "args": {"expression": "1 * 2"}}]}  # fmt: skip

    tool = {key: value for key, value in CALCULATE.items() if key != "implementation"}
    run = make_run(
        {"agent": {"type": "python", "import_path": "x:y", "tools": [tool]}},
        agent=native,
        models={"teacher": ScriptedChatModel(responder=teacher_responder())},
    )
    state = await run("Multiply.", mode="auto")
    [call] = state["steps"]["1"]["attempts"][0]["tool_calls"]
    assert call["is_error"] and "has no implementation here" in call["output"]
