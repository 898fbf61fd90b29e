"""Tests for the Python API: ``run``, ``arun`` and the ``Result`` they return."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver

from atlas_graph.errors import AtlasRunError, SessionNotFoundError, SessionStateError
from atlas_graph.result import AttemptResult, Result, StepResult
from atlas_graph.runner import arun, run
from atlas_graph.telemetry.events import AtlasEvent
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel, ScriptExhaustedError

MEMORY: dict[str, Any] = {"storage": {"backend": "memory"}}
DEMO_TEACHER: dict[str, Any] = {
    "teacher": {
        "validator": "atlas_graph.demo:validator",
        "plan_reviewer": "atlas_graph.demo:plan_reviewer",
    }
}
DB = Path(".atlas_graph") / "atlas.sqlite"


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs in its own folder (the default SQLite file lands there), untraced."""
    monkeypatch.chdir(tmp_path)
    for name in ("LANGSMITH_TRACING", "LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING_V2",
                 "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def verdict(valid: bool, score: float, rationale: str = "", guidance: str = "") -> str:
    """One reply that parses both as a plan review (approved) and as a validation verdict."""
    return json.dumps({
        "approved": True, "concerns": [],
        "valid": valid, "score": score, "rationale": rationale, "guidance": guidance,
    })  # fmt: skip


def teacher_rejecting(output: str) -> ScriptedChatModel:
    """A teacher that fails attempts whose output is exactly ``output`` and passes the rest."""

    def respond(messages: list[BaseMessage]) -> str:
        text = str(messages[-1].content)
        if text.endswith(f"Student output:\n{output}"):
            return verdict(False, 0.2, "too rough", "Add the facts.")
        return verdict(True, 0.95, "good")

    return ScriptedChatModel(responder=respond)


def two_step_agent(**kwargs: Any) -> ScriptedAgent:
    return ScriptedAgent(
        plan=[
            {"id": 1, "description": "Gather facts.", "depends_on": []},
            {"id": 2, "description": "Write summary.", "depends_on": [1]},
        ],
        outputs={1: ["draft", "facts"], 2: ["summary"]},
        synthesis="final summary",
        **kwargs,
    )


# --------------------------------------------------------------------------- Result


async def test_arun_returns_full_result_with_scripted_teacher() -> None:
    agent = two_step_agent()
    teacher = teacher_rejecting("draft")
    result = await arun(
        "Summarise the incident.",
        config=MEMORY,
        mode="escalate",
        agent=agent,
        models={"teacher": teacher},
    )
    assert isinstance(result, Result)
    assert result.task == "Summarise the incident."
    assert result.lane == "escalate"
    assert result.status == "succeeded"
    assert result.success
    assert result.final_answer == "final summary"
    assert result.session_id
    assert result.checkpoint_id is not None
    assert result.started_at and result.completed_at
    assert result.retries == 1

    first, second = result.steps
    assert isinstance(first, StepResult)
    assert (first.step_id, second.step_id) == (1, 2)
    assert second.depends_on == [1]
    assert first.status == second.status == "succeeded"
    assert first.attempts == 2
    assert all(isinstance(item, AttemptResult) for item in first.attempt_history)
    assert [item.output for item in first.attempt_history] == ["draft", "facts"]
    assert first.attempt_history[0].validation is not None
    assert first.attempt_history[0].validation["valid"] is False
    assert first.attempt_history[0].guidance == "Add the facts."
    assert first.attempt_history[1].validation is not None
    assert first.attempt_history[1].validation["valid"] is True
    assert first.guidance == ["Add the facts."]
    assert first.output == "facts"
    assert second.attempts == 1
    assert second.prior_results == {"1": "facts"}  # the retried output, not the draft

    # planning + 3 executions + synthesis; review + 3 validations.
    assert result.usage["student"]["calls"] == 5
    assert result.usage["teacher"]["calls"] == 4
    assert result.usage["teacher"]["prompt_tokens"] == 40
    assert teacher.call_count == 4
    assert result.reward is not None
    assert result.reward["score"] == pytest.approx(0.95)
    assert [(c["mode"], c["step_id"], c["attempt"]) for c in agent.calls] == [
        ("planning", None, 1),
        ("execute", 1, 1),
        ("execute", 1, 2),
        ("execute", 2, 1),
        ("synthesize", None, 1),
    ]
    assert agent.calls[2]["guidance"] == ["Add the facts."]


async def test_arun_with_python_validator_from_config() -> None:
    agent = ScriptedAgent(outputs={1: ["200", "200 ms"]})
    result = await arun(
        "Add 120 and 80 and report the total in ms.",
        config={**MEMORY, **DEMO_TEACHER},
        mode="coach",
        agent=agent,
    )
    assert result.status == "succeeded"
    assert result.lane == "coach"
    assert result.final_answer == "200 ms"
    (step,) = result.steps
    assert step.attempts == 2
    assert step.attempt_history[0].validation == {
        "valid": False,
        "score": 0.4,
        "rationale": "the number is right but the unit 'ms' is missing",
        "guidance": "State the unit: write the number followed by 'ms'.",
    }
    assert step.guidance == ["State the unit: write the number followed by 'ms'."]
    assert "teacher" not in result.usage  # a Python validator costs no model calls
    assert result.checkpoint_id is not None


async def test_arun_failed_session_is_a_result_not_an_error() -> None:
    agent = ScriptedAgent(outputs={1: ["41"]})
    result = await arun(
        "Multiply 6 by 7.", config={**MEMORY, **DEMO_TEACHER}, mode="paired", agent=agent
    )
    assert result.status == "failed"
    assert not result.success
    assert result.steps[0].status == "failed"
    assert result.steps[0].validation is not None
    assert result.steps[0].validation["rationale"] == "expected 42, got '41'"
    assert result.reward is not None
    assert result.reward["score"] == 0.0


# --------------------------------------------------------------------------- run (sync)


def test_run_sync_outside_a_loop() -> None:
    result = run("Multiply 6 by 7.", config={**MEMORY, **DEMO_TEACHER}, mode="paired",
                 agent=ScriptedAgent(outputs={1: ["42"]}))  # fmt: skip
    assert result.status == "succeeded"
    assert result.final_answer == "42"


async def test_run_sync_inside_a_running_loop() -> None:
    asyncio.get_running_loop()  # this test really runs inside a loop
    agent = ScriptedAgent(outputs={1: ["42"]})
    result = run("Multiply 6 by 7.", config={**MEMORY, **DEMO_TEACHER}, mode="paired",
                 agent=agent)  # fmt: skip
    assert isinstance(result, Result)
    assert result.status == "succeeded"
    assert result.final_answer == "42"
    assert agent.call_count == 1


async def test_run_inside_a_loop_propagates_errors() -> None:
    with pytest.raises(SessionNotFoundError, match="no session"):
        run(None, config=MEMORY, thread_id="missing-in-loop", agent=ScriptedAgent())


# --------------------------------------------------------------------------- metadata, mode


async def test_session_metadata_passes_through() -> None:
    result = await arun(
        "Hello.", config=MEMORY, mode="auto", agent=ScriptedAgent(),
        session_metadata={"team": "a", "ticket": 7},
    )  # fmt: skip
    assert result.session_metadata == {"team": "a", "ticket": 7}


async def test_config_metadata_defaults_merge_under_caller_metadata() -> None:
    config = {**MEMORY, "metadata": {"team": "default", "env": "test"}}
    caller = {"team": "a", "ticket": 7}
    result = await arun(
        "Hello.", config=config, mode="auto", agent=ScriptedAgent(), session_metadata=caller
    )
    assert result.session_metadata == {"team": "a", "env": "test", "ticket": 7}
    assert caller == {"team": "a", "ticket": 7}  # the caller's mapping is not modified

    defaults_only = await arun("Hello.", config=config, mode="auto", agent=ScriptedAgent())
    assert defaults_only.session_metadata == {"team": "default", "env": "test"}


@pytest.mark.parametrize("mode", ["solo", "AUTO", ""])
async def test_invalid_mode_raises_value_error(mode: str, tmp_path: Path) -> None:
    agent = ScriptedAgent()
    with pytest.raises(ValueError, match="auto, paired, coach, escalate") as error_info:
        await arun("Hello.", mode=mode, agent=agent)
    assert f"unknown mode '{mode}'" in str(error_info.value)
    assert agent.call_count == 0
    assert not (tmp_path / DB).exists()  # rejected before storage was opened


def test_invalid_mode_raises_from_sync_run() -> None:
    with pytest.raises(ValueError, match="unknown mode 'pair'"):
        run("Hello.", config=MEMORY, mode="pair", agent=ScriptedAgent())


# --------------------------------------------------------------------------- resume


async def test_resume_after_a_stop_does_not_redo_finished_work() -> None:
    saver = InMemorySaver()
    agent = ScriptedAgent(outputs={1: ["first", "second"]})
    # Enough for the plan review only; the first validation exhausts the script.
    short_teacher = ScriptedChatModel(responses=[verdict(True, 1.0)])
    events: list[AtlasEvent] = []
    with pytest.raises(AtlasRunError) as error_info:
        await arun(
            "Do the thing.", config=MEMORY, mode="coach", thread_id="resume-1", agent=agent,
            checkpointer=saver, models={"teacher": short_teacher}, on_event=events.append,
        )  # fmt: skip
    error = error_info.value
    assert error.session_id == "resume-1"
    assert "resume-1" in str(error)
    assert "stopped in validate" in str(error)
    assert "ScriptExhaustedError" in str(error)
    assert "\n" not in str(error)
    assert isinstance(error.__cause__, ScriptExhaustedError)
    assert [(c["mode"], c["attempt"]) for c in agent.calls] == [("planning", 1), ("execute", 1)]
    assert "session_finished" not in [event["atlas_event"] for event in events]

    rest_teacher = ScriptedChatModel(
        responses=[verdict(False, 0.2, "weak", "Be stronger."), verdict(True, 0.9, "good")]
    )
    result = await arun(
        None, config=MEMORY, thread_id="resume-1", agent=agent, checkpointer=saver,
        models={"teacher": rest_teacher},
    )  # fmt: skip
    assert result.status == "succeeded"
    assert result.session_id == "resume-1"
    assert result.lane == "coach"
    assert result.final_answer == "second"
    # Planning and the first execution were not repeated; only the retry is new.
    assert [(c["mode"], c["attempt"]) for c in agent.calls] == [
        ("planning", 1),
        ("execute", 1),
        ("execute", 2),
    ]
    assert agent.calls[-1]["guidance"] == ["Be stronger."]
    assert short_teacher.call_count == 2
    rest_teacher.assert_complete()  # an extra call would have stopped the run, as above
    (step,) = result.steps
    assert [item.output for item in step.attempt_history] == ["first", "second"]
    assert step.attempt_history[0].validation is not None
    assert step.attempt_history[0].validation["rationale"] == "weak"

    with pytest.raises(SessionStateError, match="already finished") as finished:
        await arun("Do it again.", config=MEMORY, thread_id="resume-1", agent=agent,
                   checkpointer=saver)  # fmt: skip
    assert finished.value.session_id == "resume-1"
    with pytest.raises(SessionStateError, match="already finished"):
        await arun(None, config=MEMORY, thread_id="resume-1", agent=agent, checkpointer=saver)
    assert agent.call_count == 3


async def test_resume_of_unknown_thread_raises() -> None:
    agent = ScriptedAgent()
    with pytest.raises(SessionNotFoundError, match="no session nope") as error_info:
        await arun(None, thread_id="nope", agent=agent)
    assert error_info.value.session_id == "nope"
    assert agent.call_count == 0


async def test_finished_thread_in_default_sqlite_storage_cannot_rerun() -> None:
    first = await arun("Hello.", mode="auto", thread_id="done-1", agent=ScriptedAgent())
    assert first.status == "succeeded"
    assert first.session_id == "done-1"
    agent = ScriptedAgent()
    with pytest.raises(SessionStateError, match="session done-1 already finished"):
        await arun("Hello again.", mode="auto", thread_id="done-1", agent=agent)
    assert agent.call_count == 0


# --------------------------------------------------------------------------- events, console


async def test_on_event_order() -> None:
    events: list[AtlasEvent] = []
    result = await arun(
        "Summarise the incident.", config=MEMORY, mode="escalate", agent=two_step_agent(),
        models={"teacher": teacher_rejecting("draft")}, on_event=events.append,
    )  # fmt: skip
    kinds = [event["atlas_event"] for event in events]
    assert kinds[0] == "session_started"
    assert kinds[-1] == "session_finished"
    assert kinds.count("session_started") == kinds.count("session_finished") == 1
    assert kinds.index("lane_decided") < kinds.index("step_attempt_started")
    assert kinds.index("plan_ready") < kinds.index("review_verdict")
    assert kinds.index("review_verdict") < kinds.index("step_attempt_started")
    assert kinds.index("guidance") < kinds.index("reward") < kinds.index("final_answer")
    assert kinds.count("step_attempt_started") == 3
    assert {event["session_id"] for event in events} == {result.session_id}
    assert events[-1]["data"]["status"] == "succeeded"
    assert events[-1]["data"]["lane"] == "escalate"
    attempts = [(e["step_id"], e["attempt"]) for e in events
                if e["atlas_event"] == "step_attempt_started"]  # fmt: skip
    assert attempts.index((1, 1)) < attempts.index((1, 2)) < attempts.index((2, 1))


async def test_stream_progress_prints_lines(capsys: pytest.CaptureFixture[str]) -> None:
    await arun(
        "Add 120 and 80 and report the total in ms.", config={**MEMORY, **DEMO_TEACHER},
        mode="coach", agent=ScriptedAgent(outputs={1: ["200", "200 ms"]}), stream_progress=True,
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "\033[" not in out  # no colour when stdout is not a terminal
    lines = out.splitlines()
    assert lines[0].startswith("task started ")
    assert "lane: coach (set by run override)" in lines
    assert "[step 1] validation: invalid, score 0.40 — the number is right but the unit " \
        "'ms' is missing" in lines  # fmt: skip
    assert "[step 1] guidance: State the unit: write the number followed by 'ms'." in lines
    assert "final answer: 200 ms" in lines
    done = next(line for line in lines if line.startswith("task completed in "))
    assert done.endswith("s: succeeded (lane coach)")
    assert lines.index(done) < lines.index("final answer: 200 ms")
    assert "  step 1: succeeded, attempts 2, score 1.00" in lines
    assert lines[-1].startswith("RIM scores | max ")


@pytest.mark.parametrize("stream_progress", [False, None])
async def test_no_stream_progress_prints_nothing(
    capsys: pytest.CaptureFixture[str], stream_progress: bool | None
) -> None:
    result = await arun(
        "Add 120 and 80 and report the total in ms.", config={**MEMORY, **DEMO_TEACHER},
        mode="coach", agent=ScriptedAgent(outputs={1: ["200", "200 ms"]}),
        stream_progress=stream_progress,
    )  # fmt: skip
    assert result.status == "succeeded"
    assert capsys.readouterr() == ("", "")


# --------------------------------------------------------------------------- storage


async def test_default_storage_is_sqlite_under_cwd(tmp_path: Path) -> None:
    assert not (tmp_path / DB).exists()
    result = await arun("Hello.", mode="auto", agent=ScriptedAgent(synthesis="unused"))
    assert result.status == "succeeded"
    assert result.final_answer == "result of step 1"
    assert (tmp_path / DB).is_file()
    assert (tmp_path / DB).stat().st_size > 0


async def test_memory_storage_writes_no_files(tmp_path: Path) -> None:
    result = await arun("Hello.", config=MEMORY, mode="auto", agent=ScriptedAgent())
    assert result.status == "succeeded"
    assert not (tmp_path / ".atlas_graph").exists()


async def test_sqlite_storage_path_from_config(tmp_path: Path) -> None:
    config = {"storage": {"backend": "sqlite", "path": "custom/sessions.sqlite"}}
    result = await arun("Hello.", config=config, mode="auto", agent=ScriptedAgent(),
                        thread_id="custom-1")  # fmt: skip
    assert result.session_id == "custom-1"
    assert (tmp_path / "custom" / "sessions.sqlite").is_file()
    assert not (tmp_path / DB).exists()
    with pytest.raises(SessionStateError, match="already finished"):
        await arun("Hello.", config=config, thread_id="custom-1", agent=ScriptedAgent())


async def test_arun_closes_the_http_agent_it_built_from_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agent_server import AgentServer

    from atlas_graph.agents.http import HttpAgent

    closed: list[tuple[HttpAgent, list[Any]]] = []
    original = HttpAgent.aclose

    async def recording_aclose(self: HttpAgent) -> None:
        clients = list(self._clients.values())
        await original(self)
        closed.append((self, clients))

    monkeypatch.setattr(HttpAgent, "aclose", recording_aclose)
    with AgentServer() as server:
        config = {**MEMORY, "agent": {"type": "http_api", "transport": {"base_url": server.url}}}
        result = await arun("Say hi.", config=config, mode="auto")
    assert result.status == "succeeded" and result.final_answer.startswith("echo: ")
    ((agent, clients),) = closed  # closed once, at the end of the run
    assert len(clients) == 1 and clients[0].is_closed
    assert not agent._clients


async def test_arun_leaves_a_callers_http_agent_open_for_reuse() -> None:
    from agent_server import AgentServer

    from atlas_graph.agents.http import HttpAgent

    with AgentServer() as server:
        async with HttpAgent(server.url, timeout_seconds=5.0) as agent:
            first = await arun("Say hi.", config=MEMORY, mode="auto", agent=agent)
            client = agent._client()
            assert not client.is_closed  # still pooled: the caller may run again
            second = await arun("Say hi again.", config=MEMORY, mode="auto", agent=agent)
            assert agent._client() is client
        assert client.is_closed
    assert first.status == second.status == "succeeded"
    ports = {received.client_port for received in server.received}
    assert len(server.received) == 2 and len(ports) == 1


async def test_open_graph_is_built_once_for_many_sessions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import atlas_graph.runner as runner_module
    from atlas_graph.runner import aopen_graph
    from atlas_graph.storage.ledger import NAMESPACE

    builds: list[Any] = []
    real_create = runner_module.create_atlas_graph

    def counted_create(*args: Any, **kwargs: Any) -> Any:
        builds.append(args)
        return real_create(*args, **kwargs)

    monkeypatch.setattr(runner_module, "create_atlas_graph", counted_create)
    agent = ScriptedAgent()
    teacher = ScriptedChatModel(responder=lambda messages: verdict(True, 0.9, "fine"))
    async with aopen_graph(agent=agent, models={"teacher": teacher}) as graph:  # SQLite in cwd
        results = await asyncio.gather(
            *(arun(f"Task {n}.", mode="paired", graph=graph) for n in range(3))
        )
        assert graph.store is not None
        records = {item.key: item.value for item in await graph.store.asearch(NAMESPACE)}
    assert len(builds) == 1
    assert [result.status for result in results] == ["succeeded"] * 3
    assert len({result.session_id for result in results}) == 3
    assert agent.call_count == 3
    for result in results:  # the runner's rewrite of the ledger went to the shared store
        assert records[result.session_id]["checkpoint_id"] == result.checkpoint_id
    assert DB.exists()


async def test_arun_with_a_graph_refuses_what_the_graph_already_holds() -> None:
    from atlas_graph.graph import create_atlas_graph
    from atlas_graph.runner import aopen_graph

    async with aopen_graph(MEMORY, agent=ScriptedAgent()) as graph:
        with pytest.raises(ValueError, match=r"takes no models, agent: .*aopen_graph"):
            await arun("Hi.", graph=graph, models={"teacher": ScriptedChatModel()},
                       agent=ScriptedAgent())  # fmt: skip
    unsaved = create_atlas_graph(MEMORY, agent=ScriptedAgent()).compile()
    with pytest.raises(ValueError, match="compiled with a checkpointer"):
        await arun("Hi.", graph=unsaved)


async def test_a_session_stopped_on_a_shared_graph_resumes_on_it() -> None:
    from atlas_graph.runner import aopen_graph

    agent = ScriptedAgent(outputs={1: ["first", "second"]})
    teacher = ScriptedChatModel(
        responses=[verdict(True, 1.0), RuntimeError("teacher down"), verdict(True, 0.9, "ok")]
    )
    async with aopen_graph(MEMORY, agent=agent, models={"teacher": teacher}) as graph:
        with pytest.raises(AtlasRunError, match=r"stopped in validate.*run thread shared-1 again"):
            await arun("Do it.", mode="coach", thread_id="shared-1", graph=graph)
        result = await arun(None, thread_id="shared-1", graph=graph)
    assert result.status == "succeeded" and result.final_answer == "first"
    assert [call["mode"] for call in agent.calls] == ["planning", "execute"]
