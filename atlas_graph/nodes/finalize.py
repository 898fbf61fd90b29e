"""The finalize node: close the session with its status, answer and end time."""

from __future__ import annotations

from langgraph.runtime import Runtime

from atlas_graph.services import AtlasContext, Node, Services
from atlas_graph.state import AtlasState, SessionStatus
from atlas_graph.storage.ledger import arecord_end
from atlas_graph.telemetry.events import utc_now


def session_status(state: AtlasState, success_threshold: float) -> SessionStatus:
    """``succeeded`` when every step passed and the reward, if any, reached the threshold."""
    steps = state.get("steps", {}).values()
    if not steps or any(record.get("status") != "succeeded" for record in steps):
        return "failed"
    reward = state.get("reward")
    if reward is not None and reward["score"] < success_threshold:
        return "failed"
    return "succeeded"


def make_finalize_node(services: Services) -> Node:
    """Record the outcome; the last checkpoint of a thread is its session record."""
    threshold = services.config.rim.success_threshold
    auto_approve = services.config.runtime_safety.review.auto_approve

    async def finalize(state: AtlasState, runtime: Runtime[AtlasContext]) -> AtlasState:
        status = session_status(state, threshold)
        session_id = state.get("session_id", "")
        answer = state.get("final_answer", "")
        services.emit(
            runtime, "final_answer", session_id=session_id, actor="student", answer=answer
        )
        reward = state.get("reward")
        services.emit(
            runtime, "session_finished", session_id=session_id, actor="system", status=status,
            lane=state.get("lane"), reward=reward["score"] if reward else None,
        )  # fmt: skip
        completed_at = utc_now()
        update: AtlasState = {"status": status, "completed_at": completed_at}
        if auto_approve and not state.get("review_status"):  # a drift alert set pending
            update["review_status"] = "approved"
            update["review_notes"] = "auto-approved (runtime_safety.review.auto_approve)"
        await arecord_end(
            runtime.store, {**state, **update}, status=status, completed_at=completed_at
        )
        return update

    return finalize
