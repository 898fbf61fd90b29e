"""Structured output over the wire: what each method sends, the fallback, the re-ask, the
deadline, transient errors of any provider, and what the student never sees.

The real ``ChatOpenAI`` client talks to the loopback stub (``tests/openai_server.py``); where a
provider that is not OpenAI matters, a small httpx chat model talks to the same stub.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai_server as wire
import pytest
from helpers import verdict
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel, ConfigDict

from atlas_graph.config import load_config
from atlas_graph.errors import ModelOutputError
from atlas_graph.models import is_transient
from atlas_graph.nodes.teacher import ERROR_GUIDANCE, TeacherVerdict
from atlas_graph.runner import aopen_graph, arun
from atlas_graph.services import Services
from atlas_graph.structured import (
    CHARS_PER_TOKEN,
    MAX_LIST_ITEMS,
    MAX_TEXT_CHARS,
    bounded,
    is_strict,
    string_slots,
    text_limit,
)
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

openai_server = wire.openai_server

KEY_ENV = "ATLAS_WIRE_KEY"
FORBIDDEN = (
    "could not be read", "TeacherVerdict", "PlanReview", "JudgeReply", "ModelOutputError",
    "Traceback", "Error code", "not a valid", "JSON schema",
)  # fmt: skip
"""Internal text: parse errors, schema names, exception text. None of it is for the student."""


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-structured-wire")
    for name in (
        "LANGSMITH_TRACING", "LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING_V2",
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def llm(base_url: str, model: str, **extra: Any) -> dict[str, Any]:
    return {
        "provider": "openai", "model": model, "api_key_env": KEY_ENV, "api_base": base_url,
        "max_output_tokens": 64, "timeout_seconds": 5, "max_retries": 0, **extra,
    }  # fmt: skip


def config(server: wire.OpenAIServer, teacher: dict[str, Any] | None = None, **sections: Any):
    return {
        "storage": {"backend": "memory"},
        "agent": {"type": "openai", "name": "wire", "llm": llm(server.base_url, "student-m")},
        "teacher": {"llm": llm(server.base_url, "teacher-m", **(teacher or {}))},
        **sections,
    }


def teacher_requests(server: wire.OpenAIServer) -> list[wire.RecordedRequest]:
    return [request for request in server.chat_requests if request.model == "teacher-m"]


def student_requests(server: wire.OpenAIServer) -> list[wire.RecordedRequest]:
    return [request for request in server.chat_requests if request.model == "student-m"]


# --------------------------------------------------------------------------- request bodies


async def test_function_calling_sends_a_forced_tool_named_after_the_schema(
    openai_server: wire.OpenAIServer,
) -> None:
    cfg = config(openai_server, {"structured_output": "function_calling"})
    result = await arun("question", config=cfg, mode="paired")

    (request,) = teacher_requests(openai_server)
    body = request.body or {}
    assert [tool["function"]["name"] for tool in body["tools"]] == ["TeacherVerdict"]
    assert body["tools"][0]["function"]["parameters"]["properties"].keys() >= {"valid", "score"}
    assert body["tool_choice"] == {"type": "function", "function": {"name": "TeacherVerdict"}}
    assert "response_format" not in body
    assert result.steps[0].validation is not None


async def test_json_schema_sends_the_pydantic_schema_in_response_format(
    openai_server: wire.OpenAIServer,
) -> None:
    cfg = config(openai_server, {"structured_output": "json_schema"})
    result = await arun("question", config=cfg, mode="paired")

    (request,) = teacher_requests(openai_server)
    body = request.body or {}
    assert "tools" not in body and "tool_choice" not in body
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "TeacherVerdict"
    sent = fmt["json_schema"]["schema"]
    # the pydantic schema, every string bounded so that both fit the call's 64 output tokens
    # (shared by two strings and the JSON around them)
    pydantic = TeacherVerdict.model_json_schema()
    limit = max(40, 64 * CHARS_PER_TOKEN // 3)  # never below a readable sentence
    assert sent == bounded(pydantic, limit)
    assert text_limit(pydantic, 64) == limit and text_limit(pydantic, None) == MAX_TEXT_CHARS
    assert sent["properties"]["rationale"]["maxLength"] == limit
    assert "maxLength" not in pydantic["properties"]["rationale"]
    # strict only where OpenAI's strict mode accepts the schema (defaults make it refuse)
    assert fmt["json_schema"]["strict"] is is_strict(TeacherVerdict.model_json_schema())
    assert fmt["json_schema"]["strict"] is False
    assert result.steps[0].validation is not None


class Closed(BaseModel):
    """A schema strict mode accepts: closed, every field required."""

    model_config = ConfigDict(extra="forbid")
    answer: str
    count: int


async def test_json_schema_is_strict_where_the_schema_allows(
    openai_server: wire.OpenAIServer,
) -> None:
    openai_server.set_handler(lambda body: wire.structured({"answer": "a", "count": 2}))
    services = Services(load_config(config(openai_server, {"structured_output": "json_schema"})))
    reply = await services.structured("teacher", Closed).ainvoke([HumanMessage("q")])

    assert reply.value == Closed(answer="a", count=2)
    (request,) = openai_server.chat_requests
    fmt = (request.body or {})["response_format"]
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False


async def test_json_mode_sends_json_object_and_the_schema_in_the_prompt(
    openai_server: wire.OpenAIServer,
) -> None:
    def handler(body: dict[str, Any]) -> wire.Reply:
        if body.get("response_format") == {"type": "json_object"}:
            return wire.structured(verdict(True, 0.7))
        return wire.default_handler(body)

    openai_server.set_handler(handler)
    cfg = config(openai_server, {"structured_output": "json_mode"})
    result = await arun("question", config=cfg, mode="paired")

    (request,) = teacher_requests(openai_server)
    body = request.body or {}
    assert body["response_format"] == {"type": "json_object"}
    assert "tools" not in body
    last = request.messages[-1]
    assert last["role"] == "user"
    assert "matches this JSON schema" in last["content"]
    schema = json.dumps(TeacherVerdict.model_json_schema(), separators=(",", ":"))
    assert schema in last["content"]
    assert result.steps[0].validation is not None
    assert result.steps[0].validation["score"] == pytest.approx(0.7)


# --------------------------------------------------------------------------- fallback


def prose_to_tools(body: dict[str, Any]) -> wire.Reply:
    """A server that ignores forced tool calls but enforces a JSON schema (llama.cpp)."""
    if "TeacherVerdict" in wire.tool_names(body):
        return "The answer looks right to me."
    if "TeacherVerdict" in wire.schema_names(body):
        return wire.structured(verdict(True, 0.85))
    return wire.default_handler(body)


async def test_ignored_tool_call_falls_back_to_json_schema_once_and_is_remembered(
    openai_server: wire.OpenAIServer,
) -> None:
    openai_server.set_handler(prose_to_tools)
    cfg = config(openai_server, {"structured_output": "function_calling"})
    async with aopen_graph(cfg) as graph:
        first = await arun("question one", graph=graph, mode="paired")
        asked = teacher_requests(openai_server)
        assert [("tools" in (r.body or {}), r.response_format is not None) for r in asked] == [
            (True, False),  # the forced tool call, answered in prose
            (False, True),  # asked again by JSON schema, answered
        ]
        assert asked[1].response_format is not None
        assert asked[1].response_format["type"] == "json_schema"
        assert first.steps[0].validation is not None
        assert first.steps[0].validation["score"] == pytest.approx(0.85)
        assert first.steps[0].not_judged is None

        second = await arun("question two", graph=graph, mode="paired")
    later = teacher_requests(openai_server)[2:]
    assert len(later) == 1  # the model is remembered: straight to JSON schema
    assert "tools" not in (later[0].body or {})
    assert later[0].response_format is not None
    assert later[0].response_format["type"] == "json_schema"
    assert second.steps[0].validation is not None
    # the fallback was paid for: two calls in the first session, one in the second
    assert first.usage["teacher"]["calls"] == 2
    assert second.usage["teacher"]["calls"] == 1


async def test_fallback_is_per_graph_not_per_process(openai_server: wire.OpenAIServer) -> None:
    openai_server.set_handler(prose_to_tools)
    cfg = config(openai_server, {"structured_output": "function_calling"})
    await arun("question one", config=cfg, mode="paired")
    await arun("question two", config=cfg, mode="paired")  # a new graph asks by tool again
    tools_first = ["tools" in (r.body or {}) for r in teacher_requests(openai_server)]
    assert tools_first == [True, False, True, False]


# --------------------------------------------------------------------------- re-ask


async def test_reask_carries_the_parse_error_and_the_schema(
    openai_server: wire.OpenAIServer,
) -> None:
    replies = iter(["I cannot decide.", wire.structured(verdict(True, 0.6))])

    def handler(body: dict[str, Any]) -> wire.Reply:
        if wire.schema_names(body):
            return next(replies)
        return wire.default_handler(body)

    openai_server.set_handler(handler)
    result = await arun("question", config=config(openai_server), mode="paired")

    first, reask = teacher_requests(openai_server)
    assert len(reask.messages) == len(first.messages) + 2
    assert reask.messages[-2] == {"role": "assistant", "content": "I cannot decide."}
    text = reask.messages[-1]["content"]
    assert text.startswith("Your reply could not be read as TeacherVerdict: no JSON object found")
    schema = json.dumps(TeacherVerdict.model_json_schema(), separators=(",", ":"))
    assert schema in text
    assert reask.response_format == first.response_format  # asked the same way
    step = result.steps[0]
    assert step.validation is not None and step.validation["score"] == pytest.approx(0.6)
    assert step.not_judged is None


async def test_a_reply_cut_off_at_the_token_limit_is_unreadable_not_a_crash(
    openai_server: wire.OpenAIServer,
) -> None:
    # with response_format set, the openai SDK raises LengthFinishReasonError on such a reply
    def handler(body: dict[str, Any]) -> wire.Reply:
        if wire.schema_names(body):
            return {"truncated": '{"valid": true, "score": 0.9, "rationale": "                '}
        return wire.default_handler(body)

    openai_server.set_handler(handler)
    result = await arun("question", config=config(openai_server), mode="paired")

    step = result.steps[0]
    assert step.status == "succeeded" and step.validation is None
    assert step.not_judged is not None and "cut off at the token limit" in step.not_judged
    assert len(teacher_requests(openai_server)) == 2  # asked, re-asked once
    assert result.usage["teacher"]["calls"] == 2
    assert result.usage["teacher"]["completion_tokens"] == 14  # both truncated replies counted


async def test_a_judge_budget_never_raises_the_models_own_cap(
    openai_server: wire.OpenAIServer,
) -> None:
    judge = llm(openai_server.base_url, "judge-m", max_output_tokens=48)
    cfg = config(openai_server, rim={"small_model": judge, "temperatures": [0.3]})
    await arun("question", config=cfg, mode="coach")  # judges.max_tokens defaults to 1,024

    judged = [r for r in openai_server.chat_requests if r.model == "judge-m"]
    assert [(r.body or {})["max_completion_tokens"] for r in judged] == [48]


def unreadable_teacher_and_judges(body: dict[str, Any]) -> wire.Reply:
    """Every schema request gets prose; the student plans two steps, fails once, answers."""
    if wire.schema_names(body):
        return "Hmm, hard to say. It might be fine, or not."
    system = wire.message_text(body, "system")
    if "Break the task into" in system:
        steps = [
            {"id": 1, "description": "Work out part one.", "depends_on": []},
            {"id": 2, "description": "Work out part two.", "depends_on": [1]},
        ]
        return json.dumps({"steps": steps})
    if "Combine the step results" in system:
        return "combined answer"
    return "step answer"


@pytest.mark.parametrize("lane", ["paired", "coach", "escalate"])
async def test_student_never_sees_internal_text(
    openai_server: wire.OpenAIServer, lane: str
) -> None:
    openai_server.set_handler(unreadable_teacher_and_judges)
    cfg = config(
        openai_server,
        rim={"small_model": llm(openai_server.base_url, "judge-m"),
             "large_model": llm(openai_server.base_url, "judge-m")},
    )  # fmt: skip
    result = await arun("What is the answer?", config=cfg, mode=lane)

    students = student_requests(openai_server)
    assert students, "the student was asked"
    for request in students:
        sent = json.dumps(request.body)
        leaked = [text for text in FORBIDDEN if text in sent]
        assert not leaked, f"{leaked} reached the student: {sent[:400]}"
    assert result.final_answer
    assert not [text for text in FORBIDDEN if text in result.final_answer]
    for step in result.steps:
        assert step.status == "succeeded"
        assert step.not_judged is not None  # recorded as not judged, with the reason
        assert not step.guidance
        assert step.attempts == 1
    if lane == "escalate":
        assert result.plan is not None and len(result.plan["steps"]) == 2  # ran unreviewed
    if result.reward is not None:  # the judges' reasons stay in invalid_samples
        assert not [text for text in FORBIDDEN if text in str(result.reward.get("rationale"))]


async def test_failed_attempt_guidance_is_fixed_text(openai_server: wire.OpenAIServer) -> None:
    calls = {"student": 0}

    def handler(body: dict[str, Any]) -> wire.Reply:
        if wire.schema_names(body) or "Carry out the step" not in wire.message_text(body, "system"):
            return wire.default_handler(body)  # the teacher, the plan
        calls["student"] += 1
        return 500 if calls["student"] == 1 else "recovered"

    openai_server.set_handler(handler)
    result = await arun("question", config=config(openai_server), mode="coach")

    retry = student_requests(openai_server)[-1]  # the attempt after the 500
    sent = json.dumps(retry.body)
    assert ERROR_GUIDANCE in retry.text("user")
    assert not [text for text in FORBIDDEN if text in sent]
    assert result.final_answer == "recovered"


# --------------------------------------------------------------------------- transient errors


class ProviderError(Exception):
    """An error of some provider's SDK that is not openai's, carrying an HTTP status."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class StatusOnly(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"status {status}")
        self.status = status


def status_error(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx.Response(status, request=request)
    return httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ProviderError("slow down", 429), True),
        (ProviderError("busy", 503), True),
        (ProviderError("conflict", 409), True),
        (ProviderError("bad request", 400), False),
        (ProviderError("no key", 401), False),
        (ProviderError("unprocessable", 422), False),
        (StatusOnly(500), True),
        (StatusOnly(404), False),
        (status_error(408), True),
        (status_error(429), True),
        (status_error(502), True),
        (status_error(403), False),
        (httpx.ReadTimeout("read timed out"), True),
        (httpx.ConnectError("refused"), True),
        (httpx.RemoteProtocolError("peer closed"), True),
        (httpx.UnsupportedProtocol("ftp://"), False),
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (ValueError("bug"), False),
        (ModelOutputError("unreadable", role="teacher"), False),
    ],
)
def test_is_transient_by_status_and_type(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


async def test_provider_429_of_any_type_is_retried_by_the_node(make_run: Any) -> None:
    teacher = ScriptedChatModel(
        responses=[ProviderError("rate limited", 429), json.dumps(verdict(True, 0.9))]
    )
    run = make_run(agent=ScriptedAgent(), models={"teacher": teacher})
    state = await run("task", mode="paired")

    assert teacher.call_count == 2  # validate ran again after the 429
    assert state["steps"]["1"]["validation"]["score"] == pytest.approx(0.9)
    assert state["status"] == "succeeded"


class HttpxChat(BaseChatModel):
    """A chat model of another provider's making: plain httpx, ``raise_for_status``."""

    base_url: str
    model: str = "httpx-teacher"

    @property
    def _llm_type(self) -> str:
        return "httpx-chat"

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        raise NotImplementedError

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        roles = {"system": "system", "human": "user", "ai": "assistant"}
        body = {
            "model": self.model,
            "messages": [{"role": roles[m.type], "content": m.content} for m in messages],
        }
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{self.base_url}/chat/completions", json=body)
            response.raise_for_status()  # httpx.HTTPStatusError: not an openai error
        content = response.json()["choices"][0]["message"]["content"]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content))])


async def test_http_429_from_a_non_openai_client_is_retried_then_succeeds(make_run: Any) -> None:
    with wire.OpenAIServer(wire.scripted(429, wire.structured(verdict(True, 0.75)))) as server:
        teacher = HttpxChat(base_url=server.base_url)
        run = make_run(agent=ScriptedAgent(), models={"teacher": teacher})
        state = await run("task", mode="paired")
        requests = server.chat_requests
    assert server.errors == []
    assert len(requests) == 2  # the 429, then the node's retry
    assert state["steps"]["1"]["validation"]["score"] == pytest.approx(0.75)
    assert state["status"] == "succeeded"


# --------------------------------------------------------------------------- deadlines


class DripServer:
    """Answers every request with headers, then one byte a second, never finishing."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1"
        self.connections = 0

    def serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.drip, args=(connection,), daemon=True).start()

    def drip(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(5)
            try:
                connection.recv(65536)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 100000\r\n\r\n{"
                )
                while not self.stopping.wait(self.interval):
                    connection.sendall(b" ")
            except OSError:
                return

    def __enter__(self) -> DripServer:
        threading.Thread(target=self.serve, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.listener.close()


@pytest.fixture
def drip_server() -> Iterator[DripServer]:
    with DripServer() as server:
        yield server


async def test_a_dripping_server_cannot_hold_a_structured_call(drip_server: DripServer) -> None:
    cfg = {
        "storage": {"backend": "memory"},
        "teacher": {"llm": llm(drip_server.base_url, "teacher-m", timeout_seconds=1)},
    }
    structured = Services(load_config(cfg)).structured("teacher", TeacherVerdict)
    assert structured.deadline == 1  # timeout_seconds × (retries + 1)
    messages = [SystemMessage("judge"), HumanMessage("output")]
    started = time.perf_counter()
    with pytest.raises(TimeoutError) as caught:
        await structured.ainvoke(messages)
    elapsed = time.perf_counter() - started

    # each read gets a byte within the client's 1 s read timeout: only the deadline ends it
    assert 0.9 <= elapsed < 3.0
    assert drip_server.connections == 1
    assert is_transient(caught.value)  # the node may try once more, within its own bound


async def test_planning_is_bounded_by_the_step_timeout(make_run: Any) -> None:
    async def agent(request: Any) -> str:
        if request.mode == "planning":
            await asyncio.sleep(5)
        return "done"

    teacher = ScriptedChatModel(responder=lambda messages: json.dumps(verdict()))
    run = make_run(
        {"orchestration": {"step_timeout_seconds": 0.2}},
        agent=agent, models={"teacher": teacher},
    )  # fmt: skip
    started = time.perf_counter()
    state = await run("a long task", mode="escalate")

    assert time.perf_counter() - started < 3
    assert any("planning timed out after 0.2s" in note for note in state["plan_notes"])
    assert len(state["plan"]["steps"]) == 1  # one step, the task itself
    assert state["final_answer"] == "done"


async def test_synthesis_is_bounded_and_joins_the_step_outputs(make_run: Any) -> None:
    plan = {"steps": [{"id": 1, "description": "one", "depends_on": []},
                      {"id": 2, "description": "two", "depends_on": []}]}  # fmt: skip

    async def agent(request: Any) -> str:
        if request.mode == "planning":
            return json.dumps(plan)
        if request.mode == "synthesize":
            await asyncio.sleep(5)
        return f"output of {request.step['id']}"

    teacher = ScriptedChatModel(
        responder=lambda messages: json.dumps(
            {"approved": True, "concerns": []}
            if "\n\nPlan:\n" in str(messages[-1].content)
            else verdict()
        )
    )
    run = make_run(
        {"orchestration": {"step_timeout_seconds": 0.2}},
        agent=agent, models={"teacher": teacher},
    )  # fmt: skip
    started = time.perf_counter()
    state = await run("a task", mode="escalate")

    assert time.perf_counter() - started < 3
    assert state["final_answer"] == "output of 1\n\noutput of 2"
    assert any("synthesis failed (timed out after 0.2s" in note for note in state["plan_notes"])


def test_bounded_limits_strings_and_lists_and_keeps_the_rest() -> None:
    from atlas_graph.nodes.teacher import PlanReview

    body = bounded(PlanReview.model_json_schema())
    concerns = body["properties"]["concerns"]
    assert concerns["maxItems"] == MAX_LIST_ITEMS
    assert concerns["items"]["maxLength"] == MAX_TEXT_CHARS
    assert bounded({"type": "string", "maxLength": 5}) == {"type": "string", "maxLength": 5}
    assert bounded({"type": "string", "enum": ["a"]}) == {"type": "string", "enum": ["a"]}
    assert bounded({"type": "integer"}) == {"type": "integer"}


def test_a_judge_reply_shares_its_budget_over_every_string_it_can_hold() -> None:
    from atlas_graph.nodes.judges import JudgeReply

    body = JudgeReply.model_json_schema()
    slots = string_slots(body, body["$defs"])
    assert slots == 1 + MAX_LIST_ITEMS * 2  # the rationale, and each principle's two strings
    assert text_limit(body, 192) == max(40, 192 * CHARS_PER_TOKEN // (slots + 1))
    assert text_limit(body, 10) == 40  # never below a readable sentence


def test_a_field_of_any_shape_is_sent_as_bounded_text() -> None:
    from atlas_graph.nodes.teacher import PlanReview

    body = PlanReview.model_json_schema()
    assert string_slots(body, {}) == MAX_LIST_ITEMS + 1  # the concerns and the revised plan
    revised = bounded(body, 96)["properties"]["revised_plan"]
    assert revised["anyOf"] == [{"type": "string", "maxLength": 96}, {"type": "null"}]
    assert revised["default"] is None  # what the field said of itself is kept
    # the reader of that field takes text: a revised plan written as text still parses
    review = PlanReview.model_validate({"approved": False, "revised_plan": "1. Add. 2. Check."})
    assert review.revised_plan == "1. Add. 2. Check."
