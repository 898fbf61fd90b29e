"""Config-built models over the wire: the real ``ChatOpenAI`` client against a loopback server.

Nothing here is faked above the HTTP layer: the config builds ``ChatOpenAI`` clients, they send
real requests to an OpenAI-compatible server on 127.0.0.1 (``tests/openai_server.py``), and the
tests check both what arrived on the wire and what the session made of the replies.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import openai
import openai_server as wire
import pytest

from atlas_graph.models import ModelConfigError
from atlas_graph.result import Result
from atlas_graph.runner import AtlasRunError, arun
from atlas_graph.telemetry.events import AtlasEvent

openai_server = wire.openai_server  # the fixture, visible to the tests of this module

KEY_ENV = "ATLAS_WIRE_KEY"
SECRET = "sk-wire-secret"
PER_CALL = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18, "calls": 1}


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is set, nothing is traced, and no proxy can route loopback traffic elsewhere."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    for name in (
        "LANGSMITH_TRACING", "LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING_V2",
        "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY",
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def llm(server: wire.OpenAIServer, model: str, **extra: Any) -> dict[str, Any]:
    """LLM parameters pointing at the loopback server."""
    return {
        "provider": "openai",
        "model": model,
        "api_key_env": KEY_ENV,
        "api_base": server.base_url,
        "max_output_tokens": 64,
        "timeout_seconds": 5,
        "max_retries": 0,
        **extra,
    }


def wire_config(
    server: wire.OpenAIServer,
    *,
    agent_type: str = "openai",
    student: dict[str, Any] | None = None,
    teacher: dict[str, Any] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """A memory-backed config whose student and teacher both talk to ``server``."""
    return {
        "storage": {"backend": "memory"},
        "agent": {
            "type": agent_type,
            "name": "wire",
            "system_prompt": "SYS",
            "llm": student or llm(server, "gpt-test"),
        },
        "teacher": {"llm": teacher or llm(server, "teacher-test")},
        **sections,
    }


def split(server: wire.OpenAIServer) -> tuple[list[Any], list[Any]]:
    """Chat requests of the student (no schema) and of the teacher (a schema to answer in)."""
    requests = server.chat_requests
    teacher = [request for request in requests if request.schema_names]
    student = [request for request in requests if not request.schema_names]
    return student, teacher


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text, text
    return text


# --------------------------------------------------------------------------- paired lane


async def test_paired_session_goes_over_the_wire(openai_server: wire.OpenAIServer) -> None:
    events: list[AtlasEvent] = []
    result = await arun(
        "question",
        config=wire_config(openai_server),
        mode="paired",
        on_event=events.append,
    )

    assert result.final_answer == "wire answer"
    assert len(result.steps) == 1
    step = result.steps[0]
    assert step.status == "succeeded"
    assert step.validation is not None
    assert step.validation["score"] == pytest.approx(0.8)
    assert step.validation["valid"] is True
    assert step.validation["rationale"] == "wire ok"
    assert result.reward is not None and result.reward["score"] == pytest.approx(0.8)

    requests = openai_server.chat_requests
    assert len(openai_server.requests) == len(requests) == 2
    student_requests, teacher_requests = split(openai_server)
    assert len(student_requests) == len(teacher_requests) == 1
    student, teacher = student_requests[0], teacher_requests[0]
    assert requests[0] is student  # the student answers before the teacher judges

    assert student.model == "gpt-test"
    assert student.body is not None
    messages = student.body["messages"]
    assert messages[0]["role"] == "system"
    assert messages[0]["content"].startswith("SYS")
    assert "Carry out the step" in messages[0]["content"]
    assert messages[-1]["role"] == "user" and "question" in messages[-1]["content"]
    # ChatOpenAI renames max_tokens to max_completion_tokens on the wire; the step budget
    # (student.max_step_tokens, default 2048) applies but never above the model's own cap (64).
    assert student.body["max_completion_tokens"] == 64
    assert "max_tokens" not in student.body
    assert not student.body.get("stream")
    assert "tools" not in student.body

    assert teacher.model == "teacher-test"
    assert teacher.body is not None
    # a server that is not OpenAI's is asked for the verdict by JSON schema (it enforces it)
    assert teacher.schema_names == ["TeacherVerdict"]
    assert "tools" not in teacher.body and "tool_choice" not in teacher.body
    assert teacher.response_format is not None
    assert teacher.response_format["type"] == "json_schema"
    assert teacher.body["max_completion_tokens"] == 64  # teacher.llm.max_output_tokens
    assert teacher.text("user").endswith("Student output:\nwire answer")
    assert "You are the teacher" in teacher.text("system")

    for request in requests:
        assert request.headers["authorization"] == f"Bearer {SECRET}"

    assert result.usage["student"] == PER_CALL
    assert result.usage["teacher"] == PER_CALL

    assert SECRET not in result.model_dump_json()
    assert SECRET not in json.dumps(events, default=str)


@pytest.mark.parametrize(
    ("provider", "model", "sent"),
    [
        ("openai", "openai/gpt-test", "gpt-test"),
        ("openai-compatible", "openai/gpt-test", "gpt-test"),
        # A slash that is part of the model's own name is not a provider prefix.
        ("openai-compatible", "meta-llama/Llama-3-8B", "meta-llama/Llama-3-8B"),
    ],
)
async def test_litellm_style_model_id_is_stripped_on_the_wire(
    openai_server: wire.OpenAIServer, provider: str, model: str, sent: str
) -> None:
    config = wire_config(
        openai_server,
        agent_type="litellm",
        student=llm(openai_server, model, provider=provider),
    )
    result = await arun("question", config=config, mode="paired")

    assert result.final_answer == "wire answer"
    student_requests, _ = split(openai_server)
    assert [request.model for request in student_requests] == [sent]


async def test_additional_headers_arrive(openai_server: wire.OpenAIServer) -> None:
    config = wire_config(
        openai_server,
        student=llm(openai_server, "gpt-test", additional_headers={"X-Team": "atlas"}),
    )
    await arun("question", config=config, mode="paired")

    student_requests, teacher_requests = split(openai_server)
    assert [request.headers.get("x-team") for request in student_requests] == ["atlas"]
    # Headers belong to the role that configured them.
    assert [request.headers.get("x-team") for request in teacher_requests] == [None]


# --------------------------------------------------------------------------- configuration errors


async def test_missing_student_key_names_the_variable(
    openai_server: wire.OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    # The student's client is built with the graph, so this fails before any session starts.
    with pytest.raises(ModelConfigError) as caught:
        await arun("question", config=wire_config(openai_server), mode="paired")

    message = one_line(caught.value)
    assert KEY_ENV in message
    assert "student" in message
    assert openai_server.requests == []


async def test_missing_teacher_key_stops_the_session_in_validate(
    openai_server: wire.OpenAIServer,
) -> None:
    config = wire_config(
        openai_server,
        teacher=llm(openai_server, "teacher-test", api_key_env="ATLAS_WIRE_TEACHER_KEY"),
    )
    with pytest.raises(AtlasRunError) as caught:
        await arun("question", config=config, mode="paired")

    message = one_line(caught.value)
    assert "ATLAS_WIRE_TEACHER_KEY" in message
    assert "stopped in validate" in message
    assert "ModelConfigError" in message
    student_requests, teacher_requests = split(openai_server)
    assert len(student_requests) == 1
    assert teacher_requests == []


# --------------------------------------------------------------------------- teacher failures


def plain_text_teacher(body: dict[str, Any]) -> wire.Reply:
    if "TeacherVerdict" in wire.schema_names(body):
        return "Looks fine to me, nice work!"  # no tool call, no JSON
    return wire.default_handler(body)


async def test_teacher_plain_text_is_an_unreadable_verdict(
    openai_server: wire.OpenAIServer,
) -> None:
    openai_server.set_handler(plain_text_teacher)
    result = await arun("question", config=wire_config(openai_server), mode="paired")

    step = result.steps[0]
    # asked again once with the parse error, then recorded as not judged: not a failed attempt
    assert step.validation is None
    assert step.not_judged is not None and "could not be read" in step.not_judged
    assert "Looks fine to me" in step.not_judged
    assert step.attempt_history[0].not_judged == step.not_judged
    assert step.status == "succeeded"
    assert result.final_answer == "wire answer"
    _, teacher_requests = split(openai_server)
    assert len(teacher_requests) == 2  # the verdict, and the one re-ask; no retry of the step
    reask = teacher_requests[1].text("user")
    assert "could not be read as TeacherVerdict" in reask and '"valid"' in reask


async def test_unreadable_teacher_reply_still_counts_its_tokens(
    openai_server: wire.OpenAIServer,
) -> None:
    openai_server.set_handler(plain_text_teacher)
    result = await arun("question", config=wire_config(openai_server), mode="paired")

    _, teacher_requests = split(openai_server)
    assert len(teacher_requests) == 2  # the verdict and its re-ask, both paid for
    assert result.usage.get("teacher") == {key: 2 * value for key, value in PER_CALL.items()}


def teacher_status(status: int) -> wire.Handler:
    def handler(body: dict[str, Any]) -> wire.Reply:
        if wire.schema_names(body):
            return status
        return wire.default_handler(body)

    return handler


async def test_teacher_http_500_is_retried_by_the_node_then_stops_the_session(
    openai_server: wire.OpenAIServer,
) -> None:
    # max_retries: 0 turns off the openai client's own retries, but openai's
    # InternalServerError is transient (models.is_transient), so LangGraph's node RetryPolicy
    # (3 attempts, 0.5 s then 1 s back-off plus up to 1 s jitter each) runs validate 3 times.
    openai_server.set_handler(teacher_status(500))
    started = time.perf_counter()
    with pytest.raises(AtlasRunError) as caught:
        await arun("question", config=wire_config(openai_server), mode="paired")
    elapsed = time.perf_counter() - started

    message = one_line(caught.value)
    assert "stopped in validate" in message
    assert "Error code: 500" in message
    # langchain-openai re-raises it as OpenAIAPIError, a subclass of openai's InternalServerError.
    assert isinstance(caught.value.__cause__, openai.InternalServerError)
    student_requests, teacher_requests = split(openai_server)
    assert len(teacher_requests) == 3
    assert len(student_requests) == 1  # the node retry re-runs validate, not execute
    assert elapsed >= 1.5  # the back-off really happened


async def test_teacher_http_401_is_not_retried(openai_server: wire.OpenAIServer) -> None:
    openai_server.set_handler(teacher_status(401))
    with pytest.raises(AtlasRunError) as caught:
        await arun("question", config=wire_config(openai_server), mode="paired")

    message = one_line(caught.value)
    assert "stopped in validate" in message
    assert "Error code: 401" in message
    assert isinstance(caught.value.__cause__, openai.AuthenticationError)
    _, teacher_requests = split(openai_server)
    assert len(teacher_requests) == 1


async def test_student_http_500_is_a_failed_attempt_not_a_crash(
    openai_server: wire.OpenAIServer,
) -> None:
    def handler(body: dict[str, Any]) -> wire.Reply:
        return wire.default_handler(body) if wire.schema_names(body) else 500

    openai_server.set_handler(handler)
    result = await arun("question", config=wire_config(openai_server), mode="paired")

    step = result.steps[0]
    assert step.status == "failed"
    assert step.attempt_history[0].error is not None
    assert "Error code: 500" in step.attempt_history[0].error
    student_requests, teacher_requests = split(openai_server)
    assert len(student_requests) == 1  # the failed attempt is judged without asking the teacher
    assert teacher_requests == []


# --------------------------------------------------------------------------- escalate lane

PLAN = {
    "steps": [
        {"id": 1, "description": "Find the population of Lyon.", "depends_on": []},
        {"id": 2, "description": "Find the population of Marseille.", "depends_on": []},
        {"id": 3, "description": "Compare the two populations.", "depends_on": [1, 2]},
    ]
}


class EscalateStudent:
    """Plans, executes and synthesizes by reading the prompts atlas-graph sends."""

    def __init__(self) -> None:
        # Steps 1 and 2 only answer once both requests are in flight: proof they run in parallel.
        self.independent = threading.Barrier(2, timeout=5)

    def __call__(self, body: dict[str, Any]) -> wire.Reply:
        if set(wire.schema_names(body)) & set(wire.DEFAULT_TOOL_ARGUMENTS):
            return wire.default_handler(body)  # teacher review/validation, judge
        system, user = wire.message_text(body, "system"), wire.message_text(body, "user")
        if "Break the task into" in system:
            return "Here is my plan:\n```json\n" + json.dumps(PLAN, indent=2) + "\n```"
        if "Carry out the step" in system:
            match = re.search(r"^Step (\d+):", user, re.MULTILINE)
            assert match, user
            if match.group(1) in ("1", "2"):
                self.independent.wait()
            return f"result {match.group(1)}"
        if "Combine the step results" in system:
            return "final from synthesis"
        raise AssertionError(f"unexpected student request: {system[:80]!r}")


def kind(request: Any) -> str:
    """What a recorded request was for."""
    if request.schema_names:
        return request.schema_names[0]
    system, user = request.text("system"), request.text("user")
    if "Break the task into" in system:
        return "plan"
    if "Combine the step results" in system:
        return "synthesize"
    step = re.search(r"^Step (\d+):", user, re.MULTILINE)
    return f"execute {step.group(1) if step else '?'}"


async def test_escalate_plan_runs_over_the_wire(openai_server: wire.OpenAIServer) -> None:
    openai_server.set_handler(EscalateStudent())
    config = wire_config(openai_server, rim={"small_model": llm(openai_server, "judge-test")})
    result: Result = await arun("Compare Lyon and Marseille.", config=config, mode="escalate")

    assert result.final_answer == "final from synthesis"
    assert [step.step_id for step in result.steps] == [1, 2, 3]
    assert [step.status for step in result.steps] == ["succeeded"] * 3
    assert [step.output for step in result.steps] == ["result 1", "result 2", "result 3"]
    assert result.steps[2].depends_on == [1, 2]
    assert all(step.attempts == 1 for step in result.steps)
    assert result.reward is not None and result.reward["score"] == pytest.approx(0.7)

    requests = openai_server.chat_requests
    kinds = [kind(request) for request in requests]
    assert sorted(kinds) == sorted([
        "plan", "PlanReview", "execute 1", "execute 2", "TeacherVerdict", "TeacherVerdict",
        "execute 3", "TeacherVerdict", "synthesize", "JudgeReply", "JudgeReply", "JudgeReply",
    ])  # fmt: skip
    assert kinds[:2] == ["plan", "PlanReview"]
    assert set(kinds[2:4]) == {"execute 1", "execute 2"}
    assert kinds[-4:] == ["synthesize", "JudgeReply", "JudgeReply", "JudgeReply"]
    # the judge samples once per temperature, and each request carries its own temperature
    judge_requests = [r for r in requests if kind(r) == "JudgeReply"]
    assert sorted(r.body["temperature"] for r in judge_requests) == [0.2, 0.5, 0.8]
    # Step 3 starts only after both of its dependencies were validated.
    verdicts = [index for index, name in enumerate(kinds) if name == "TeacherVerdict"]
    assert verdicts[1] < kinds.index("execute 3") < verdicts[2]

    by_kind = {kind(request): request for request in requests}
    review = by_kind["PlanReview"]
    assert '"Compare the two populations."' in review.text("user")
    assert review.model == "teacher-test"
    assert by_kind["JudgeReply"].model == "judge-test"
    assert by_kind["plan"].body is not None
    assert by_kind["plan"].body["max_completion_tokens"] == 64  # llm cap below max_plan_tokens
    step_3 = by_kind["execute 3"].text("user")
    assert "- step 1: result 1" in step_3 and "- step 2: result 2" in step_3
    synthesis = by_kind["synthesize"].text("user")
    assert all(f"- step {n}: result {n}" in synthesis for n in (1, 2, 3))

    assert result.usage["student"]["calls"] == 5  # plan, 3 steps, synthesis
    assert result.usage["student"]["total_tokens"] == 5 * 18
    assert result.usage["teacher"]["calls"] == 4  # review, 3 validations
    assert result.usage["teacher"]["prompt_tokens"] == 4 * 11
    assert result.usage["judge"] == {key: 3 * value for key, value in PER_CALL.items()}
    assert result.steps[0].reward is not None
    assert result.steps[0].reward["score"] == pytest.approx(0.8)  # step 1's verdict


async def test_step_budget_below_the_model_cap_is_sent(openai_server: wire.OpenAIServer) -> None:
    config = {**wire_config(openai_server), "student": {"max_step_tokens": 32}}
    await arun("question", config=config, mode="paired")
    student_requests, _ = split(openai_server)
    assert student_requests[0].body["max_completion_tokens"] == 32


# --------------------------------------------------------------------------- reward system


async def test_judge_disagreement_reaches_the_large_model(openai_server: wire.OpenAIServer) -> None:
    by_temperature = {0.2: 0.9, 0.5: 0.5, 0.8: 0.7}

    def handler(body: dict[str, Any]) -> wire.Reply:
        if wire.schema_names(body) == ["JudgeReply"]:
            score = by_temperature[body["temperature"]]
            return wire.tool_call(
                "JudgeReply", {"principles": [], "score": score, "rationale": "r", "uncertainty": 0}
            )
        return wire.default_handler(body)

    openai_server.set_handler(handler)
    config = wire_config(
        openai_server,
        rim={"small_model": llm(openai_server, "judge-test"),
             "large_model": llm(openai_server, "arbiter-test")},
    )  # fmt: skip
    result: Result = await arun("question", config=config, mode="coach")

    arbiter_requests = [r for r in openai_server.chat_requests if r.model == "arbiter-test"]
    assert len(arbiter_requests) == 1
    assert arbiter_requests[0].schema_names == ["ArbiterReply"]
    assert "score 0.90" in arbiter_requests[0].text("user")
    assert result.reward is not None
    (entry,) = result.reward["judges"]
    assert entry["escalated"] is True and entry["score"] == 0.6  # the default ArbiterReply
    assert result.usage["arbiter"] == PER_CALL
    assert SECRET not in json.dumps(result.reward)
