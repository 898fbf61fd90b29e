"""Sessions against a real OpenAI-compatible server: what must hold with any model.

Run when ``ATLAS_GRAPH_TEST_LLM_BASE_URL`` names a server (``scripts/local-llm.sh start``
prints one); skipped otherwise, and failed instead when ``ATLAS_GRAPH_REQUIRE_REAL_LLM=1`` (CI).
The model is ``ATLAS_GRAPH_TEST_LLM_MODEL`` (default ``smollm2``, the local script's alias).

The example config ``configs/examples/openai_agent.yaml`` is pointed at the server by its own
environment variables only, with judges added so the reward runs in every lane. A recording
proxy sits between the two, so every prompt the model saw can be read.

With any model, however weak: every session finishes and is recorded; every teacher and judge
reply is read or recorded as not judged / not reviewed / an invalid sample; no internal text
(parse errors, schema names, exception text) reaches a student prompt, guidance or an answer;
no session takes five minutes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from recording_proxy import RecordingProxy

from atlas_graph.result import Result
from atlas_graph.runner import arun
from atlas_graph.sessions import alist_sessions

pytestmark = pytest.mark.real_llm

BASE_URL = os.environ.get("ATLAS_GRAPH_TEST_LLM_BASE_URL", "")
MODEL = os.environ.get("ATLAS_GRAPH_TEST_LLM_MODEL", "smollm2")
EXAMPLE = Path(__file__).resolve().parent.parent / "configs" / "examples" / "openai_agent.yaml"
SESSION_LIMIT_SECONDS = 300
INTERNAL = (
    "could not be read", "TeacherVerdict", "PlanReview", "JudgeReply", "ArbiterReply",
    "ModelOutputError", "Traceback", "Error code", "not a valid", "JSON schema",
    "cut off at the token limit", "LengthFinishReasonError",
)  # fmt: skip
TASKS = {
    "auto": "What is 12 + 30?",
    "paired": "Name the capital of France in one word.",
    "coach": "What is 17 * 23? Give the number.",
    "escalate": "List two primary colours, then say which one is warmer.",
}


@pytest.fixture(scope="module")
def upstream() -> str:
    if not BASE_URL:
        if os.environ.get("ATLAS_GRAPH_REQUIRE_REAL_LLM") == "1":
            pytest.fail(
                "ATLAS_GRAPH_REQUIRE_REAL_LLM=1 but ATLAS_GRAPH_TEST_LLM_BASE_URL is not set: "
                "the real-model server did not start (scripts/local-llm.sh start)"
            )
        pytest.skip("ATLAS_GRAPH_TEST_LLM_BASE_URL is not set (scripts/local-llm.sh start)")
    return BASE_URL


@pytest.fixture(scope="module")
def proxy(upstream: str) -> Iterator[RecordingProxy]:
    with RecordingProxy(upstream) as recording:
        yield recording


@pytest.fixture
def example_env(proxy: RecordingProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example config's own variables, and nothing that could send traffic elsewhere."""
    monkeypatch.setenv("ATLAS_AGENT_API_BASE", proxy.base_url)
    monkeypatch.setenv("ATLAS_TEACHER_API_BASE", proxy.base_url)
    monkeypatch.setenv("ATLAS_AGENT_MODEL", MODEL)
    monkeypatch.setenv("ATLAS_TEACHER_MODEL", MODEL)
    monkeypatch.setenv("OPENAI_API_KEY", "any")
    for name in ("LANGSMITH_TRACING", "LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING_V2"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def real_config(tmp_path: Path, max_tokens: int = 192) -> dict[str, Any]:
    """The example config with short replies, judges on every lane and a SQLite ledger."""
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    config["agent"]["llm"]["max_output_tokens"] = max_tokens
    config["teacher"]["llm"]["max_output_tokens"] = max_tokens
    judge = dict(config["teacher"]["llm"])  # ${ATLAS_TEACHER_*}: environment variables only
    config["rim"] = {
        "small_model": judge,
        "large_model": judge,
        "reuse_validation_as_reward": False,  # the judges run in paired too
        "reward_auto_lane": True,  # and in auto
    }
    config["orchestration"]["step_timeout_seconds"] = 90
    config["storage"] = {"backend": "sqlite", "path": str(tmp_path / "real.sqlite")}
    return config


def internal(text: str) -> list[str]:
    return [fragment for fragment in INTERNAL if fragment in text]


def check_readable_or_recorded(result: Result, lane: str, temperatures: int = 3) -> None:
    """Every teacher and judge reply was read, or the session says it was not."""
    if lane != "auto":
        for step in result.steps:
            assert step.validation is not None or step.not_judged is not None, step
            for attempt in step.attempt_history:
                assert attempt.validation is not None or attempt.not_judged or attempt.error
    assert result.reward is not None
    for entry in result.reward.get("judges", []):
        assert len(entry["samples"]) + len(entry["invalid_samples"]) == temperatures
        for invalid in entry["invalid_samples"]:
            assert invalid["error"], invalid  # the reason is recorded


@pytest.mark.parametrize("lane", ["auto", "paired", "coach", "escalate"])
async def test_session_against_a_real_model(
    lane: str, proxy: RecordingProxy, example_env: None, tmp_path: Path
) -> None:
    config = real_config(tmp_path)
    proxy.clear()
    started = time.perf_counter()
    result = await arun(TASKS[lane], config=config, mode=lane)
    wall = time.perf_counter() - started

    assert result.status in ("succeeded", "failed"), result.status  # finished either way
    assert wall < SESSION_LIMIT_SECONDS
    assert result.lane == lane
    assert result.final_answer.strip()
    check_readable_or_recorded(result, lane)

    # recorded in the session ledger
    sessions = await alist_sessions(config)
    assert [row["session_id"] for row in sessions] == [result.session_id]
    assert sessions[0]["status"] == result.status

    # the model really was asked, by the method auto picks for a local server
    exchanges = proxy.exchanges
    assert exchanges and all(exchange.status == 200 for exchange in exchanges), [
        (exchange.status, exchange.reply) for exchange in exchanges if exchange.status != 200
    ]
    structured = [exchange for exchange in exchanges if exchange.schema]
    assert structured, "teacher or judges were asked"
    for exchange in structured:
        assert exchange.request["response_format"]["type"] == "json_schema"
        assert "tools" not in exchange.request

    # no internal text in anything the student saw or produced
    for exchange in exchanges:
        if exchange.schema is None:  # the student's calls
            sent = json.dumps(exchange.request.get("messages"))
            assert not internal(sent), (internal(sent), sent[:500])
    assert not internal(result.final_answer), result.final_answer
    for step in result.steps:
        assert not internal(step.output)
        for text in step.guidance:
            assert not internal(text), text
