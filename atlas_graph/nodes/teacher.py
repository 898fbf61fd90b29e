"""Teacher nodes: review the plan, validate each attempt, write guidance for retries.

The teacher is an LLM (``teacher.llm``) or Python callables (``teacher.validator``,
``teacher.plan_reviewer``) so that programmatic checks can supervise without a model.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from langgraph.types import Command
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from atlas_graph import prompts
from atlas_graph.callables import call_maybe_async
from atlas_graph.config import TeacherDuty
from atlas_graph.errors import ModelOutputError
from atlas_graph.models import ModelConfigError, usage_of
from atlas_graph.nodes.approval import approval_request, decide
from atlas_graph.plans import (
    PlanParseError,
    parse_plan,
    plan_issues,
    single_step_plan,
    stepwise_plan,
)
from atlas_graph.routes import awaiting_approval, passes, step_answer
from atlas_graph.services import AtlasContext, Node, Services
from atlas_graph.state import (
    AtlasState,
    AttemptRecord,
    PersonaContext,
    Plan,
    PlanDraft,
    StepRecord,
    StepSpec,
    StepTask,
    ToolCallRecord,
    Verdict,
)
from atlas_graph.storage.review_cache import acached_review, aremember_review, review_cache_key
from atlas_graph.structured import clamp_unit
from atlas_graph.telemetry.events import utc_now
from atlas_graph.usage import merge_usage


class TeacherVerdict(BaseModel):
    """The teacher's structured judgement of one attempt."""

    model_config = ConfigDict(extra="ignore")

    valid: bool
    score: float = Field(description="0 to 1")
    rationale: str = ""
    guidance: str = ""

    @field_validator("score", mode="before")
    @classmethod
    def _clamp(cls, value: Any) -> float:
        return clamp_unit(value)

    @field_validator("rationale", "guidance", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        return "" if value is None else str(value)

    def as_verdict(self) -> Verdict:
        """The verdict as the plain record state keeps (what ``model_dump`` gives)."""
        return {
            "valid": self.valid,
            "score": self.score,
            "rationale": self.rationale,
            "guidance": self.guidance,
        }


class PlanReview(BaseModel):
    """The teacher's structured review of a plan."""

    model_config = ConfigDict(extra="ignore")

    approved: bool
    concerns: list[str] = Field(default_factory=list)
    revised_plan: Any = None


class ValidationRequest(BaseModel):
    """What a Python validator receives."""

    task: str
    step: dict[str, Any]
    output: str
    attempt: int
    prior_results: dict[str, str]
    guidance: list[str]
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    """The attempt's tool calls with their results (``round, id, name, args, output, is_error``)."""


class PlanReviewRequest(BaseModel):
    """What a Python plan reviewer receives."""

    task: str
    steps: list[StepSpec]
    issues: list[str]


def coerce_verdict(value: Any) -> TeacherVerdict:
    """Accept what a Python validator returns: a verdict, a dict, a bool or a score."""
    if isinstance(value, TeacherVerdict):
        return value
    if isinstance(value, bool):
        return TeacherVerdict(valid=value, score=1.0 if value else 0.0)
    if isinstance(value, int | float):
        return TeacherVerdict(valid=True, score=float(value))
    if isinstance(value, dict):
        data = dict(value)
        if "valid" not in data and "score" in data:
            data["valid"] = True
        if "score" not in data and "valid" in data:
            data["score"] = 1.0 if data["valid"] else 0.0
        return TeacherVerdict.model_validate(data)
    raise TypeError(f"validator returned {type(value).__name__}; expected dict, bool or float")


def _system(
    services: Services, duty: TeacherDuty, default: str, persona: PersonaContext | None = None
) -> str:
    teacher = services.config.teacher
    persona = persona or {}
    template = getattr(teacher.prompts, duty) or default
    base = services.config.agent.system_prompt if services.config.agent else ""
    rewritten = persona.get("prompts", {}).get("teacher")
    text = prompts.system_prompt(template, rewritten or base)
    if rewritten and "{base_prompt}" not in template:  # the teacher persona frames every duty
        text = f"{rewritten}\n\n{text}"
    extra = teacher.prompt_guidance.get(duty)
    text = f"{text}\n\n{extra}" if extra else text
    return prompts.with_learning(text, persona.get("learning", {}).get("teacher"))


def _runnable_plan(steps: list[StepSpec]) -> Plan:
    """A one-step plan needs no synthesis; anything longer runs stepwise."""
    if len(steps) == 1:
        return {"steps": steps, "execution_mode": "single_shot"}
    return stepwise_plan(steps)


def _choose_plan(
    services: Services, state: AtlasState, review: PlanReview
) -> tuple[Plan | None, list[str], list[str]]:
    """Turn a review into the plan to run (or None to redraft), concerns and notes."""
    task = state["task"]
    draft = state["plan_draft"] or {"steps": [], "issues": []}
    concerns = list(review.concerns)
    notes: list[str] = []
    if review.revised_plan:
        try:
            revised = parse_plan(review.revised_plan)
        except PlanParseError as error:
            concerns.append(f"revised plan unusable: {error}")
        else:
            revised_issues = plan_issues(revised)
            if not revised_issues:
                notes.append("teacher revised the plan")
                return _runnable_plan(revised), concerns, notes
            concerns.extend(f"revised plan: {issue}" for issue in revised_issues)
    if review.approved and not draft["issues"]:
        return _runnable_plan(draft["steps"]), concerns, notes
    redrafts_left = state.get("plan_drafts", 1) <= services.config.orchestration.max_plan_revisions
    if redrafts_left:
        return None, concerns, notes
    if not draft["issues"]:
        notes.append(
            "plan rejected and redrafts exhausted; running the last draft. Concerns: "
            + "; ".join(concerns or ["none given"])
        )
        return _runnable_plan(draft["steps"]), concerns, notes
    notes.append(
        "plan cannot be scheduled (" + "; ".join(draft["issues"]) + "); collapsed into one step"
    )
    return single_step_plan(task, draft["steps"]), concerns, notes


def _unreviewed(
    services: Services, state: AtlasState, draft: PlanDraft, error: ModelOutputError
) -> AtlasState:
    """The state update when the teacher's review cannot be read, even when asked again.

    A schedulable draft runs as drafted; one that is not runs as one step. The lane's
    collapse still applies, so a coach session keeps its one step.
    """
    steps = draft["steps"]
    plan = single_step_plan(state["task"], steps) if draft["issues"] else _runnable_plan(steps)
    if services.policy(state["lane"]).single_step:
        plan = single_step_plan(state["task"], plan["steps"])
    return {
        "plan": plan,
        "review": {
            "approved": False, "not_reviewed": True, "concerns": [], "issues": draft["issues"],
            "revised": False,
        },
        "plan_notes": [f"plan not reviewed: the teacher's reply could not be read ({error})"],
    }  # fmt: skip


def make_review_node(services: Services) -> Node:
    """The teacher approves, revises or rejects the draft; unschedulable drafts never run."""
    teacher = services.config.teacher
    human = teacher.plan_approval == "human"
    # a person's decision belongs to one session, so approval sessions never reuse reviews
    cache_seconds = 0 if human else teacher.plan_cache_seconds

    async def review(state: AtlasState, runtime: Runtime[AtlasContext]) -> AtlasState:
        if human and awaiting_approval(state):  # second pass: pause, then apply the decision
            single = services.policy(state["lane"]).single_step
            return decide(state, single_step=single, runnable=_runnable_plan)
        draft = state["plan_draft"] or {"steps": [], "issues": []}
        update: AtlasState = {}
        cache_key = review_cache_key(state)
        cached = await acached_review(runtime.store, cache_key, cache_seconds)
        if cached is not None:
            verdict = PlanReview.model_validate(cached)
        elif services.plan_reviewer is not None:
            result = await call_maybe_async(
                services.plan_reviewer,
                PlanReviewRequest(task=state["task"], steps=draft["steps"], issues=draft["issues"]),
            )
            verdict = (
                result if isinstance(result, PlanReview) else PlanReview.model_validate(result)
            )
        elif services.has_model("teacher", runtime):
            messages = [
                SystemMessage(
                    _system(
                        services, "plan_review", prompts.PLAN_REVIEW, state.get("persona_context")
                    )
                ),
                HumanMessage(
                    prompts.review_message(state["task"], draft["steps"], draft["issues"])
                ),
            ]
            runnable = services.structured(
                "teacher", PlanReview, runtime, max_tokens=teacher.max_review_tokens
            )
            try:
                answer = await runnable.ainvoke(messages)
            except ModelOutputError as error:
                # not an approval, and nothing for the student to redraft: the draft runs
                # unreviewed and the review record says why
                update["usage"] = {"teacher": error.usage}
                update.update(_unreviewed(services, state, draft, error))
                return update
            verdict = answer.value
            update["usage"] = {"teacher": answer.usage}
            await aremember_review(
                runtime.store, cache_key, cache_seconds, verdict.model_dump(mode="json")
            )
        else:
            raise ModelConfigError(
                "the lane reviews plans but the teacher has neither llm nor plan_reviewer"
            )
        plan, concerns, notes = _choose_plan(services, state, verdict)
        lane = state["lane"]
        if plan is not None and services.policy(lane).single_step:
            plan = single_step_plan(state["task"], plan["steps"])
        review_record: dict[str, Any] = {
            "approved": verdict.approved,
            "concerns": concerns,
            "issues": draft["issues"],
            "revised": bool(verdict.revised_plan),
        }
        update["review"] = review_record
        update["plan_notes"] = notes
        if plan is not None:
            update["plan"] = plan
        services.emit(
            runtime, "review_verdict", session_id=state.get("session_id", ""), actor="teacher",
            approved=verdict.approved, concerns=concerns, redraft=plan is None,
            plan=plan, cached=cached is not None,
        )  # fmt: skip
        if human and plan is not None:  # first pass: keep the reviewed plan for a person
            update["plan_approval"] = approval_request(update.pop("plan"), review_record)
            services.emit(
                runtime, "plan_approval_requested", session_id=state.get("session_id", ""),
                actor="system", plan=plan, concerns=concerns,
            )  # fmt: skip
        return update

    return review


ERROR_GUIDANCE = (
    "The previous attempt did not finish: it failed or ran out of time. "
    "Answer the step again, directly and briefly."
)
"""Guidance after an attempt that raised or timed out: the error text itself stays in the
record, because it is about the runtime, not about the student's answer."""


def _failed_verdict(reason: str) -> Verdict:
    return {"valid": False, "score": 0.0, "rationale": reason, "guidance": ERROR_GUIDANCE}


def _not_judged(
    services: Services,
    runtime: Runtime[AtlasContext],
    task: StepTask,
    update: AtlasState,
    started: float,
    reason: str,
) -> Command[Any]:
    """Finish a step whose attempt the teacher could not judge: unjudged, not failed."""
    step, attempt = task["step"], task["attempt"]
    reason = f"the teacher's verdict could not be read: {reason}"
    services.emit(
        runtime, "not_judged", session_id=task.get("session_id", ""), actor="teacher",
        step_id=step["id"], attempt=attempt, intermediate=True, reason=reason,
    )  # fmt: skip
    timings = {
        "execute": round(task.get("execute_ms", 0.0), 3),
        "validate": round((time.perf_counter() - started) * 1000, 3),
    }
    update["steps"] = {
        str(step["id"]): {
            "attempts": [{"attempt": attempt, "validation": None, "not_judged": reason,
                          "timings_ms": timings}],
            "validation": None, "not_judged": reason, "status": "succeeded",
            "completed_at": utc_now(),
        }
    }  # fmt: skip
    services.emit(
        runtime, "step_finished", session_id=task.get("session_id", ""), actor="system",
        step_id=step["id"], attempt=attempt, status="succeeded", score=None, attempts=attempt,
    )  # fmt: skip
    spent = merge_usage(task.get("spent"), update.get("usage"))
    goto = services.routes.after_validate({**task, "spent": spent}, None)
    assert isinstance(goto, str)  # an unjudged attempt is never retried
    update.update(step_answer(goto, task.get("output", "")))
    return Command(update=update, goto=goto)


def make_validate_node(services: Services) -> Node:
    """Judge one attempt, then retry through guide or hand the step back to the scheduler."""
    teacher = services.config.teacher
    threshold = services.config.rim.retry_threshold

    async def validate(task: StepTask, runtime: Runtime[AtlasContext]) -> Command[Any]:
        step, attempt = task["step"], task["attempt"]
        started = time.perf_counter()
        update: AtlasState = {}
        if task.get("error"):
            verdict = _failed_verdict(f"attempt failed: {task['error']}")
        elif services.validator is not None:
            request = ValidationRequest(
                task=task["task"], step=dict(step), output=task.get("output", ""), attempt=attempt,
                prior_results=task.get("prior_results", {}), guidance=task.get("guidance", []),
                tool_calls=task.get("tool_calls", []),
            )  # fmt: skip
            try:
                checked = coerce_verdict(await call_maybe_async(services.validator, request))
            except (TypeError, ValueError, ValidationError) as error:
                raise TypeError(
                    f"teacher.validator returned an unusable verdict: {error}"
                ) from None
            verdict = checked.as_verdict()
        else:
            messages = [
                SystemMessage(_system(
                    services, "validation", prompts.VALIDATION, task.get("persona_context")
                )),
                HumanMessage(prompts.validation_message(
                    task["task"], step, task.get("output", ""), task.get("prior_results", {}),
                    task.get("tool_calls", []),
                )),
            ]  # fmt: skip
            runnable = services.structured(
                "teacher", TeacherVerdict, runtime, max_tokens=teacher.validation_max_tokens
            )
            try:
                answer = await runnable.ainvoke(messages)
            except ModelOutputError as error:
                # the teacher's fault, not the student's: no retry, no guidance, the reason
                # recorded; the attempt's output stands unjudged
                update["usage"] = {"teacher": error.usage}
                return _not_judged(services, runtime, task, update, started, str(error))
            verdict = answer.value.as_verdict()
            update["usage"] = {"teacher": answer.usage}
        validate_ms = (time.perf_counter() - started) * 1000
        task = {**task, "spent": merge_usage(task.get("spent"), update.get("usage"))}
        goto = services.routes.after_validate(task, verdict)
        retry = not isinstance(goto, str)
        services.emit(
            runtime, "validation_verdict", session_id=task.get("session_id", ""), actor="teacher",
            step_id=step["id"], attempt=attempt, intermediate=True, retry=retry, **verdict,
        )  # fmt: skip
        attempt_update: AttemptRecord = {
            "attempt": attempt,
            "validation": verdict,
            "timings_ms": {
                "execute": round(task.get("execute_ms", 0.0), 3),
                "validate": round(validate_ms, 3),
            },
        }
        step_update: StepRecord = {"attempts": [attempt_update], "validation": verdict}
        update["steps"] = {str(step["id"]): step_update}
        if not isinstance(goto, str):  # a retry
            services.emit(
                runtime, "retry", session_id=task.get("session_id", ""), actor="system",
                step_id=step["id"], attempt=attempt, intermediate=True, next_attempt=attempt + 1,
                max_attempts=services.policy(task["lane"]).max_retries + 1, score=verdict["score"],
            )  # fmt: skip
            if not _guidance_calls_model(services, runtime):
                # the verdict's guidance is the guidance: the retry starts here, without a
                # guide superstep (a checkpoint and its writes) that would only copy it
                next_try = _next_attempt(
                    services, runtime, {**task, "verdict": verdict}, verdict["guidance"],
                    step_update,
                )  # fmt: skip
                return Command(update=update, goto=services.routes.after_guide(next_try))
            return Command(update=update, goto=goto)
        step_update["status"] = "succeeded" if passes(verdict, threshold) else "failed"
        step_update["completed_at"] = utc_now()
        services.emit(
            runtime, "step_finished", session_id=task.get("session_id", ""), actor="system",
            step_id=step["id"], attempt=attempt, status=step_update["status"],
            score=verdict["score"], attempts=attempt,
        )  # fmt: skip
        update.update(step_answer(goto, task.get("output", "")))
        return Command(update=update, goto=goto)

    return validate


_ATTEMPT_KEYS: tuple[Literal["output", "error", "execute_ms", "verdict", "tool_calls"], ...] = (
    "output", "error", "execute_ms", "verdict", "tool_calls",
)  # fmt: skip
"""What a step branch carries of its last attempt."""


def make_guide_node(services: Services) -> Node:
    """Turn a failed verdict into guidance for the next attempt with a teacher call.

    Validation sends a retry here only with ``teacher.guidance_call`` and a teacher model;
    otherwise it reuses the verdict's own guidance and starts the retry itself.
    """
    teacher = services.config.teacher

    async def guide(task: StepTask, runtime: Runtime[AtlasContext]) -> Command[Any]:
        step, verdict = task["step"], task["verdict"]
        text = verdict.get("guidance", "")
        update: AtlasState = {}
        if _guidance_calls_model(services, runtime):
            model = services.model("teacher", runtime, max_tokens=teacher.guidance_max_tokens)
            reply = await model.ainvoke([
                SystemMessage(_system(
                    services, "guidance", prompts.GUIDANCE, task.get("persona_context")
                )),
                HumanMessage(prompts.guidance_message(
                    task["task"], step, task.get("output", ""), verdict["rationale"],
                    verdict["score"], task.get("tool_calls", []),
                )),
            ])  # fmt: skip
            content = reply.content if isinstance(reply.content, str) else str(reply.content)
            text = content.strip() or text
            update["usage"] = {"teacher": usage_of(reply)}
        step_update: StepRecord = {"attempts": [{"attempt": task["attempt"]}]}
        update["steps"] = {str(step["id"]): step_update}
        retry = _next_attempt(services, runtime, task, text, step_update)
        return Command(update=update, goto=services.routes.after_guide(retry))

    return guide


def _guidance_calls_model(services: Services, runtime: Runtime[AtlasContext]) -> bool:
    """Whether a retry's guidance comes from its own teacher call (the guide node)."""
    return services.config.teacher.guidance_call and services.has_model("teacher", runtime)


def _next_attempt(
    services: Services,
    runtime: Runtime[AtlasContext],
    task: StepTask,
    text: str,
    step_update: StepRecord,
) -> StepTask:
    """Record ``text`` as the failed attempt's guidance and build the step's next attempt.

    ``step_update`` is the step's record in the node's update; its last attempt is the one
    that failed.
    """
    text = text.strip() or (
        f"The previous attempt fell short: {task['verdict']['rationale'] or 'no reason given'}"
    )
    guidance = [*task.get("guidance", []), text]
    step_update["guidance"] = guidance
    step_update["attempts"][-1]["guidance"] = text
    services.emit(
        runtime, "guidance", session_id=task.get("session_id", ""), actor="teacher",
        step_id=task["step"]["id"], attempt=task["attempt"], intermediate=True, guidance=text,
    )  # fmt: skip
    retry: StepTask = {**task}
    for key in _ATTEMPT_KEYS:  # the next attempt starts without the last one's results
        retry.pop(key, None)
    retry["attempt"] = task["attempt"] + 1
    retry["guidance"] = guidance
    return retry
