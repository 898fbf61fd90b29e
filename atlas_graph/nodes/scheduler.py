"""The step scheduler: send every ready step to its own execute → validate → guide branch.

Steps whose dependencies have finished run concurrently (``Send``), bounded by
``orchestration.max_parallel_steps``. The first ready steps start straight from the node that
settled the plan; in a stepwise plan each branch returns to ``dispatch`` when its step is done,
so a plan costs its critical path rather than the sum of its steps. A single-shot plan's step
is the answer itself and its branch goes straight on to the reward (or finalize).
"""

from __future__ import annotations

from typing import Any

from langgraph.types import Command, Send

from atlas_graph.plans import ready_step_ids
from atlas_graph.services import Node, Services
from atlas_graph.state import AtlasState, StepSpec, StepTask

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


def ready_sends(state: AtlasState, services: Services) -> tuple[list[Send], int]:
    """Branches for the steps that can start now, and how many steps are still running.

    Each branch writes its own step record when it starts (see ``execute``), so starting steps
    needs no state write here and routers can start them straight after planning.
    """
    plan = state["plan"]
    records = state.get("steps", {})
    started = {int(step_id) for step_id in records}
    finished = {
        int(step_id) for step_id, record in records.items() if record.get("status") in FINISHED
    }
    running = len(started - finished)
    limit = services.config.orchestration.max_parallel_steps
    ready = ready_step_ids(plan["steps"], finished, started)[: max(0, limit - running)]
    by_id = {step["id"]: step for step in plan["steps"]}
    # a single-shot plan's one step is the answer: no synthesis, straight on to the reward
    then = "dispatch"
    if plan["execution_mode"] == "single_shot":
        then = services.after_answer(state["lane"])
    sends = []
    for step_id in ready:
        payload: StepTask = {
            "task": state["task"],
            "lane": state["lane"],
            "session_id": state.get("session_id", ""),
            "session_metadata": state.get("session_metadata", {}),
            "step": by_id[step_id],
            "attempt": 1,
            "guidance": [],
            "prior_results": {
                str(dep): records.get(str(dep), {}).get("output", "")
                for dep in ancestors(plan["steps"], step_id)
            },
            "then": then,
        }
        if state.get("persona_context"):
            payload["persona_context"] = state["persona_context"]
        sends.append(Send("execute", payload))
    return sends, running


def step_finished(task: StepTask, output: str) -> tuple[dict[str, Any], str]:
    """The state update and next node when a step's branch ends."""
    then = task.get("then", "dispatch")
    return ({} if then == "dispatch" else {"final_answer": output}), then


def make_dispatch_node(services: Services) -> Node:
    """Start steps that became ready; move on to synthesis once every step has finished."""

    async def dispatch(state: AtlasState) -> Command[Any]:
        sends, running = ready_sends(state, services)
        if sends:
            return Command(goto=sends)
        return Command(goto=[] if running else "synthesize")

    return dispatch
