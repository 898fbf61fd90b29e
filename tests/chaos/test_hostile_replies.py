"""Malformed teacher, judge and arbiter replies never stop a session, and resume repeats none.

A loopback model server answers every structured request (the teacher's verdict, the judges',
the arbiter's) with one fault; the student's requests are answered normally. Each session must
finish with the work recorded as not judged, and a second run of its thread must find it
finished (nothing to repeat).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import openai_server as wire
import pytest
from pydantic import ValidationError

from atlas_graph.errors import SessionStateError
from atlas_graph.models import MAX_JSON_CHARS, extract_json
from atlas_graph.nodes.arbiter import ArbiterReply
from atlas_graph.nodes.judges import JudgeReply, sample_from_reply
from atlas_graph.nodes.probe import ProbeReply
from atlas_graph.nodes.teacher import TeacherVerdict
from atlas_graph.runner import arun
from chaos.fault_servers import FaultServer, Raw, ordinary, schema_of

BAD_VALUES: list[Any] = [None, [], [0.5], {}, {"v": 1}, "high", True, float("nan"), "1e999"]


@pytest.mark.parametrize("value", BAD_VALUES, ids=repr)
@pytest.mark.parametrize("schema", [TeacherVerdict, JudgeReply, ArbiterReply, ProbeReply])
def test_a_bad_number_is_a_validation_error_never_a_type_error(
    schema: type[Any], value: Any
) -> None:
    field = "confidence" if schema is ProbeReply else "score"
    data = {"valid": True, "uncertainty": 0.1, "confidence": 0.5, "score": 0.5, field: value}
    with pytest.raises(ValidationError):
        schema.model_validate(data)


@pytest.mark.parametrize("value", BAD_VALUES, ids=repr)
def test_judge_samples_refuse_bad_scores_as_value_errors(value: Any) -> None:
    with pytest.raises(ValueError):
        sample_from_reply({"score": value, "uncertainty": 0.1}, [], None)


def test_extract_json_is_bounded_on_hostile_text() -> None:
    hostile = ["[" * 200_000, "{" * 150_000, '{"a": ' * 30_000, "x{" * 90_000, "]" * 199_000]
    for text in hostile:
        with pytest.raises(ValueError):
            extract_json(text)
    with pytest.raises(ValueError, match="too long"):
        extract_json(" " * (MAX_JSON_CHARS + 1) + "{}")
    assert extract_json('noise [1 } then {"a": "b\\"}"} and [2]') == {"a": 'b"}'}
    assert extract_json('it\'s "quoted" then ```json\n{"x": [1, 2]}\n```') == {"x": [1, 2]}


def _chat(content: Any) -> bytes:
    message = {"role": "assistant", "content": content}
    return _body([{"index": 0, "message": message, "finish_reason": "stop"}])


def _body(choices: list[dict[str, Any]]) -> bytes:
    data = {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": choices}
    return json.dumps(data).encode()


def _tool_arguments(arguments: str) -> Any:
    def reply(body: dict[str, Any]) -> Any:
        return {"tool_call": {"name": schema_of(body), "arguments": arguments}}

    return reply


def _score(value: Any) -> Any:
    def reply(body: dict[str, Any]) -> Any:
        arguments = dict(wire.DEFAULT_TOOL_ARGUMENTS.get(schema_of(body) or "", {}))
        return {"json": {**arguments, "score": value}}

    return reply


FAULTS: dict[str, Any] = {
    "score-null": _score(None),
    "score-list": _score([1, 2]),
    "score-object": _score({"value": 0.9}),
    "arguments-array": _tool_arguments("[1, 2]"),
    "arguments-string": _tool_arguments('"approve"'),
    "200k-brackets": lambda body: "[" * 200_000,
    "1MB-reply": lambda body: '{"score": ' + "9" * 1_000_000 + "}",
    "html-200": lambda body: Raw(200, b"<html><body>Bad gateway</body></html>", "text/html"),
    "other-json-200": lambda body: Raw(200, b'{"result": "ok", "status": "done"}'),
    "empty-choices": lambda body: Raw(200, _body([])),
    "null-content": lambda body: Raw(200, _chat(None)),
}


def config(server: FaultServer, path: Path) -> dict[str, Any]:
    llm = {"provider": "openai", "api_base": server.base_url, "api_key_env": None,
           "timeout_seconds": 10, "max_retries": 0}  # fmt: skip
    return {
        "storage": {"backend": "sqlite", "path": str(path / "atlas.sqlite")},
        "agent": {"type": "openai", "name": "wire", "llm": {**llm, "model": "student"}},
        "teacher": {"llm": {**llm, "model": "teacher"}},
    }


OUTCOMES: dict[str, str] = {}


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_malformed_structured_reply_is_recorded_not_crashed_on(
    fault: str, tmp_path: Path
) -> None:
    respond = FAULTS[fault]

    def handler(body: dict[str, Any]) -> Any:
        return respond(body) if schema_of(body) else ordinary(body)

    started = time.monotonic()
    with FaultServer(handler) as server:
        settings = config(server, tmp_path)
        result = await arun("question", config=settings, mode="paired", thread_id="hostile")
        asked = len(server.requests)
        with pytest.raises(SessionStateError, match="already finished"):
            await arun(None, config=settings, thread_id="hostile")
        assert len(server.requests) == asked  # resume repeats nothing

    step = result.steps[0]
    assert result.status == "succeeded"
    assert step.validation is None and step.not_judged, step
    assert result.final_answer == wire.DEFAULT_ANSWER
    OUTCOMES[fault] = f"not judged; {time.monotonic() - started:.1f}s"
