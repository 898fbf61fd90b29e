"""LangSmith tracing against a loopback sink: the run tree, its labels, and no secrets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import langsmith.run_trees
import langsmith.utils
import openai_server as wire
import pytest
from langchain_core.tracers.langchain import wait_for_all_tracers
from langgraph.checkpoint.memory import InMemorySaver
from langsmith_sink import LangSmithSink

from atlas_graph.runner import AtlasRunError, arun
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

openai_server = wire.openai_server  # the fixture, visible to the tests of this module

API_KEY = "lsv2-fake-key-not-a-secret-0001"
MODEL_KEY = "sk-model-secret-0002"
DSN_PASSWORD = "dsn-password-0003"
SECRETS = (API_KEY, MODEL_KEY, DSN_PASSWORD)


def _reset_langsmith_caches() -> None:
    """The tracer's client and env lookups are cached per process; start from scratch."""
    wait_for_all_tracers()
    langsmith.run_trees._CLIENT = None
    langsmith.utils.get_env_var.cache_clear()


@pytest.fixture(params=[True, False], ids=["multipart", "batch"])
def sink(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LangSmithSink]:
    """Tracing on, pointed at a loopback sink; the model and a DSN carry secrets in env."""
    server = LangSmithSink(multipart=request.param).start()
    for name in (
        "LANGCHAIN_TRACING_V2", "LANGCHAIN_API_KEY", "LANGCHAIN_ENDPOINT",
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", server.url)
    monkeypatch.setenv("LANGSMITH_API_KEY", API_KEY)
    monkeypatch.setenv("LANGSMITH_PROJECT", "atlas-graph-tests")
    monkeypatch.setenv("ATLAS_TRACE_MODEL_KEY", MODEL_KEY)
    monkeypatch.setenv(
        "ATLAS_GRAPH_DATABASE_URL", f"postgresql://atlas:{DSN_PASSWORD}@127.0.0.1:1/atlas"
    )
    _reset_langsmith_caches()
    yield server
    _reset_langsmith_caches()
    server.stop()


def config(server: wire.OpenAIServer) -> dict[str, Any]:
    llm = {
        "provider": "openai", "api_key_env": "ATLAS_TRACE_MODEL_KEY",
        "api_base": server.base_url, "max_output_tokens": 64, "timeout_seconds": 5,
        "max_retries": 0,
    }  # fmt: skip
    return {
        "storage": {"backend": "memory"},
        "agent": {"type": "openai", "name": "wire", "llm": {**llm, "model": "student-m"}},
        "teacher": {"llm": {**llm, "model": "teacher-m"}},
        "adaptive_teaching": {"triage_adapter": "test_langsmith:fingerprinting_triage"},
    }


def fingerprinting_triage(task: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """A triage adapter whose dossier pins the fingerprint, so the trace label is predictable."""
    return {"summary": task, "fingerprint_hint": "fp-123"}


def children(runs: dict[str, dict[str, Any]], parent: str) -> list[dict[str, Any]]:
    return [run for run in runs.values() if str(run.get("parent_run_id")) == parent]


def metadata(run: dict[str, Any]) -> dict[str, Any]:
    return (run.get("extra") or {}).get("metadata") or {}


async def test_session_run_tree_reaches_langsmith_with_labels(
    sink: LangSmithSink, openai_server: wire.OpenAIServer
) -> None:
    result = await arun(
        "question", config=config(openai_server), mode="paired", thread_id="traced-1"
    )
    assert result.status == "succeeded"
    wait_for_all_tracers()
    runs = sink.runs()

    (root,) = [run for run in runs.values() if run.get("parent_run_id") is None]
    assert root["name"] == "atlas-graph"
    assert {"atlas-graph", "lane:paired"} <= set(root["tags"])
    assert metadata(root)["session_id"] == "traced-1"
    assert metadata(root)["lane"] == "paired"
    assert metadata(root)["fingerprint"] == "fp-123"  # known only after triage
    assert root.get("end_time")

    nodes = {run["name"]: run for run in children(runs, str(root["id"]))}
    assert {"triage", "probe", "execute", "validate", "reward", "finalize"} <= set(nodes)

    def llm_runs(node: str) -> list[dict[str, Any]]:
        found, pending = [], [str(nodes[node]["id"])]
        while pending:
            for run in children(runs, pending.pop()):
                pending.append(str(run["id"]))
                if run.get("run_type") == "llm":
                    found.append(run)
        return found

    execute = metadata(nodes["execute"])
    assert (execute["role"], execute["lane"], execute["step_id"], execute["attempt"]) == (
        "student", "paired", 1, 1,
    )  # fmt: skip
    assert "lane:paired" in nodes["validate"]["tags"]
    (student,) = llm_runs("execute")
    assert metadata(student)["role"] == "student"
    assert (metadata(student)["step_id"], metadata(student)["attempt"]) == (1, 1)
    assert metadata(student)["session_id"] == "traced-1"
    assert metadata(student)["lane"] == "paired"
    (teacher,) = llm_runs("validate")
    assert metadata(teacher)["role"] == "teacher"
    assert (metadata(teacher)["step_id"], metadata(teacher)["attempt"]) == (1, 1)

    assert sink.received, "nothing was sent"
    for request in sink.received:
        for secret in SECRETS:
            assert secret.encode() not in request.body, f"{secret} in {request.path}"
        leaked = {k: v for k, v in request.headers.items() if k != "x-api-key"}
        assert not any(secret in str(leaked) for secret in SECRETS)
    assert any(request.headers.get("x-api-key") == API_KEY for request in sink.received)


async def test_lane_chosen_by_the_graph_lands_on_the_root_run(
    sink: LangSmithSink, openai_server: wire.OpenAIServer
) -> None:
    result = await arun("question", config=config(openai_server), thread_id="traced-2")
    wait_for_all_tracers()
    (root,) = [run for run in sink.runs().values() if run.get("parent_run_id") is None]
    assert metadata(root)["lane"] == result.lane
    assert f"lane:{result.lane}" in root["tags"]
    assert [tag for tag in root["tags"] if tag.startswith("lane:")] == [f"lane:{result.lane}"]


async def test_a_resumed_session_root_run_has_the_lane_from_its_checkpoint(
    sink: LangSmithSink,
) -> None:
    saver = InMemorySaver()
    agent = ScriptedAgent(outputs={1: ["first"]})
    approve = json.dumps({"approved": True, "concerns": [], "valid": True, "score": 0.9,
                          "rationale": "ok", "guidance": ""})  # fmt: skip
    common: dict[str, Any] = {
        "config": {"storage": {"backend": "memory"}}, "thread_id": "traced-3", "agent": agent,
        "checkpointer": saver,
    }  # fmt: skip
    with pytest.raises(AtlasRunError):  # the teacher's script ends after the plan review
        await arun("Do it.", mode="coach", models={"teacher": ScriptedChatModel(
            responses=[approve])}, **common)  # fmt: skip
    result = await arun(None, models={"teacher": ScriptedChatModel(responses=[approve])}, **common)
    assert result.status == "succeeded"
    wait_for_all_tracers()
    roots = [run for run in sink.runs().values() if run.get("parent_run_id") is None]
    assert len(roots) == 2
    assert all(metadata(root)["lane"] == "coach" for root in roots)
    assert all("lane:coach" in root["tags"] for root in roots)
    assert sum(bool(root.get("error")) for root in roots) == 1  # the stopped first run


async def test_llm_headers_reach_the_model_but_not_langsmith(
    sink: LangSmithSink, openai_server: wire.OpenAIServer
) -> None:
    header_secret = "hdr-secret-0004"
    data = config(openai_server)
    data["agent"]["llm"]["additional_headers"] = {"X-Gateway-Auth": header_secret}
    result = await arun("question", config=data, mode="paired", thread_id="traced-h")
    assert result.status == "succeeded"
    wait_for_all_tracers()

    sent = [r.headers.get("x-gateway-auth") for r in openai_server.chat_requests]
    assert header_secret in sent  # the student's calls still carry the header
    assert sink.received, "nothing was sent"
    for request in sink.received:
        assert header_secret.encode() not in request.body, f"header value in {request.path}"
    runs = sink.runs()
    student = [run for run in runs.values() if run.get("name") == "ChatOpenAI"]
    assert student, "the model runs keep their name"
