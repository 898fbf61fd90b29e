"""Every "where next" of the supervised loop, beside ``graph.py``.

Each route is a function of the state (or of a step branch's payload) whose return type names
every place it can go: ``Literal`` node names, and ``Annotated[Send, To(node)]`` for branches
started with ``Send``. ``destinations()`` reads those types, so the ``destinations=`` that
``graph.py`` gives each node (what LangGraph draws and checks) cannot disagree with the code.

The session routes (after probe, review, dispatch, synthesize and reward) are conditional
edges, so a plain ``update_state`` at a checkpoint those nodes wrote (a fork, Studio's
``client.threads.update_state``) routes the changed state again and the session continues.
Routing inside the node with ``Command(goto)`` is cheaper (a conditional edge copies the
graph's channels to show its router the state after the writes) but leaves such a fork with
nothing to run; ``bench/`` measures the difference.

The step loop (execute → validate → guide → execute) is a ``Send`` payload, ``StepTask``; its
``then`` is the baton a branch carries: where it goes when its step is done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from langgraph.types import Send

from atlas_graph.lanes import Lane, LanePolicy
from atlas_graph.plans import ancestors, ready_step_ids
from atlas_graph.pricing import Budget
from atlas_graph.state import AtlasState, RouteView, StepExit, StepTask, Verdict
from atlas_graph.usage import Usage


@dataclass(frozen=True)
class To:
    """Marks a ``Send``-typed route with the node its branches start at."""

    node: str


Branches = Annotated[list[Send], To("execute")]
"""Step branches to start now; empty while running branches finish first."""
ToValidate = Annotated[Send, To("validate")]
ToGuide = Annotated[Send, To("guide")]
ToExecute = Annotated[Send, To("execute")]
AfterReward = Literal["learn", "finalize"]
AfterAnswer = Literal["reward", "learn", "finalize"]

FINISHED = ("succeeded", "failed")
"""Step statuses that end a step's branch."""


# --------------------------------------------------------------------------- the lane's rules


def passes(verdict: Verdict, retry_threshold: float) -> bool:
    """An attempt passes when the teacher calls it valid and scores it at the threshold or above."""
    return bool(verdict["valid"]) and float(verdict["score"]) >= retry_threshold


def should_retry(verdict: Verdict, attempt: int, max_retries: int, retry_threshold: float) -> bool:
    """Retry a failed attempt while the step has attempts left (``attempt`` is 1-based)."""
    return not passes(verdict, retry_threshold) and attempt <= max_retries


def awaiting_approval(state: RouteView) -> bool:
    """Whether the session holds a plan that waits for a person's decision."""
    return (state.get("plan_approval") or {}).get("status") == "requested"


def step_answer(then: StepExit, output: str) -> AtlasState:
    """The state update of a finished step: a single-shot step's output is the answer."""
    return {} if then == "dispatch" else {"final_answer": output}


# --------------------------------------------------------------------------- the routes


class Routes:
    """The routes of one graph: they read its lane table and whether learning has work.

    Args:
        policies: The lane table (config overrides applied).
        learns: Whether the learn node has work; sessions skip it (and its superstep) if not.
        retry_threshold: The score an attempt needs to pass (``rim.retry_threshold``).
        max_parallel_steps: How many step branches run at once.
        budget: The session's spending limit (``orchestration.budget``): once usage reaches
            it, no retry, no new step and no reward call; the session ends with what it has.
    """

    def __init__(
        self,
        policies: Mapping[Lane, LanePolicy],
        *,
        learns: bool,
        retry_threshold: float,
        max_parallel_steps: int,
        budget: Budget | None = None,
    ) -> None:
        self.policies = policies
        self.learns = learns
        self.retry_threshold = retry_threshold
        self.max_parallel_steps = max_parallel_steps
        self.budget = budget

    def over_budget(self, usage: Mapping[str, Usage] | None) -> str | None:
        """Why the session has spent its budget, or None (also when it has no budget)."""
        return self.budget.exceeded(usage) if self.budget is not None else None

    # ---- the session

    def after_probe(self, state: RouteView) -> Literal["plan"] | Branches:
        """Lanes that plan go to the student's plan; the others start their one step."""
        if self.policies[state["lane"]].plan:
            return "plan"
        return self.ready_sends(state)[0]

    def after_review(self, state: RouteView) -> Literal["plan", "review"] | Branches:
        """An approved plan starts; a rejected one is redrafted; a person's turn pauses."""
        if awaiting_approval(state):
            return "review"  # the review pauses for a person's decision on its second pass
        return self.ready_sends(state)[0] if state.get("plan") else "plan"

    def after_dispatch(self, state: RouteView) -> Literal["synthesize"] | Branches:
        """Start steps that became ready; synthesize once every step has finished."""
        sends, running = self.ready_sends(state)
        if sends and self.over_budget(state.get("usage")):
            sends = []  # over budget: start nothing new, synthesize what the steps produced
        if sends or running:
            return sends
        return "synthesize"

    def after_synthesize(self, state: RouteView) -> AfterAnswer:
        """The answer of a stepwise plan goes on to the reward, if its lane scores."""
        return self.after_answer(state["lane"], state.get("usage"))

    def after_reward(self, state: RouteView) -> Literal["arbiter"] | AfterReward:
        """The arbiter when a judge escalated, else learning (or finalize)."""
        reward = state.get("reward") or {}
        return "arbiter" if reward.get("raw", {}).get("pending_arbiter") else self.after_arbiter()

    def after_arbiter(self) -> AfterReward:
        """Learning when it has work to do, else straight to finalize (fixed per graph)."""
        return "learn" if self.learns else "finalize"

    def after_answer(self, lane: Lane, usage: Mapping[str, Usage] | None = None) -> AfterAnswer:
        """Where a session goes once it has its answer: the reward, if its lane scores and
        the session is within its budget."""
        if self.policies[lane].reward and not self.over_budget(usage):
            return "reward"
        return self.after_arbiter()

    def step_exit(self, task: StepTask) -> StepExit:
        """Where a finished step's branch goes; a single shot over budget skips the reward."""
        then = task.get("then", "dispatch")
        if then == "reward" and self.over_budget(task.get("spent")):
            return self.after_arbiter()
        return then

    # ---- the step loop

    def after_execute(self, task: StepTask, attempt: Mapping[str, Any]) -> ToValidate | StepExit:
        """The teacher validates the attempt in lanes that validate; else the step is done."""
        if self.policies[task["lane"]].validate:
            return Send("validate", {**task, **attempt})
        return self.step_exit({**task, "spent": attempt.get("spent", task.get("spent", {}))})

    def after_validate(self, task: StepTask, verdict: Verdict | None) -> ToGuide | StepExit:
        """A failed attempt with attempts left goes to the teacher's guidance; else done.

        An attempt the teacher could not judge (``None``) is never retried: the fault is not
        the student's, and guidance would have nothing to say. Nor is one whose session has
        spent its budget (``task["spent"]``).
        """
        max_retries = self.policies[task["lane"]].max_retries
        if (
            verdict is not None
            and should_retry(verdict, task["attempt"], max_retries, self.retry_threshold)
            and not self.over_budget(task.get("spent"))
        ):
            return Send("guide", {**task, "verdict": verdict})
        return self.step_exit(task)

    def after_guide(self, retry: StepTask) -> ToExecute:
        """The guided retry runs as the step's next attempt."""
        return Send("execute", retry)

    def ready_sends(self, state: RouteView) -> tuple[list[Send], int]:
        """Branches for the steps that can start now, and how many steps are still running.

        Each branch writes its own step record when it starts (see ``execute``), so starting
        steps needs no state write here and routers can start them straight after planning.
        """
        plan = state["plan"]
        records = state.get("steps", {})
        started = {int(step_id) for step_id in records}
        finished = {
            int(step_id) for step_id, record in records.items() if record.get("status") in FINISHED
        }
        running = len(started - finished)
        limit = max(0, self.max_parallel_steps - running)
        ready = ready_step_ids(plan["steps"], finished, started)[:limit]
        by_id = {step["id"]: step for step in plan["steps"]}
        # a single-shot plan's one step is the answer: no synthesis, straight on to the reward
        then: StepExit = "dispatch"
        if plan["execution_mode"] == "single_shot":
            then = self.after_answer(state["lane"], state.get("usage"))
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
                "spent": state.get("usage", {}),
            }
            if state.get("persona_context"):
                payload["persona_context"] = state["persona_context"]
            sends.append(Send("execute", payload))
        return sends, running


# --------------------------------------------------------------------------- wiring


def destinations(route: Callable[..., Any]) -> tuple[str, ...]:
    """Every node ``route`` can go to, read from its return type."""
    return tuple(dict.fromkeys(_targets(get_type_hints(route, include_extras=True)["return"])))


def _targets(annotation: Any) -> Iterator[str]:
    origin = get_origin(annotation)
    if origin is Literal:
        yield from get_args(annotation)
    elif origin is Annotated:
        yield from (mark.node for mark in annotation.__metadata__ if isinstance(mark, To))
    elif origin is Union or origin is UnionType:
        for argument in get_args(annotation):
            yield from _targets(argument)
