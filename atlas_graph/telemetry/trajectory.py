"""The session's ``trajectory_events``: the export's record of what happened, oldest first.

Events are gathered per node run (see ``instrument.py``) and written to state in the shape the
session-trace export uses, ``{id, event: {type, name, data}, created_at}``. The channel keeps
at most ``orchestration.trajectory_event_limit`` entries: the limit travels with each batch,
because a reducer cannot read the graph's config.
"""

from __future__ import annotations

import os
from typing import Any

from typing_extensions import TypedDict  # JSON Schema of the graph's state (see state.py)

from atlas_graph.telemetry.events import AtlasEvent


class TrajectoryEvent(TypedDict):
    """One event as the export keeps it."""

    id: str
    event: dict[str, Any]
    created_at: str


class TrajectoryBatch(TypedDict):
    """What one node run adds to ``trajectory_events``, with the cap to apply."""

    append: list[TrajectoryEvent]
    limit: int


def trajectory_entry(event: AtlasEvent) -> TrajectoryEvent:
    """The export shape of one event: ``type`` is the event, ``name`` the actor.

    ``data`` carries the event's own fields plus its address (session, actor, step, attempt),
    so an entry reads on its own.
    """
    data: dict[str, Any] = {
        "session_id": event["session_id"],
        "actor": event["actor"],
        "step_id": event["step_id"],
        "attempt": event["attempt"],
        **event["data"],
    }
    return TrajectoryEvent(
        id=os.urandom(16).hex(),  # random 128-bit id; uuid4() costs five times more
        event={"type": event["atlas_event"], "name": event["actor"], "data": data},
        created_at=event["at"],
    )


def keep_trajectory(
    left: list[TrajectoryEvent] | None, right: list[TrajectoryEvent] | TrajectoryBatch | None
) -> list[TrajectoryEvent]:
    """Append a node run's events, then drop the oldest beyond the batch's limit.

    A plain list (e.g. from ``graph.update_state``) is appended without a cap. A limit of 0
    keeps nothing. The newest events are kept because they carry the outcome (steps finished,
    reward, final answer); the task itself is in the session record anyway.
    """
    current = list(left or [])
    if right is None:
        return current
    if isinstance(right, dict):
        current.extend(right["append"])
        limit = right["limit"]
        return current[-limit:] if limit > 0 else []
    current.extend(right)
    return current
