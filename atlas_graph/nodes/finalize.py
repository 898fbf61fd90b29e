"""The finalize node: close the session with its status, answer and end time."""

from __future__ import annotations

from typing import Any

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


def budget_record(services: Services, state: AtlasState) -> AtlasState:
    """The session's spending against its budget, and a plan note when it ran out.

    Routes stop retries, new steps and the reward once the budget is spent; this says so in
    the session's state, where reports and ``Result.budget`` read it.
    """
    budget = services.budget
    assert budget is not None
    usage = state.get("usage", {})
    reason = budget.exceeded(usage)
    plan = state.get("plan")
    started = set(state.get("steps", {}))
    steps = plan["steps"] if plan else []
    skipped = [step["id"] for step in steps if str(step["id"]) not in started]
    record: dict[str, Any] = {
        "max_tokens": budget.max_tokens,
        "max_cost": budget.max_cost,
        "tokens": sum(int(values.get("total_tokens", 0)) for values in usage.values()),
        "cost": budget.ledger.cost(usage)["total"],
        "exceeded": reason is not None,
        "reason": reason,
        "skipped_steps": skipped if reason else [],
    }
    update: AtlasState = {"budget": record}
    if reason:
        update["plan_notes"] = [f"budget exceeded: {reason}; the loop stopped early"]
    return update


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
        update: AtlasState = {"cost": services.ledger.cost(state.get("usage", {}))}
        if services.budget is not None:
            update.update(budget_record(services, state))
            if (update.get("budget") or {}).get("skipped_steps"):
                status = "failed"  # steps the budget never started are not done
        completed_at = utc_now()
        update["status"] = status
        update["completed_at"] = completed_at
        if auto_approve and not state.get("review_status"):  # a drift alert set pending
            update["review_status"] = "approved"
            update["review_notes"] = "auto-approved (runtime_safety.review.auto_approve)"
        # the record is the state after this update; plan_notes is a list the reducer extends
        notes = [*state.get("plan_notes", []), *update.get("plan_notes", [])]
        recorded: AtlasState = {**state, **update, "plan_notes": notes}
        await arecord_end(runtime.store, recorded, status=status, completed_at=completed_at)
        return update

    return finalize
