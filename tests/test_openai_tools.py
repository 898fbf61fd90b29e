"""The openai adapter over the wire: tool round trips, structured output, provider mapping."""

from __future__ import annotations

import json
from typing import Any

import openai_server as wire
import pytest
from helpers import CALCULATE
from test_openai_wire import KEY_ENV, hermetic, llm, wire_config

from atlas_graph.agents import ChatModelAgent, agent_from_config
from atlas_graph.config import parse_config
from atlas_graph.models import ModelConfigError, chat_model_from_params, model_name_for
from atlas_graph.runner import arun
from atlas_graph.telemetry.events import AtlasEvent

__all__ = ["hermetic"]  # the autouse fixture: keys set, no tracing, no proxies


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body.get("messages") or [] if m.get("role") == "tool"]


def student_with_calculator(body: dict[str, Any]) -> wire.Reply:
    """Teacher schemas get passing verdicts; the student calls the tool, then answers."""
    if set(wire.schema_names(body)) & set(wire.DEFAULT_TOOL_ARGUMENTS):
        return wire.default_handler(body)
    results = tool_messages(body)
    if not results:
        return wire.tool_calls(("calculate", {"expression": "17 * 23"}), content="Let me check.")
    return f"17 * 23 = {results[-1]['content']}"


async def test_openai_agent_tool_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    with wire.OpenAIServer(student_with_calculator) as server:
        data = wire_config(server)
        data["agent"]["tools"] = [CALCULATE]
        events: list[AtlasEvent] = []
        result = await arun(
            "Multiply 17 by 23.", config=data, mode="paired", on_event=events.append
        )
    assert not server.errors

    assert result.final_answer == "17 * 23 = 391"
    student = [r for r in server.chat_requests if "calculate" in r.tool_names]
    assert len(student) == 2
    first, second = student
    assert not tool_messages(first.body or {})
    # the second request replays the assistant's call and carries the tool's answer
    assistant = [m for m in second.messages if m.get("role") == "assistant"][-1]
    call = assistant["tool_calls"][0]
    assert call["function"]["name"] == "calculate"
    assert json.loads(call["function"]["arguments"]) == {"expression": "17 * 23"}
    (tool_message,) = tool_messages(second.body or {})
    assert tool_message["content"] == "391"
    assert tool_message["tool_call_id"] == call["id"]
    attempt = result.steps[0].attempt_history[0]
    assert attempt.tool_calls[0]["output"] == "391"
    assert [e["atlas_event"] for e in events if e["atlas_event"].startswith("tool_")] == [
        "tool_call",
        "tool_result",
    ]
    # both student calls are counted (the server reports 11/7/18 per call)
    assert result.usage["student"] == {
        "prompt_tokens": 22, "completion_tokens": 14, "total_tokens": 36, "calls": 2,
    }  # fmt: skip
    assert result.usage["teacher"]["calls"] == 1


async def test_planning_lists_tools_and_only_execution_binds_them() -> None:
    plan = json.dumps({"steps": [{"id": 1, "description": "Multiply 17 by 23",
                                  "depends_on": [], "tool": "calculate"}]})  # fmt: skip

    def handler(body: dict[str, Any]) -> wire.Reply:
        if "smallest set of concrete steps" in wire.message_text(body, "system"):
            return plan
        return student_with_calculator(body)

    with wire.OpenAIServer(handler) as server:
        data = wire_config(server, student={**llm(server, "gpt-test")})
        data["agent"]["tools"] = [CALCULATE]
        data["student"] = {"tool_choice": "required"}
        result = await arun("Multiply 17 by 23.", config=data, mode="coach")
    assert not server.errors
    planning = server.chat_requests[0]
    assert planning.tool_names == [] and planning.body.get("tool_choice") is None
    assert "- calculate: Evaluate arithmetic." in planning.text("system")
    executing = [r for r in server.chat_requests if r.tool_names == ["calculate"]]
    assert executing[0].body["tool_choice"] == "required"
    assert executing[1].body["tool_choice"] == "auto"  # with results in hand it may answer
    assert result.final_answer == "17 * 23 = 391"


async def test_openai_agent_sends_response_format_and_gets_json() -> None:
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "Answer",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"value": {"type": "integer"}},
                "required": ["value"],
                "additionalProperties": False,
            },
        },
    }

    def handler(body: dict[str, Any]) -> wire.Reply:
        if set(wire.schema_names(body)) & set(wire.DEFAULT_TOOL_ARGUMENTS):
            return wire.default_handler(body)
        assert body.get("response_format") == schema
        return wire.structured({"value": 391})

    with wire.OpenAIServer(handler) as server:
        data = wire_config(server)
        data["agent"]["response_format"] = schema
        result = await arun("Multiply 17 by 23.", config=data, mode="paired")
    assert not server.errors
    assert json.loads(result.final_answer) == {"value": 391}


async def test_openai_agent_error_is_a_failed_attempt_with_usage_untouched() -> None:
    def handler(body: dict[str, Any]) -> wire.Reply:
        return wire.default_handler(body) if wire.schema_names(body) else 400

    with wire.OpenAIServer(handler) as server:
        result = await arun("question", config=wire_config(server), mode="paired")
    attempt = result.steps[0].attempt_history[0]
    assert attempt.error is not None and "Error code: 400" in attempt.error
    assert "student" not in result.usage
    assert result.steps[0].status == "failed"


async def test_scripted_handler_answers_in_order() -> None:
    from langchain_openai import ChatOpenAI

    handler = wire.scripted("one", wire.structured({"n": 2}), 503)
    with wire.OpenAIServer(handler) as server:
        model = ChatOpenAI(base_url=server.base_url, api_key="k", model="m", max_retries=0)
        assert (await model.ainvoke("a")).content == "one"
        assert json.loads(str((await model.ainvoke("b")).content)) == {"n": 2}
        with pytest.raises(Exception, match=r"503|scripted HTTP"):
            await model.ainvoke("c")


# --------------------------------------------------------------------------- Atlas configs


@pytest.mark.parametrize(
    ("provider", "model", "base_url", "model_id"),
    [
        ("openai", "gpt-4.1-mini", None, "gpt-4.1-mini"),
        ("gemini", "gemini/gemini-2.5-flash", "generativelanguage.googleapis.com",
         "gemini-2.5-flash"),
        ("anthropic", "anthropic/claude-sonnet-4-5", "api.anthropic.com", "claude-sonnet-4-5"),
        ("xai", "xai/grok-4-fast", "api.x.ai", "grok-4-fast"),
        ("bedrock", "bedrock/openai.gpt-oss-120b-1:0",
         "bedrock-runtime.us-west-2.amazonaws.com/openai/v1", "openai.gpt-oss-120b-1:0"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["litellm", "openai"])
def test_atlas_llm_configs_map_onto_the_openai_adapter(
    monkeypatch: pytest.MonkeyPatch,
    kind: str, provider: str, model: str, base_url: str | None, model_id: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    config = parse_config(
        {"agent": {"type": kind, "name": "a", "system_prompt": "s",
                   "llm": {"provider": provider, "model": model, "api_key_env": KEY_ENV}}}
    )  # fmt: skip
    agent = agent_from_config(config.agent, config.student)  # type: ignore[arg-type]
    assert isinstance(agent, ChatModelAgent)
    client: Any = agent.model
    assert client.model_name == model_id
    if base_url is None:
        assert client.openai_api_base in (None, "https://api.openai.com/v1")
    else:
        assert base_url in client.openai_api_base


def test_azure_and_bedrock_need_their_endpoint_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    bedrock = parse_config(
        {"agent": {"type": "litellm",
                   "llm": {"provider": "bedrock", "model": "m", "api_key_env": KEY_ENV}}}
    ).agent  # fmt: skip
    with pytest.raises(ModelConfigError, match="AWS_REGION"):
        chat_model_from_params(bedrock.llm, role="student")  # type: ignore[union-attr]
    azure_llm = {"provider": "azure-openai", "model": "azure/dep", "api_key_env": KEY_ENV}
    azure = parse_config({"agent": {"type": "openai", "llm": azure_llm}}).agent
    with pytest.raises(ModelConfigError, match="azure-openai needs api_base"):
        chat_model_from_params(azure.llm, role="student")  # type: ignore[union-attr]
    assert model_name_for(azure.llm) == "dep"  # type: ignore[union-attr]


def test_unknown_provider_is_a_config_error() -> None:
    from atlas_graph.config import ConfigError

    with pytest.raises(ConfigError, match=r"agent\.llm\.provider"):
        parse_config({"agent": {"type": "litellm", "llm": {"provider": "cohere", "model": "m"}}})


def test_local_endpoint_via_api_base(monkeypatch: pytest.MonkeyPatch) -> None:
    params = parse_config(
        {"agent": {"type": "openai", "llm": llm_params("http://127.0.0.1:11434/v1")}}
    ).agent.llm  # type: ignore[union-attr]
    client: Any = chat_model_from_params(params, role="student")
    assert client.openai_api_base == "http://127.0.0.1:11434/v1"


def llm_params(base: str) -> dict[str, Any]:
    return {"provider": "openai-compatible", "model": "llama3.1", "api_key_env": KEY_ENV,
            "api_base": base}  # fmt: skip


_ = llm  # the wire tests' helper, kept importable from here
