"""The step scheduler: send every ready step to its own execute → validate → guide branch.

Steps whose dependencies have finished run concurrently (``Send``), bounded by
``orchestration.max_parallel_steps``; each branch returns here when its step is done, so a
plan costs its critical path rather than the sum of its steps.
"""

from __future__ import annotations

from typing import Any

from langgraph.types import Command, Send

from atlas_graph.events import utc_now
from atlas_graph.plans import ready_step_ids, single_step_plan
from atlas_graph.services import Services
from atlas_graph.state import AtlasState, StepSpec, StepTask
from atlas_graph.student import Node

FINISHED = ("succeeded", "failed")


def ancestors(steps: list[StepSpec], step_id: int) -> list[int]:
    """Every step ``step_id`` depends on, directly or not, in id order."""
    depends = {step["id"]: step["depends_on"] for step in steps}
    seen: set[int] = set()
    pending = list(depends.get(step_id, []))
    while pending:
        current = pending.pop()
        if current not in seen:
            seen.add(current)
            pending.extend(depends.get(current, []))
    return sorted(seen)


def make_dispatch_node(services: Services) -> Node:
    """Start ready steps; move on to synthesis once every step has finished."""
    limit = services.config.orchestration.max_parallel_steps

    async def dispatch(state: AtlasState) -> Command[Any]:
        update: dict[str, Any] = {}
        plan = state.get("plan")
        if plan is None:  # lanes without planning run the task as one step
            plan = single_step_plan(state["task"])
            update["plan"] = plan
        records = state.get("steps", {})
        started = {int(step_id) for step_id in records}
        finished = {
            int(step_id) for step_id, record in records.items() if record.get("status") in FINISHED
        }
        running = len(started - finished)
        ready = ready_step_ids(plan["steps"], finished, started)[: max(0, limit - running)]
        if not ready:
            return Command(update=update, goto=[] if running else "synthesize")
        by_id = {step["id"]: step for step in plan["steps"]}
        new_records: dict[str, Any] = {}
        sends: list[Send] = []
        for step_id in ready:
            prior = {
                str(dep): records.get(str(dep), {}).get("output", "")
                for dep in ancestors(plan["steps"], step_id)
            }
            new_records[str(step_id)] = {
                "step_id": step_id,
                "status": "running",
                "attempts": [],
                "guidance": [],
                "prior_results": prior,
                "started_at": utc_now(),
            }
            payload: StepTask = {
                "task": state["task"],
                "lane": state["lane"],
                "session_id": state.get("session_id", ""),
                "session_metadata": state.get("session_metadata", {}),
                "step": by_id[step_id],
                "attempt": 1,
                "guidance": [],
                "prior_results": prior,
            }
            sends.append(Send("execute", payload))
        update["steps"] = new_records
        return Command(update=update, goto=sends)

    return dispatch
