"""The agent adapters on their own: python callables of every kind, runnables and HTTP."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from agent_server import CLOSE, AgentServer, sleep, status
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from atlas_graph.agents import (
    AgentError,
    AgentRequest,
    HttpAgent,
    PythonAgent,
    RunnableAgent,
    ToolResult,
    ToolRound,
    agent_from_config,
    as_agent,
)
from atlas_graph.config import parse_config


def request(**extra: Any) -> AgentRequest:
    return AgentRequest(
        mode="execute", task="What is 6 * 7?", prompt="Step 1: compute 6 * 7",
        step={"id": 1, "description": "compute 6 * 7"}, metadata={"session_id": "s1"}, **extra,
    )  # fmt: skip


# --------------------------------------------------------------------------- python callables


def sync_function(request: AgentRequest) -> str:
    return "42"


async def async_function(request: AgentRequest) -> str:
    await asyncio.sleep(0)
    return "42"


def sync_generator(request: AgentRequest) -> Iterator[str]:
    yield "4"
    yield "2"


async def async_generator(request: AgentRequest) -> AsyncIterator[str]:
    yield "4"
    await asyncio.sleep(0)
    yield "2"


class AsyncCallable:
    async def __call__(self, request: AgentRequest) -> str:
        await asyncio.sleep(0)
        return "42"


class SyncCallable:
    def __call__(self, request: AgentRequest) -> dict[str, Any]:
        return {"content": "42", "usage": {"prompt_tokens": 3}}


def atlas_signature(prompt: str, metadata: dict[str, Any]) -> str:
    assert prompt == "Step 1: compute 6 * 7"
    assert metadata["mode"] == "execute" and metadata["session_id"] == "s1"
    return "42"


class AtlasAsyncCallable:
    async def __call__(self, prompt: str, metadata: dict[str, Any]) -> str:
        assert metadata["step"]["id"] == 1
        return "42"


async def _answer(prefix: str, request: AgentRequest) -> str:
    return prefix + "2"


def returns_coroutine(request: AgentRequest) -> Any:
    return async_function(request)  # a sync wrapper handing back an un-awaited coroutine


CALLABLE_KINDS = {
    "sync function": sync_function,
    "async function": async_function,
    "sync generator": sync_generator,
    "async generator": async_generator,
    "object with async __call__": AsyncCallable(),
    "object with sync __call__": SyncCallable(),
    "atlas (prompt, metadata)": atlas_signature,
    "atlas async __call__": AtlasAsyncCallable(),
    "partial of an async function": functools.partial(_answer, "4"),
    "sync function returning a coroutine": returns_coroutine,
    "lambda": lambda request: "42",
}


@pytest.mark.parametrize("kind", list(CALLABLE_KINDS))
async def test_every_python_callable_kind_answers(kind: str) -> None:
    response = await as_agent(CALLABLE_KINDS[kind]).ainvoke(request())
    assert response.content == "42"


async def test_generator_chunks_can_carry_usage_and_tool_calls() -> None:
    def chunks(request: AgentRequest) -> Iterator[Any]:
        yield {"content": "thinking ", "usage": {"prompt_tokens": 5, "completion_tokens": 1}}
        yield {"content": "", "tool_calls": [{"name": "add", "args": {"a": 1}, "id": "c1"}]}
        yield {"content": "done", "usage": {"completion_tokens": 2}}

    response = await PythonAgent(chunks).ainvoke(request())
    assert response.content == "thinking done"
    assert response.usage == {"prompt_tokens": 5, "completion_tokens": 3}
    assert response.tool_calls == [{"name": "add", "args": {"a": 1}, "id": "c1"}]


async def test_generators_can_be_refused() -> None:
    with pytest.raises(AgentError, match="allow_generator"):
        await PythonAgent(sync_generator, allow_generator=False).ainvoke(request())


async def test_python_agent_from_config_with_working_directory(tmp_path: Any) -> None:
    (tmp_path / "my_agent_module.py").write_text(
        "class Agent:\n"
        "    async def __call__(self, prompt, metadata):\n"
        "        return f\"{metadata['mode']}:{prompt[-5:]}\"\n"
        "agent = Agent()\n"
    )
    config = parse_config(
        {"agent": {"type": "python", "import_path": "my_agent_module", "attribute": "agent",
                   "working_directory": str(tmp_path)}}
    )  # fmt: skip
    agent = agent_from_config(config.agent, config.student)  # type: ignore[arg-type]
    assert (await agent.ainvoke(request())).content == "execute:6 * 7"


async def test_atlas_signature_sees_tool_results_in_prompt_and_metadata() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def agent(prompt: str, metadata: dict[str, Any]) -> str:
        seen.append((prompt, metadata))
        return "ok"

    rounds = [
        ToolRound(
            tool_calls=[{"id": "c1", "name": "add", "args": {"a": 1}}],
            results=[ToolResult(tool_call_id="c1", name="add", args={"a": 1}, content="2")],
        )
    ]
    await PythonAgent(agent).ainvoke(request(tool_rounds=rounds))
    _, metadata = seen[0]
    assert metadata["tool_rounds"][0]["results"][0]["content"] == "2"


# --------------------------------------------------------------------------- runnable


def build_graph() -> Any:
    """A small LangGraph agent: it answers with the last human message upper-cased."""

    async def think(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage("thinking", usage_metadata=_usage(4, 1))]}

    async def answer(state: MessagesState) -> dict[str, Any]:
        human = [m for m in state["messages"] if isinstance(m, HumanMessage)][-1]
        tools = [m for m in state["messages"] if isinstance(m, ToolMessage)]
        suffix = f" (tool said {tools[-1].content})" if tools else ""
        return {
            "messages": [
                AIMessage(str(human.content).upper() + suffix, usage_metadata=_usage(6, 2))
            ]
        }

    builder = StateGraph(MessagesState)
    builder.add_node("think", think)
    builder.add_node("answer", answer)
    builder.add_edge(START, "think")
    builder.add_edge("think", "answer")
    builder.add_edge("answer", END)
    return builder.compile()


def _usage(prompt: int, completion: int) -> Any:
    return {"input_tokens": prompt, "output_tokens": completion,
            "total_tokens": prompt + completion}  # fmt: skip


async def test_runnable_agent_takes_the_last_ai_message_and_sums_usage() -> None:
    agent = as_agent(build_graph())
    assert isinstance(agent, RunnableAgent)
    response = await agent.ainvoke(request(system_prompt="be brief"))
    assert response.content == "STEP 1: COMPUTE 6 * 7"
    assert response.usage == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13,
                              "calls": 2}  # fmt: skip


async def test_runnable_agent_replays_tool_rounds_as_messages() -> None:
    rounds = [
        ToolRound(
            tool_calls=[{"id": "c1", "name": "calc", "args": {"x": "6*7"}}],
            results=[ToolResult(tool_call_id="c1", name="calc", args={"x": "6*7"}, content="42")],
        )
    ]
    response = await as_agent(build_graph()).ainvoke(request(tool_rounds=rounds))
    assert response.content.endswith("(tool said 42)")


async def test_runnable_agent_from_config_calls_a_factory() -> None:
    config = parse_config(
        {"agent": {"type": "runnable", "import_path": "test_agents", "attribute": "build_graph"}}
    )
    agent = agent_from_config(config.agent, config.student)  # type: ignore[arg-type]
    assert (await agent.ainvoke(request())).content == "STEP 1: COMPUTE 6 * 7"


def test_runnable_agent_config_rejects_non_runnables() -> None:
    config = parse_config(
        {"agent": {"type": "runnable", "import_path": "test_agents", "attribute": "CLOSE"}}
    )
    with pytest.raises(TypeError, match="not a LangChain Runnable"):
        agent_from_config(config.agent, config.student)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- http


def http_agent(server: AgentServer, **extra: Any) -> HttpAgent:
    options: dict[str, Any] = {"timeout_seconds": 5.0, "attempts": 3, "backoff_seconds": 0.01}
    return HttpAgent(server.url, **{**options, **extra})


async def test_http_agent_posts_template_prompt_metadata_and_request() -> None:
    with AgentServer() as server:
        agent = http_agent(server, payload_template={"mode": "atlas", "metadata": {"team": "a"}})
        response = await agent.ainvoke(request())
        await agent.aclose()
    assert response.content == "echo: Step 1: compute 6 * 7"
    body = server.received[0].body
    assert body["mode"] == "atlas" and body["prompt"] == "Step 1: compute 6 * 7"
    assert body["metadata"] == {
        "team": "a", "session_id": "s1", "mode": "execute", "attempt": 1,
        "step": {"id": 1, "description": "compute 6 * 7"},
    }  # fmt: skip
    assert body["request"]["task"] == "What is 6 * 7?"
    assert body["request"]["mode"] == "execute"


async def test_http_agent_retries_500_timeout_and_closed_connection_then_succeeds() -> None:
    with AgentServer(status(500), sleep(2.0), CLOSE) as server:
        agent = http_agent(server, timeout_seconds=0.5, attempts=4)
        response = await agent.ainvoke(request())
        await agent.aclose()
    assert response.content == "echo: Step 1: compute 6 * 7"
    assert len(server.received) == 4


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ((status(503), status(502), status(500)), "answered HTTP 500; gave up after 3 attempts"),
        ((sleep(2.0), sleep(2.0), sleep(2.0)), "timed out after 0.5s; gave up after 3 attempts"),
        ((CLOSE, CLOSE, CLOSE), "connection failed (RemoteProtocolError); gave up after 3"),
    ],
)
async def test_http_agent_gives_up_with_a_clear_error(
    script: tuple[Any, ...], expected: str
) -> None:
    with AgentServer(*script) as server:
        agent = http_agent(server, timeout_seconds=0.5)
        with pytest.raises(AgentError) as info:
            await agent.ainvoke(request())
        await agent.aclose()
    assert expected in str(info.value)
    assert len(server.received) == 3


async def test_http_agent_never_retries_a_4xx() -> None:
    with AgentServer(status(400), status(400)) as server:
        agent = http_agent(server, attempts=5)
        with pytest.raises(AgentError, match=r"answered HTTP 400 \(not retried\)"):
            await agent.ainvoke(request())
        await agent.aclose()
    assert len(server.received) == 1


async def test_http_agent_cannot_reach_a_closed_port() -> None:
    with AgentServer() as server:
        url = server.url
    agent = HttpAgent(url, attempts=2, backoff_seconds=0.01, timeout_seconds=2)
    with pytest.raises(AgentError, match=r"connection failed .*gave up after 2 attempts"):
        await agent.ainvoke(request())


async def test_http_headers_come_from_env_and_stay_out_of_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "Bearer tok-very-secret"
    monkeypatch.setenv("AGENT_TOKEN", secret)
    echoed = status(401, {"error": f"bad credentials: {secret} / key-also-secret"})
    with AgentServer(echoed) as server:
        agent = http_agent(
            server, headers={"X-Api-Key": "key-also-secret"},
            headers_env={"Authorization": "AGENT_TOKEN"},
        )  # fmt: skip
        with pytest.raises(AgentError) as info:
            await agent.ainvoke(request())
        await agent.aclose()
    headers = server.received[0].headers
    assert headers["authorization"] == secret and headers["x-api-key"] == "key-also-secret"
    assert "bad credentials: [redacted] / [redacted]" in str(info.value)
    for text in (str(info.value), repr(agent)):
        assert "very-secret" not in text and "also-secret" not in text

    monkeypatch.delenv("AGENT_TOKEN")
    with pytest.raises(AgentError, match="environment variable AGENT_TOKEN for header"):
        await agent.ainvoke(request())


async def test_http_agent_reuses_one_pooled_connection() -> None:
    with AgentServer() as server:
        async with http_agent(server) as agent:
            await agent.ainvoke(request())
            client = agent._client()
            await agent.ainvoke(request())
            assert agent._client() is client
        assert client.is_closed
    ports = {received.client_port for received in server.received}
    assert len(server.received) == 2 and len(ports) == 1


def test_http_agent_works_across_event_loops() -> None:
    """``run()`` may start a new loop per call: the client of a closed loop is not reused."""
    with AgentServer() as server:
        agent = http_agent(server)
        first = asyncio.run(agent.ainvoke(request()))
        second = asyncio.run(agent.ainvoke(request()))
    assert first.content == second.content == "echo: Step 1: compute 6 * 7"


async def test_http_agent_reads_result_path_and_structured_answers() -> None:
    reply = {"data": {"answer": {"content": "42", "usage": {"prompt_tokens": 9},
                                 "tool_calls": [{"name": "calc", "args": {}}]}}}  # fmt: skip
    with AgentServer(reply, {"data": {"answer": "plain"}}, {"other": 1}) as server:
        agent = http_agent(server, result_path=["data", "answer"])
        structured = await agent.ainvoke(request())
        plain = await agent.ainvoke(request())
        with pytest.raises(AgentError, match=r"no 'data' on result_path 'data\.answer'"):
            await agent.ainvoke(request())
        await agent.aclose()
    assert structured.content == "42" and structured.usage == {"prompt_tokens": 9}
    assert structured.tool_calls == [{"name": "calc", "args": {}}]
    assert plain.content == "plain"


async def test_a_non_json_reply_quoting_a_header_is_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import httpx

    monkeypatch.setenv("AGENT_TOKEN", "Bearer tok-echoed-secret")

    def echo_headers(incoming: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=f"<html>hello {incoming.headers['authorization']}</html>")

    agent = HttpAgent("http://agent.invalid/run", headers_env={"Authorization": "AGENT_TOKEN"})
    client = httpx.AsyncClient(transport=httpx.MockTransport(echo_headers))
    monkeypatch.setattr(agent, "_client", lambda: client)
    with pytest.raises(AgentError, match=r"not JSON") as info:
        await agent.ainvoke(request())
    await client.aclose()
    assert "echoed-secret" not in str(info.value)
    assert "[redacted]" in str(info.value)


async def test_an_echoed_header_secret_stays_out_of_the_session(
    monkeypatch: pytest.MonkeyPatch, make_run: Any
) -> None:
    import json

    from helpers import teacher_responder

    from atlas_graph.testing import ScriptedChatModel

    secret = "Bearer tok-session-secret"
    monkeypatch.setenv("AGENT_TOKEN", secret)
    echoed = status(401, {"error": f"bad credentials: {secret}"})
    with AgentServer(echoed, echoed, echoed) as server:
        agent = {
            "type": "http_api", "name": "h",
            "transport": {"base_url": server.url, "headers_env": {"Authorization": "AGENT_TOKEN"},
                          "retry": {"attempts": 1}},
        }  # fmt: skip
        teacher = ScriptedChatModel(responder=teacher_responder())
        run = make_run({"agent": agent}, models={"teacher": teacher})
        state = await run("Close the ticket.", mode="coach")
    assert server.received[0].headers["authorization"] == secret
    attempt = state["steps"]["1"]["attempts"][0]
    assert "HTTP 401" in attempt["error"] and "[redacted]" in attempt["error"]
    everything = json.dumps([state, run.events], default=str)
    assert "tok-session-secret" not in everything
    assert any(e["event"]["type"] == "step_attempt_finished" for e in state["trajectory_events"])
