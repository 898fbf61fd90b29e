"""Typed events that nodes write to LangGraph's custom stream.

Consumers (the console, a UI, a publisher) read them from
``graph.astream(..., stream_mode=["custom", "updates"])``. While a node runs, the events it
emits are also gathered for the session's ``trajectory_events`` (see ``trajectory.py``); the
gathering list lives in a ``ContextVar`` that the node wrapper sets for its own task, so
parallel step branches never see each other's events and nothing is kept in globals.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict

EventType = Literal[
    "session_started",
    "triage_done",
    "lane_decided",
    "plan_ready",
    "review_verdict",
    "plan_approval_requested",
    "step_attempt_started",
    "tool_call",
    "tool_result",
    "step_attempt_finished",
    "validation_verdict",
    "not_judged",
    "retry",
    "guidance",
    "step_finished",
    "reward_tier1",
    "arbiter_escalation",
    "reward",
    "learning_update",
    "final_answer",
    "session_finished",
    "session_failed",
]
Actor = Literal["system", "student", "teacher", "judge", "arbiter", "probe", "tool"]
ControlType = Literal["session_started", "session_completed"]


class AtlasEvent(TypedDict):
    """One thing that happened in a session, addressed by session, step and attempt."""

    atlas_event: EventType
    session_id: str
    actor: Actor
    step_id: int | None
    attempt: int | None
    data: dict[str, Any]
    at: str


class ControlEvent(TypedDict):
    """A publisher's bracket around one session: it started, or it completed (either way)."""

    atlas_control: ControlType
    session_id: str
    data: dict[str, Any]
    at: str


_collector: ContextVar[list[AtlasEvent] | None] = ContextVar(
    "atlas_graph_event_collector", default=None
)


def utc_now() -> str:
    """ISO 8601 timestamp in UTC, the one clock format of state and events."""
    return datetime.now(UTC).isoformat()


def make_event(
    event: EventType,
    *,
    session_id: str,
    actor: Actor,
    step_id: int | None = None,
    attempt: int | None = None,
    **data: Any,
) -> AtlasEvent:
    """Build an event without emitting it (the runner uses this for ``session_failed``)."""
    return AtlasEvent(
        atlas_event=event,
        session_id=session_id,
        actor=actor,
        step_id=step_id,
        attempt=attempt,
        data=data,
        at=utc_now(),
    )


def emit(
    writer: Callable[[Any], None] | None,
    event: EventType,
    *,
    session_id: str,
    actor: Actor,
    step_id: int | None = None,
    attempt: int | None = None,
    **data: Any,
) -> None:
    """Write one event to the stream and to the running node's trajectory, if any."""
    collector = _collector.get()
    if writer is None and collector is None:
        return
    record = make_event(
        event, session_id=session_id, actor=actor, step_id=step_id, attempt=attempt, **data
    )
    if writer is not None:
        writer(record)
    if collector is not None:
        collector.append(record)


def control_event(kind: ControlType, session_id: str, **data: Any) -> ControlEvent:
    """A session bracket for publishers."""
    return ControlEvent(atlas_control=kind, session_id=session_id, data=data, at=utc_now())


def collect_events(into: list[AtlasEvent]) -> Token[list[AtlasEvent] | None]:
    """Gather the events emitted from here on in this task (and tasks it starts) in ``into``."""
    return _collector.set(into)


def stop_collecting(token: Token[list[AtlasEvent] | None]) -> None:
    """Stop the gathering that ``collect_events`` began."""
    _collector.reset(token)


def is_event(chunk: Any) -> bool:
    """Tell atlas events apart from other custom stream chunks."""
    return isinstance(chunk, dict) and "atlas_event" in chunk
