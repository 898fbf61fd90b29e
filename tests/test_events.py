"""Events: order per lane, their address fields, and the capped ``trajectory_events``."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

import pytest
from helpers import teacher_responder, verdict
from langgraph.graph import START, StateGraph
from langgraph.types import Command, Send

from atlas_graph.telemetry.events import emit, make_event
from atlas_graph.telemetry.instrument import _with_events, instrument_nodes
from atlas_graph.telemetry.trajectory import (
    TrajectoryBatch,
    TrajectoryEvent,
    keep_trajectory,
    trajectory_entry,
)
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

THREE_STEPS = [
    {"id": 1, "description": "first"},
    {"id": 2, "description": "second"},
    {"id": 3, "description": "third", "depends_on": [1, 2]},
]
SESSION_START = ["session_started", "triage_done", "lane_decided"]
ATTEMPT = ["step_attempt_started", "step_attempt_finished"]
VALIDATED = [*ATTEMPT, "validation_verdict", "step_finished"]
SESSION_END = ["final_answer", "session_finished"]


def teacher(**kwargs: Any) -> ScriptedChatModel:
    return ScriptedChatModel(responder=teacher_responder(**kwargs))


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["atlas_event"] for event in events]


@pytest.mark.parametrize(
    ("lane", "expected"),
    [
        ("auto", [*SESSION_START, *ATTEMPT, *SESSION_END]),
        ("paired", [*SESSION_START, *VALIDATED, "reward", *SESSION_END]),
        ("coach", [*SESSION_START, "plan_ready", "review_verdict", *VALIDATED, "reward",
                   *SESSION_END]),
    ],
)  # fmt: skip
async def test_event_order_per_lane(make_run: Any, lane: str, expected: list[str]) -> None:
    run = make_run(agent=ScriptedAgent(plan=THREE_STEPS), models={"teacher": teacher()})
    state = await run("do the thing", mode=lane)
    assert types(run.events) == expected
    # the state keeps the same events, in the export's shape, oldest first
    kept = state["trajectory_events"]
    assert [entry["event"]["type"] for entry in kept] == expected
    assert [entry["created_at"] for entry in kept] == [event["at"] for event in run.events]
    assert len({entry["id"] for entry in kept}) == len(kept)


async def test_escalate_events_name_each_step_and_attempt(make_run: Any) -> None:
    run = make_run(agent=ScriptedAgent(plan=THREE_STEPS), models={"teacher": teacher()})
    state = await run("do the thing", mode="escalate")
    got = types(run.events)
    assert got[:5] == [*SESSION_START, "plan_ready", "review_verdict"]
    assert got[-3:] == ["reward", *SESSION_END]
    for step_id in (1, 2, 3):
        mine = [e for e in run.events if e["step_id"] == step_id]
        assert types(mine) == VALIDATED
        assert {e["attempt"] for e in mine} == {1}
    # step 3 depends on 1 and 2: its first event comes after both finished
    finished = [i for i, e in enumerate(run.events) if e["atlas_event"] == "step_finished"]
    third = next(i for i, e in enumerate(run.events) if e["step_id"] == 3)
    assert third > max(finished[:2])
    # parallel branches lose no event on their way into state
    assert len(state["trajectory_events"]) == len(run.events)
    assert {e["session_id"] for e in run.events} == {"t1"}
    actors = {e["atlas_event"]: e["actor"] for e in run.events}
    assert actors["step_attempt_started"] == "student"
    assert actors["validation_verdict"] == "teacher"
    assert actors["lane_decided"] == "probe"


async def test_retry_event_sits_between_verdict_and_guidance(make_run: Any) -> None:
    scores = iter([0.2, 0.9])
    run = make_run(
        {"orchestration": {"max_retries": 2}},
        agent=ScriptedAgent(outputs={1: ["rough", "better"]}),
        models={"teacher": teacher(validate=lambda _: verdict(True, next(scores), "more"))},
    )
    await run("write it", mode="coach")
    step = [e for e in run.events if e["step_id"] == 1]
    assert types(step) == [
        *ATTEMPT, "validation_verdict", "retry", "guidance", *VALIDATED,
    ]  # fmt: skip
    retry = next(e for e in step if e["atlas_event"] == "retry")
    assert retry["attempt"] == 1
    assert retry["actor"] == "system"
    assert retry["data"] == {"next_attempt": 2, "max_attempts": 3, "score": 0.2}
    assert [e["attempt"] for e in step if e["atlas_event"] == "step_attempt_started"] == [1, 2]


@pytest.mark.parametrize("limit", [0, 3])
async def test_trajectory_events_are_capped_keeping_the_newest(make_run: Any, limit: int) -> None:
    run = make_run(
        {"orchestration": {"trajectory_event_limit": limit}},
        agent=ScriptedAgent(plan=THREE_STEPS),
        models={"teacher": teacher()},
    )
    state = await run("do the thing", mode="escalate")
    kept = [entry["event"]["type"] for entry in state.get("trajectory_events", [])]
    assert kept == types(run.events)[-limit:] if limit else kept == []
    assert len(run.events) > 3  # the stream itself is never capped


async def test_intermediate_events_off_keeps_only_session_events(make_run: Any) -> None:
    run = make_run(
        {"orchestration": {"emit_intermediate_steps": False}},
        agent=ScriptedAgent(),
        models={"teacher": teacher()},
    )
    state = await run("do it", mode="paired")
    expected = [*SESSION_START, "step_finished", "reward", *SESSION_END]
    assert types(run.events) == expected
    assert [e["event"]["type"] for e in state["trajectory_events"]] == expected


def test_trajectory_entry_has_the_export_shape() -> None:
    event = make_event(
        "validation_verdict", session_id="s", actor="teacher", step_id=2, attempt=1, score=0.5
    )
    entry = trajectory_entry(event)
    assert set(entry) == {"id", "event", "created_at"}
    assert entry["event"] == {
        "type": "validation_verdict",
        "name": "teacher",
        "data": {"session_id": "s", "actor": "teacher", "step_id": 2, "attempt": 1, "score": 0.5},
    }
    assert entry["created_at"] == event["at"]


def test_reducer_appends_plain_lists_and_caps_batches() -> None:
    entries = [
        trajectory_entry(make_event("guidance", session_id="s", actor="teacher", n=n))
        for n in range(5)
    ]
    kept = keep_trajectory(entries[:2], entries[2:3])
    assert kept == entries[:3]
    kept = keep_trajectory(kept, TrajectoryBatch(append=entries[3:], limit=4))
    assert kept == entries[1:]
    assert keep_trajectory(kept, None) == kept


def test_events_join_every_kind_of_node_return() -> None:
    batch = TrajectoryBatch(append=[], limit=9)
    assert _with_events(None, batch) == {"trajectory_events": batch}
    assert _with_events({"a": 1}, batch) == {"a": 1, "trajectory_events": batch}
    sent = Send("execute", {})
    command = _with_events(Command(update={"a": 1}, goto=sent), batch)
    assert command.update == {"a": 1, "trajectory_events": batch}
    assert command.goto == sent
    assert _with_events(Command(goto="x"), batch).update == {"trajectory_events": batch}
    pairs = _with_events(Command(update=[("a", 1)]), batch).update
    assert pairs == [("a", 1), ("trajectory_events", batch)]
    to_parent = Command(graph=Command.PARENT, update={"a": 1})
    assert _with_events(to_parent, batch) is to_parent


def test_emit_without_a_stream_or_a_node_is_a_no_op() -> None:
    seen: list[Any] = []
    emit(None, "retry", session_id="s", actor="system")
    emit(seen.append, "retry", session_id="s", actor="system", step_id=1, attempt=2)
    assert [(e["atlas_event"], e["step_id"], e["attempt"]) for e in seen] == [("retry", 1, 2)]


class _Tiny(TypedDict, total=False):
    n: int
    trajectory_events: Annotated[list[TrajectoryEvent], keep_trajectory]


async def test_any_graph_node_keeps_its_events_sync_async_and_command() -> None:
    """The wrapper serves nodes that return None, a dict or a Command, sync or async."""

    def sync_node(state: _Tiny) -> None:
        emit(None, "learning_update", session_id="s", actor="system", note="sync")

    async def async_node(state: _Tiny) -> dict[str, Any]:
        emit(None, "triage_done", session_id="s", actor="system")
        return {"n": 1}

    async def command_node(state: _Tiny) -> Command[Any]:
        emit(None, "retry", session_id="s", actor="system", step_id=1, attempt=1)
        return Command(update={"n": 2}, goto="__end__")

    async def quiet_node(state: _Tiny) -> dict[str, Any]:
        return {"n": 3}

    builder = StateGraph(_Tiny)
    for node in (sync_node, async_node, quiet_node, command_node):
        builder.add_node(node)
    builder.add_edge(START, "sync_node")
    builder.add_edge("sync_node", "async_node")
    builder.add_edge("async_node", "quiet_node")
    builder.add_edge("quiet_node", "command_node")
    instrument_nodes(builder, event_limit=10)
    state = await builder.compile().ainvoke({"n": 0})
    assert state["n"] == 2
    kept = [
        (e["event"]["type"], e["event"]["data"].get("note")) for e in state["trajectory_events"]
    ]
    assert kept == [("learning_update", "sync"), ("triage_done", None), ("retry", None)]
