"""Human plan approval (``teacher.plan_approval: human``).

The review node runs in two passes so that nothing before the pause ever runs twice:

1. The teacher reviews the draft (the LLM call); instead of scheduling the plan, the node
   stores the reviewed plan as a ``requested`` approval in state. That write is checkpointed.
2. The node runs again (routed back by the graph), finds the request in state and calls
   LangGraph's ``interrupt()`` with it. A resumed run re-enters only this second pass, which
   makes no model call, so the decision is applied to the plan the person saw.

Decisions (``Command(resume=...)``): ``{"action": "approve"}``, ``{"action": "edit", "plan":
...}`` (any shape ``parse_plan`` accepts) or ``{"action": "reject", "notes": "..."}``, which
sends the student back to redraft with the notes as concerns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Required, TypedDict

from langgraph.types import interrupt
from pydantic import JsonValue

from atlas_graph.errors import ApprovalError
from atlas_graph.plans import PlanParseError, parse_plan, plan_issues, single_step_plan
from atlas_graph.state import AtlasState, Plan, StepSpec
from atlas_graph.telemetry.events import utc_now

ACTIONS = ("approve", "edit", "reject")


class PlanDecision(TypedDict, total=False):
    """A person's answer to a pending plan approval (``arun(..., resume=decision)``)."""

    action: Required[Literal["approve", "edit", "reject"]]
    plan: JsonValue
    """The edited plan (``edit``): steps in any shape ``parse_plan`` accepts."""
    notes: str
    """Why; a rejected plan goes back to the student with these as concerns."""


def approval_request(plan: Plan, review: dict[str, Any]) -> dict[str, Any]:
    """The state record of a plan that waits for approval."""
    return {"status": "requested", "plan": plan, "review": review, "requested_at": utc_now()}


def edited_plan(raw: Any) -> list[StepSpec]:
    """Steps of an edited plan, or ``ApprovalError`` saying what is wrong with it."""
    if isinstance(raw, dict) and "steps" in raw and not raw.get("steps"):
        raise ApprovalError("the edited plan has no steps")
    try:
        steps = parse_plan(raw)
    except PlanParseError as error:
        raise ApprovalError(f"the edited plan cannot be read: {error}") from None
    issues = plan_issues(steps)
    if issues:
        raise ApprovalError("the edited plan cannot be scheduled: " + "; ".join(issues))
    return steps


def check_decision(decision: Any) -> dict[str, Any]:
    """Validate a decision before resuming, so bad input loses nothing."""
    if not isinstance(decision, dict) or decision.get("action") not in ACTIONS:
        raise ApprovalError(f"a decision is {{'action': one of {', '.join(ACTIONS)}, ...}}")
    if decision["action"] == "edit":
        edited_plan(decision.get("plan"))
    return decision


def decide(
    state: AtlasState, *, single_step: bool, runnable: Callable[[list[StepSpec]], Plan]
) -> AtlasState:
    """Pause for the decision (second pass) and turn it into a state update.

    Args:
        state: The session, holding a ``requested`` approval.
        single_step: The lane collapses plans into one step (coach).
        runnable: Turns a list of steps into the plan to run.
    """
    request = state["plan_approval"] or {}
    decision = check_decision(
        interrupt({
            "type": "plan_approval",
            "session_id": state.get("session_id", ""),
            "plan": request.get("plan"),
            "review": request.get("review"),
            "actions": list(ACTIONS),
        })
    )  # fmt: skip
    action, notes = decision["action"], decision.get("notes")
    record = {**request, "status": f"{action}d" if action != "edit" else "edited",
              "decided_at": utc_now(), "notes": notes}  # fmt: skip
    if action == "reject":
        concern = f"a person rejected the plan: {notes}" if notes else "a person rejected the plan"
        return {
            "plan_approval": record,
            "review": {**(request.get("review") or {}), "approved": False, "concerns": [concern]},
            "plan_notes": [concern],
        }
    plan: Plan = request["plan"]
    if action == "edit":
        plan = runnable(edited_plan(decision.get("plan")))
        if single_step:
            plan = single_step_plan(state["task"], plan["steps"])
        record["plan"] = plan
    return {
        "plan_approval": record,
        "plan": plan,
        "plan_notes": [f"plan {record['status']} by a person" + (f": {notes}" if notes else "")],
    }
