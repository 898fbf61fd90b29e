"""Stored sessions: human plan approval, inspection, fork, prune, and their CLI commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from atlas_graph.cli import main
from atlas_graph.config import StorageConfig
from atlas_graph.errors import AtlasRunError, SessionStateError
from atlas_graph.nodes.approval import ApprovalError
from atlas_graph.runner import arun, run
from atlas_graph.sessions import (
    SessionNotFoundError,
    aapprove_plan,
    afork_session,
    alist_sessions,
    approve_plan,
    aprune_sessions,
    aresume_session,
    asession_history,
    ashow_session,
    list_sessions,
    prune_sessions,
    resume_session,
    session_history,
    show_session,
)
from atlas_graph.storage.persistence import Persistence, aopen_persistence
from atlas_graph.telemetry.events import AtlasEvent
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

HUMAN: dict[str, Any] = {
    "teacher": {"validator": "atlas_graph.demo:validator", "plan_approval": "human"}
}
PLAN = [
    {"id": 1, "description": "Add 1200 and 340.", "depends_on": []},
    {"id": 2, "description": "Multiply 12 by 9.", "depends_on": []},
]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own embedded SQLite under tmp_path/.atlas_graph."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATLAS_GRAPH_DATABASE_URL", raising=False)
    return tmp_path


def reviewer() -> ScriptedChatModel:
    """A teacher model that approves every plan (counts its calls)."""

    def respond(messages: list[BaseMessage]) -> str:
        return json.dumps({"approved": True, "concerns": []})

    return ScriptedChatModel(responder=respond)


def agent() -> ScriptedAgent:
    return ScriptedAgent(plan=PLAN, outputs={1: ["1540"], 2: ["108"]}, synthesis="1540 and 108")


# --------------------------------------------------------------------------- human approval


async def test_run_pauses_for_approval_and_the_review_call_is_not_repeated() -> None:
    teacher, student = reviewer(), agent()
    events: list[AtlasEvent] = []
    paused = await arun(
        "Do the sums.", config=HUMAN, mode="escalate", thread_id="h-1", agent=student,
        models={"teacher": teacher}, on_event=events.append,
    )  # fmt: skip
    assert paused.waiting
    assert paused.status == "running"
    assert paused.waiting_for is not None
    assert paused.waiting_for["type"] == "plan_approval"
    assert [s["id"] for s in paused.waiting_for["plan"]["steps"]] == [1, 2]
    assert [e["atlas_event"] for e in events].count("plan_approval_requested") == 1
    assert teacher.call_count == 1
    assert [c["mode"] for c in student.calls] == ["planning"]

    # resuming without a decision asks again, without calling anyone
    again = await aresume_session("h-1", config=HUMAN, agent=student, models={"teacher": teacher})
    assert again.waiting
    assert teacher.call_count == 1
    assert student.call_count == 1

    done = await aapprove_plan("h-1", config=HUMAN, agent=student, models={"teacher": teacher})
    assert not done.waiting
    assert done.status == "succeeded"
    assert done.final_answer == "1540 and 108"
    assert teacher.call_count == 1  # the review ran once across three runs
    assert [c["mode"] for c in student.calls] == ["planning", "execute", "execute", "synthesize"]
    view = await ashow_session("h-1", HUMAN)
    assert view["values"]["plan_approval"]["status"] == "approved"
    assert "plan approved by a person" in view["values"]["plan_notes"]

    with pytest.raises(SessionStateError, match="already finished"):
        await aapprove_plan("h-1", config=HUMAN, agent=student, models={"teacher": teacher})


async def test_edited_plan_runs_and_bad_edits_change_nothing() -> None:
    student = agent()
    await arun("Do the sums.", config=HUMAN, mode="escalate", thread_id="h-2", agent=student,
               models={"teacher": reviewer()})  # fmt: skip
    with pytest.raises(ApprovalError, match="cannot be scheduled"):
        cyclic = {"steps": [{"id": 1, "description": "x", "depends_on": [9]}]}
        await aapprove_plan("h-2", action="edit", config=HUMAN, agent=student, plan=cyclic)
    with pytest.raises(ApprovalError, match="action"):
        await aapprove_plan("h-2", action="maybe", config=HUMAN, agent=student)
    assert (await ashow_session("h-2", HUMAN))["interrupts"]  # still waiting, nothing lost

    edited = {"steps": [{"id": 1, "description": "Add 1200 and 340.", "depends_on": []}]}
    result = await aapprove_plan("h-2", action="edit", plan=edited, config=HUMAN, agent=student)
    assert result.status == "succeeded"
    assert [step.description for step in result.steps] == ["Add 1200 and 340."]
    assert result.final_answer == "1540"


async def test_rejected_plan_is_redrafted_with_the_notes_and_asked_again() -> None:
    student = agent()
    await arun("Do the sums.", config=HUMAN, mode="escalate", thread_id="h-3", agent=student,
               models={"teacher": reviewer()})  # fmt: skip
    again = await aapprove_plan(
        "h-3", action="reject", notes="split it differently", config=HUMAN, agent=student,
        models={"teacher": reviewer()},
    )  # fmt: skip
    assert again.waiting
    assert [c["mode"] for c in student.calls] == ["planning", "planning"]
    assert "a person rejected the plan: split it differently" in student.calls[1]["guidance"]


async def test_a_decision_is_never_served_from_the_review_cache() -> None:
    teacher = reviewer()
    for thread in ("cache-a", "cache-b"):
        result = await arun("Do the sums.", config=HUMAN, mode="escalate", thread_id=thread,
                            agent=agent(), models={"teacher": teacher})  # fmt: skip
        assert result.waiting
    assert teacher.call_count == 2


async def test_decision_for_a_session_that_does_not_wait_is_refused() -> None:
    config = {"teacher": {"plan_approval": "human"}}
    with pytest.raises(AtlasRunError, match="stopped in review"):
        await arun("Do the sums.", config=config, mode="escalate", thread_id="stopped-1",
                   agent=agent(), models={"teacher": ScriptedChatModel(responses=[])})  # fmt: skip
    view = await ashow_session("stopped-1", config)
    assert view["next"] == ["review"]
    assert view["errors"][0]["node"] == "review"
    assert "ScriptExhaustedError" in view["errors"][0]["error"]
    assert view["ledger"]["status"] == "running"
    with pytest.raises(SessionStateError, match="not waiting for a decision"):
        await aapprove_plan("stopped-1", config=config, agent=agent())
    with pytest.raises(SessionNotFoundError, match="no session nope"):
        await aapprove_plan("nope", config=config, agent=agent())


# --------------------------------------------------------------------------- inspect, fork


async def test_history_fork_with_guidance_and_resume() -> None:
    student = agent()
    config = {"teacher": {"validator": "atlas_graph.demo:validator"}}
    first = await arun("Do the sums.", config=config, mode="escalate", thread_id="f-1",
                       agent=student, models={"teacher": reviewer()})  # fmt: skip
    assert first.status == "succeeded"
    history = await asession_history("f-1", config)
    assert history[0]["node"] == ["finalize"] and history[0]["next"] == []
    assert history[-1]["source"] == "input"
    steps = [row["step"] for row in history]
    assert steps == sorted(steps, reverse=True)
    after_probe = next(row for row in history if row["node"] == ["probe"])
    assert after_probe["next"] == ["plan"]

    new_checkpoint = await afork_session(
        "f-1", after_probe["checkpoint_id"], config=config, guidance="Show your working."
    )
    view = await ashow_session("f-1", config)
    assert view["checkpoint_id"] == new_checkpoint
    assert view["next"] == ["plan"]
    assert not view["finished"]
    # the ledger agrees: the forked session is live again until it finishes
    assert (view["ledger"]["status"], view["ledger"]["completed_at"]) == ("running", None)
    assert [row["status"] for row in await alist_sessions(config)] == ["running"]
    rerun = await aresume_session("f-1", config=config, agent=student,
                                  models={"teacher": reviewer()})  # fmt: skip
    assert rerun.status == "succeeded"
    assert student.calls[4]["mode"] == "planning"
    record = (await ashow_session("f-1", config))["ledger"]
    assert record["status"] == "succeeded" and record["checkpoint_id"] == rerun.checkpoint_id
    assert student.calls[4]["guidance"] == ["Show your working."]
    # the original branch is still in the history
    ids = {row["checkpoint_id"] for row in await asession_history("f-1", config)}
    assert after_probe["checkpoint_id"] in ids and history[0]["checkpoint_id"] in ids

    mid_step = next(row for row in history if row["node"] == ["execute"])
    with pytest.raises(ValueError, match="inside a step branch"):
        await afork_session("f-1", mid_step["checkpoint_id"], config=config, values={"task": "x"})
    with pytest.raises(ValueError, match="unknown state key") as unknown:
        await afork_session("f-1", after_probe["checkpoint_id"], config=config, values={"tsk": 1})
    assert "tsk" in str(unknown.value) and "task" in str(unknown.value)
    with pytest.raises(SessionNotFoundError):
        await afork_session("f-1", "no-such-checkpoint", config=config, values={"task": "x"})
    with pytest.raises(SessionNotFoundError):
        await ashow_session("missing", config)


async def test_a_fork_that_changes_the_lane_is_routed_by_its_new_lane() -> None:
    student = agent()
    config = {"teacher": {"validator": "atlas_graph.demo:validator"}}
    first = await arun("Do the sums.", config=config, mode="paired", thread_id="lane-1",
                       agent=student, models={"teacher": reviewer()})  # fmt: skip
    assert first.lane == "paired" and [c["mode"] for c in student.calls] == ["execute"]
    history = await asession_history("lane-1", config)
    after_probe = next(row for row in history if row["node"] == ["probe"])
    assert after_probe["next"] == ["execute"]  # the paired lane starts its one step

    await afork_session("lane-1", after_probe["checkpoint_id"], config=config,
                        values={"lane": "escalate"})  # fmt: skip
    assert (await ashow_session("lane-1", config))["next"] == ["plan"]  # escalate plans first
    rerun = await aresume_session("lane-1", config=config, agent=student,
                                  models={"teacher": reviewer()})  # fmt: skip
    assert rerun.lane == "escalate" and rerun.plan is not None
    assert [c["mode"] for c in student.calls][:2] == ["execute", "planning"]


async def test_list_sessions_and_prune(capsys: pytest.CaptureFixture[str]) -> None:
    config = {"teacher": {"validator": "atlas_graph.demo:validator"}}
    await arun("Add 1 and 2.", config=config, mode="auto", thread_id="old-1", agent=agent())
    await arun("Do the sums.", config=HUMAN, mode="escalate", thread_id="waiting-1",
               agent=agent(), models={"teacher": reviewer()})  # fmt: skip
    rows = {row["session_id"]: row for row in await alist_sessions(config)}
    assert rows["old-1"]["status"] == "succeeded" and rows["old-1"]["lane"] == "auto"
    assert rows["waiting-1"]["status"] == "waiting"
    assert rows["waiting-1"]["lane"] == "escalate"  # known from the running record
    assert rows["old-1"]["age_seconds"] >= 0

    assert (await aprune_sessions(1, config=config)).threads == []  # nothing is a day old
    report = await aprune_sessions(0, config=config)
    assert report.threads == ["old-1"]  # the unfinished session is kept
    assert report.ledger_records == []
    with pytest.raises(SessionNotFoundError):
        await asession_history("old-1", config)  # its checkpoints are gone
    pruned = await ashow_session("old-1", config)  # but the ledger still shows it
    assert pruned["checkpoints_pruned"] is True and pruned["finished"] is True
    assert (pruned["values"]["status"], pruned["values"]["lane"]) == ("succeeded", "auto")
    assert pruned["checkpoint_id"] is not None and pruned["values"]["final_answer"]
    assert main(["show", "old-1"]) == 0
    assert "checkpoints: pruned" in capsys.readouterr().out
    assert "waiting-1" in {row["session_id"] for row in await alist_sessions(config)}
    assert "old-1" in {row["session_id"] for row in await alist_sessions(config)}  # ledger kept
    report = await aprune_sessions(0, config=config, ledger=True)
    assert report.ledger_records == ["old-1"]
    assert {row["session_id"] for row in await alist_sessions(config)} == {"waiting-1"}
    with pytest.raises(SessionNotFoundError):
        await ashow_session("old-1", config)
    async with aopen_persistence(StorageConfig()) as opened:
        state = await opened.checkpointer.aget_tuple({"configurable": {"thread_id": "waiting-1"}})
    assert state is not None


def test_reading_commands_do_not_create_storage(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sessions"]) == 0
    assert "no sessions" in capsys.readouterr().out
    assert main(["show", "x"]) == 2
    assert "no session x" in capsys.readouterr().err
    assert main(["prune", "--older-than", "0"]) == 0
    assert not (in_tmp / ".atlas_graph").exists()


class ScanCountingSaver(InMemorySaver):
    """Counts whole-table scans (``alist(None)``) of the checkpoints."""

    def __init__(self) -> None:
        super().__init__()
        self.full_scans = 0

    async def alist(self, config: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if config is None:
            self.full_scans += 1
        async for item in super().alist(config, **kwargs):
            yield item


async def test_prune_finds_expired_sessions_in_the_ledger_without_scanning_checkpoints() -> None:
    saver = ScanCountingSaver()
    shared = Persistence(saver, InMemoryStore(), "memory")
    config = {"teacher": {"validator": "atlas_graph.demo:validator"}}
    for thread_id in ("done-1", "done-2"):
        await arun("Add 1 and 2.", config=config, mode="auto", thread_id=thread_id,
                   agent=agent(), persistence=shared)  # fmt: skip
    await arun("Do the sums.", config=HUMAN, mode="escalate", thread_id="waiting-2",
               agent=agent(), models={"teacher": reviewer()}, persistence=shared)  # fmt: skip
    # a finished session forked back to before planning is unfinished again: kept
    history = await asession_history("done-2", config, persistence=shared)
    after_probe = next(row for row in history if row["node"] == ["probe"])
    await afork_session("done-2", after_probe["checkpoint_id"], config=config,
                        guidance="use a calculator", persistence=shared)  # fmt: skip
    # a thread run without a store has no ledger record
    await arun("Add 3 and 4.", config=config, mode="auto", thread_id="unrecorded-1",
               agent=agent(), checkpointer=saver)  # fmt: skip

    report = await aprune_sessions(0, config=config, persistence=shared)
    assert report.threads == ["done-1"]
    assert saver.full_scans == 0  # the ledger named the candidates
    for thread_id in ("done-2", "waiting-2", "unrecorded-1"):
        assert await saver.aget_tuple({"configurable": {"thread_id": thread_id}}) is not None
    assert await saver.aget_tuple({"configurable": {"thread_id": "done-1"}}) is None

    report = await aprune_sessions(0, config=config, unrecorded=True, persistence=shared)
    assert report.threads == ["unrecorded-1"]  # opt-in scan for threads without a record
    assert saver.full_scans == 1


def test_sync_forms_work_from_plain_code() -> None:
    config = {"teacher": {"validator": "atlas_graph.demo:validator"}}
    waiting = run("Do the sums.", config=HUMAN, mode="escalate", thread_id="sync-1",
                  agent=agent(), models={"teacher": reviewer()})  # fmt: skip
    assert waiting.waiting_for is not None
    rows = list_sessions(config)
    assert [(row["session_id"], row["status"]) for row in rows] == [("sync-1", "waiting")]
    assert show_session("sync-1", config)["interrupts"]
    assert session_history("sync-1", config, limit=2)[0]["next"] == ["review"]
    result = approve_plan("sync-1", config=HUMAN, agent=agent(),
                          models={"teacher": reviewer()})  # fmt: skip
    assert result.status == "succeeded"
    assert prune_sessions(0, config=config).threads == ["sync-1"]
    with pytest.raises(TypeError, match="async function"):
        resume_session("sync-1", persistence=object())


async def test_sync_forms_work_inside_a_running_loop() -> None:
    await arun("Add 1 and 2.", config=HUMAN, mode="auto", thread_id="loop-1", agent=agent())
    rows = list_sessions(HUMAN)  # as in a notebook cell
    assert [(row["session_id"], row["status"]) for row in rows] == [("loop-1", "succeeded")]
    assert show_session("loop-1", HUMAN)["finished"] is True


# --------------------------------------------------------------------------- CLI


def write_config(folder: Path) -> Path:
    demo = (Path(__file__).parent.parent / "atlas_graph/examples/offline_demo.yaml").read_text()
    assert "plan_cache_seconds: 300\n" in demo
    path = folder / "human.yaml"
    path.write_text(demo.replace("plan_cache_seconds: 300\n",
                                 "plan_cache_seconds: 300\n  plan_approval: human\n"))  # fmt: skip
    return path


def test_cli_approval_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(write_config(tmp_path))
    task = "Add 1200 and 340, multiply 12 by 9, then add both results."
    code = main(["run", task, "-c", config, "--mode", "escalate", "--thread-id", "cli-1",
                 "--no-stream"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 3
    assert "session cli-1 waits for plan approval:" in out
    assert "atlas-graph approve cli-1" in out

    assert main(["sessions", "-c", config]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split()[:5] == ["SESSION", "STATUS", "LANE", "REWARD", "AGE"]
    assert listing[1].split()[:2] == ["cli-1", "waiting"]

    assert main(["show", "cli-1", "-c", config]) == 0
    shown = capsys.readouterr().out
    assert "pending: review" in shown and "waiting for: plan_approval" in shown

    bad_plan = tmp_path / "bad.json"
    bad_plan.write_text(json.dumps({"steps": [{"id": 1, "description": "x", "depends_on": [1]}]}))
    assert main(["approve", "cli-1", "-c", config, "--plan", str(bad_plan)]) == 2
    assert "cannot be scheduled" in capsys.readouterr().err

    assert main(["approve", "cli-1", "-c", config]) == 0
    assert "succeeded: lane escalate, 3 step(s)" in capsys.readouterr().out
    # a finished session: nothing to approve or resume, a usage error that changes nothing
    assert main(["approve", "cli-1", "-c", config]) == 2
    assert "already finished" in capsys.readouterr().err
    assert main(["resume", "cli-1", "-c", config]) == 2
    assert "already finished" in capsys.readouterr().err

    assert main(["history", "cli-1", "-c", config, "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    assert history[0]["node"] == ["finalize"]
    after_probe = next(row for row in history if row["node"] == ["probe"])

    assert main(["fork", "cli-1", "-c", config, "--checkpoint", after_probe["checkpoint_id"],
                 "--set", "task=not json"]) == 2  # fmt: skip
    assert "--set task: value is not JSON" in capsys.readouterr().err
    assert main(["fork", "cli-1", "-c", config, "--checkpoint", after_probe["checkpoint_id"],
                 "--set", 'session_metadata={"forked": true}']) == 0  # fmt: skip
    assert "atlas-graph resume cli-1" in capsys.readouterr().out
    assert main(["resume", "cli-1", "-c", config]) == 3  # the fork plans anew and asks again
    capsys.readouterr()
    assert main(["approve", "cli-1", "-c", config, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["session_metadata"]["forked"] is True

    assert main(["prune", "-c", config, "--older-than", "0", "--ledger"]) == 0
    assert "deleted checkpoints of 1 finished session(s) and 1 ledger record(s)" in (
        capsys.readouterr().out
    )
    assert main(["show", "cli-1", "-c", config]) == 2
    assert "no session cli-1" in capsys.readouterr().err


def test_cli_storage_errors_hide_passwords(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "pg.yaml"
    config.write_text("storage:\n  database_url: postgresql://atlas:hunter2@127.0.0.1:1/atlas\n")
    assert main(["sessions", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert "cannot connect to PostgreSQL at postgresql://atlas:***@127.0.0.1:1/atlas" in err
    assert "hunter2" not in err


async def test_plain_update_state_at_a_routing_checkpoint_continues() -> None:
    """A fork as LangGraph users (and Studio) make it: ``update_state(config, values)``."""
    from langgraph.checkpoint.memory import InMemorySaver

    from atlas_graph.graph import create_atlas_graph

    student = agent()
    config = {"storage": {"backend": "memory"},
              "teacher": {"validator": "atlas_graph.demo:validator"}}  # fmt: skip
    graph = create_atlas_graph(config, agent=student, models={"teacher": reviewer()}).compile(
        checkpointer=InMemorySaver()
    )
    thread = {"configurable": {"thread_id": "plain-1"}}
    await graph.ainvoke({"task": "Do the sums.", "mode": "paired"}, thread)
    history = [item async for item in graph.aget_state_history(thread)]
    after_probe = next(h for h in history if h.next == ("execute",) and h.values.get("lane"))
    forked = await graph.aupdate_state(after_probe.config, {"lane": "escalate"})
    assert (await graph.aget_state(forked)).next == ("plan",)
    final = await graph.ainvoke(None, forked)
    assert final["lane"] == "escalate" and final["status"] == "succeeded"
    assert final.get("plan")
