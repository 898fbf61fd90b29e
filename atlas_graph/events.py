"""Typed events that nodes write to LangGraph's custom stream.

Consumers (the console, a UI, a publisher) read them from
``graph.astream(..., stream_mode=["custom", "updates"])``; nothing is kept in globals.
"""

from __future__ import annotations

from collections.abc import Callable
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
    "guidance",
    "retry",
    "step_finished",
    "reward_tier1",
    "arbiter_escalation",
    "reward",
    "memory_update",
    "final_answer",
    "session_finished",
    "session_failed",
]
Actor = Literal["system", "student", "teacher", "judge", "arbiter", "probe", "tool"]


class AtlasEvent(TypedDict):
    """One thing that happened in a session, addressed by session, step and attempt."""

    atlas_event: EventType
    session_id: str
    actor: Actor
    step_id: int | None
    attempt: int | None
    data: dict[str, Any]
    at: str


def utc_now() -> str:
    """ISO 8601 timestamp in UTC, the one clock format of state and events."""
    return datetime.now(UTC).isoformat()


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
    """Write one event to the stream (a no-op when nobody streams custom events)."""
    if writer is None:
        return
    writer(
        AtlasEvent(
            atlas_event=event,
            session_id=session_id,
            actor=actor,
            step_id=step_id,
            attempt=attempt,
            data=data,
            at=utc_now(),
        )
    )


def is_event(chunk: Any) -> bool:
    """Tell atlas events apart from other custom stream chunks."""
    return isinstance(chunk, dict) and "atlas_event" in chunk
