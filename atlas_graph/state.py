"""Graph state: plain JSON values only, so checkpoints load anywhere and read well in SQL.

Pydantic validates at the edges (config, LLM output, the public ``Result``); everything that
enters state is a dict, list, str, number, bool or None. Per-step records are keyed by the
step id (as a string, because JSON object keys are strings) and merged by a reducer, so
parallel step branches never overwrite each other.
"""

# No ``from __future__ import annotations`` in this module: LangGraph reads these TypedDicts
# with ``get_type_hints`` for every node while a graph is built (``run`` builds one per
# session), and evaluating string annotations each time was a quarter of that cost.

import math
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NotRequired

# typing's TypedDict cannot become JSON Schema on Python 3.11 (pydantic needs this one), and
# LangGraph Server draws the input and output forms from these classes
from typing_extensions import TypedDict

from atlas_graph.errors import AtlasInputError
from atlas_graph.lanes import LANES, Lane
from atlas_graph.telemetry.trajectory import TrajectoryEvent, keep_trajectory
from atlas_graph.usage import Usage, merge_usage

LaneName = Lane  # the lanes of lanes.py, under the name the state records use
StepStatus = Literal["running", "succeeded", "failed"]
SessionStatus = Literal["running", "succeeded", "failed"]
ReviewStatus = Literal["pending", "approved", "quarantined"]
StepExit = Literal["dispatch", "reward", "learn", "finalize"]
"""Where a step branch goes when its step is done: back to dispatch, or on with the answer."""


class StepSpec(TypedDict):
    """One plan step as the student described it."""

    id: int
    description: str
    depends_on: list[int]
    tool: str | None
    tool_params: dict[str, Any]


class Plan(TypedDict):
    """The plan that is executed: one step (``single_shot``) or a dependency graph."""

    steps: list[StepSpec]
    execution_mode: Literal["single_shot", "stepwise"]


class PlanDraft(TypedDict):
    """A plan the student proposed, with the problems that make it unschedulable."""

    steps: list[StepSpec]
    issues: list[str]


class Verdict(TypedDict):
    """The teacher's judgement of one attempt."""

    valid: bool
    score: float
    rationale: str
    guidance: str


class ToolCallRecord(TypedDict):
    """One tool call of an attempt's agent ⇄ tool loop and what the tool answered."""

    round: int
    id: str
    name: str
    args: dict[str, Any]
    output: str
    is_error: bool


class AttemptRecord(TypedDict, total=False):
    """One try at a step: what the agent produced and what the teacher said of it."""

    attempt: int
    output: str
    error: str | None
    deliverable: Any
    artifacts: dict[str, Any]
    trace: str
    tool_calls: list[ToolCallRecord]
    validation: Verdict | None
    not_judged: str  # why the teacher could not judge it (its verdict was unreadable)
    guidance: str | None
    timings_ms: dict[str, float]
    reasoning: str | None  # the model's reasoning text, when its provider returned it


class StepRecord(TypedDict, total=False):
    """Everything known about one step; written piecewise and merged by ``merge_steps``."""

    step_id: int
    status: StepStatus
    attempts: list[AttemptRecord]
    guidance: list[str]
    output: str
    validation: Verdict | None
    not_judged: str  # why the last attempt went unjudged, when it did
    reward: dict[str, Any] | None  # reward breakdown of this step (verdict or step judges)
    prior_results: dict[str, str]
    started_at: str
    completed_at: str


class LaneDecision(TypedDict):
    """Why the session runs in its lane."""

    lane: LaneName
    source: str
    confidence: float | None
    reason: str


class PersonaContext(TypedDict, total=False):
    """What shapes this session's system prompts beyond the config.

    ``prompts``: rewritten base prompts by persona (``planner``, ``executor``, ``teacher``);
    ``learning``: the learning playbook's pamphlet per audience (``student``, ``teacher``).
    """

    prompts: dict[str, str]
    learning: dict[str, str]


def merge_steps(
    left: dict[str, StepRecord] | None, right: dict[str, StepRecord] | None
) -> dict[str, StepRecord]:
    """Merge step records by id; attempts are upserted by attempt number.

    Execute writes an attempt's output and validate later writes its verdict, so both land
    on the same attempt entry instead of appending two half records.
    """
    merged: dict[str, StepRecord] = dict(left or {})
    for step_id, update in (right or {}).items():
        current = merged.get(step_id)
        if current is None:
            merged[step_id] = update
            continue
        combined: StepRecord = {**current, **update}
        if "attempts" in update:
            combined["attempts"] = _upsert_attempts(current.get("attempts", []), update["attempts"])
        merged[step_id] = combined
    return merged


def _upsert_attempts(
    existing: list[AttemptRecord], updates: list[AttemptRecord]
) -> list[AttemptRecord]:
    by_number: dict[int, AttemptRecord] = {entry["attempt"]: {**entry} for entry in existing}
    for entry in updates:
        by_number[entry["attempt"]] = {**by_number.get(entry["attempt"], {}), **entry}
    return [by_number[number] for number in sorted(by_number)]


def add_count(left: int | None, right: int | None) -> int:
    """Counter channel: nodes write increments."""
    return (left or 0) + (right or 0)


def extend_list(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """Append-only list channel."""
    return [*(left or []), *(right or [])]


class AtlasInput(TypedDict):
    """What a caller passes to start a session."""

    task: str
    session_metadata: NotRequired[dict[str, Any]]
    mode: NotRequired[LaneName | None]


MAX_TASK_CHARS = 200_000
"""The longest task a session takes: state, and so every checkpoint, holds the task."""
MAX_THREAD_ID_CHARS = 200
_THREAD_ID_REFUSED = frozenset("/\\")


def check_thread_id(thread_id: str) -> str:
    """``thread_id`` if it is fit to store, print and name files with; else ``AtlasInputError``.

    Thread ids reach logs, the console, exports and file names: control characters (newlines
    included), path separators and a leading dot (``..``) are refused where they enter.
    """
    problem = None
    if not isinstance(thread_id, str) or not thread_id:
        problem = "must be a non-empty string"
    elif len(thread_id) > MAX_THREAD_ID_CHARS:
        problem = f"is longer than {MAX_THREAD_ID_CHARS} characters"
    elif any(unicodedata.category(char)[0] in "CZ" and char != " " for char in thread_id):
        problem = "holds control or separator characters"
    elif thread_id != thread_id.strip() or thread_id.startswith("."):
        problem = "starts with a dot or space, or ends with a space"
    elif _THREAD_ID_REFUSED & set(thread_id):
        problem = "holds a path separator"
    if problem is not None:
        shown = ascii(thread_id)[:60] if isinstance(thread_id, str) else type(thread_id).__name__
        raise AtlasInputError(f"thread id {shown} {problem}", field="thread_id")
    return thread_id


def check_input(values: Mapping[str, Any]) -> None:
    """Refuse input without a task, or with metadata or a mode of the wrong kind.

    The graph's input reaches it unchecked from ``invoke``, a parent graph or an LCEL chain,
    so the first node says what is wrong instead of failing somewhere deeper.
    """
    task = values.get("task")
    if not isinstance(task, str) or not task.strip():
        raise AtlasInputError(
            "the graph's input needs 'task', a non-empty string: invoke it with {'task': ...} "
            "(as a parent graph's node, the parent's state needs a 'task' key)",
            field="task",
        )
    if len(task) > MAX_TASK_CHARS:
        raise AtlasInputError(
            f"the task is {len(task)} characters; the limit is {MAX_TASK_CHARS} (every "
            "checkpoint of the session holds it): pass a reference to a large document instead",
            field="task",
        )
    metadata = values.get("session_metadata")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise AtlasInputError(
            f"'session_metadata' must be a mapping, not {type(metadata).__name__}",
            field="session_metadata",
        )
    mode = values.get("mode")
    if mode is not None and mode not in LANES:
        raise AtlasInputError(
            f"unknown mode {mode!r}: expected one of {', '.join(LANES)}, "
            "or no mode to let the probe decide",
            field="mode",
        )
    if metadata is not None:
        check_finite_json(metadata, "session_metadata")


def check_finite_json(value: Any, field: str) -> None:
    """Refuse a value that is not finite JSON: NaN, Infinity, or a non-JSON type.

    PostgreSQL's ``json`` refuses ``NaN`` (``invalid input syntax for type json``), so such a
    value in a checkpoint stops the session for good; it is refused where it enters instead.

    Raises:
        AtlasInputError: Names the offending key path (``session_metadata.scores[2]``).
    """
    stack: list[tuple[str, Any]] = [(field, value)]
    while stack:  # iterative: deep values cannot exhaust the recursion limit
        path, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise AtlasInputError(
                f"{path} is {item}: values must be finite JSON numbers (NaN and Infinity "
                "are not JSON)",
                field=path,
            )
        if isinstance(item, Mapping):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise AtlasInputError(f"{path} has a non-string key {key!r}", field=path)
                stack.append((f"{path}.{key}", child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{index}]", child) for index, child in enumerate(item))
        elif item is not None and not isinstance(item, str | int | float | bool):
            raise AtlasInputError(
                f"{path} is a {type(item).__name__}, not a JSON value", field=path
            )


# Keys that say which session this is: never changed by a fork.
IDENTITY_KEYS = frozenset({"session_id", "graph_namespace"})


def check_update(values: Mapping[str, Any]) -> None:
    """Refuse a state update (a fork's ``--set``) that the session could not run with.

    Every key must be a state key other than the identity keys, and every value finite JSON
    of that key's type (``steps`` a mapping of step records, ``lane`` a lane, ``task`` a
    string, ...).

    Raises:
        AtlasInputError: Names the first bad key and what it must be.
    """
    unknown = sorted(set(values) - set(AtlasState.__annotations__))
    if unknown:
        raise AtlasInputError(
            f"unknown state key(s) {', '.join(unknown)}; the session state has "
            + ", ".join(sorted(AtlasState.__annotations__)),
            field=unknown[0],
            keys=unknown,
        )
    identity = sorted(set(values) & IDENTITY_KEYS)
    if identity:
        raise AtlasInputError(
            f"{identity[0]} says which session this is and cannot be changed; start a new "
            "session instead",
            field=identity[0],
        )
    for key, value in values.items():
        check_finite_json(value, key)
    from pydantic import TypeAdapter, ValidationError

    try:
        TypeAdapter(AtlasState).validate_python(dict(values), strict=True)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise AtlasInputError(
            f"{where}: {first['msg']} (got {first['input']!r:.60})", field=str(first["loc"][0])
        ) from None


class AtlasOutput(TypedDict, total=False):
    """What a finished session hands back to a parent graph or LCEL chain."""

    task: str
    final_answer: str
    status: SessionStatus
    lane: LaneName
    plan: Plan
    steps: dict[str, StepRecord]
    reward: dict[str, Any] | None
    reward_stats: dict[str, Any] | None
    reward_audit: list[dict[str, Any]]
    session_id: str
    usage: dict[str, Usage]


class AtlasState(TypedDict, total=False):
    """The whole session as checkpointed after every node."""

    task: str
    session_metadata: dict[str, Any]
    mode: LaneName | None
    session_id: str
    graph_namespace: str  # checkpoint namespace: "" at the root, set inside a parent graph
    started_at: str
    completed_at: str
    status: SessionStatus
    dossier: dict[str, Any]
    lane: LaneName
    lane_decision: LaneDecision
    plan_draft: PlanDraft | None
    plan_drafts: Annotated[int, add_count]
    review: dict[str, Any] | None
    plan: Plan
    plan_notes: Annotated[list[str], extend_list]
    steps: Annotated[dict[str, StepRecord], merge_steps]
    final_answer: str
    reward: dict[str, Any] | None
    usage: Annotated[dict[str, Usage], merge_usage]
    # reward system: the spec's reward_stats and reward_audit
    reward_stats: dict[str, Any] | None
    reward_audit: list[dict[str, Any]]
    # adaptive teaching and learning
    fingerprint: str | None
    adaptive_summary: dict[str, Any]
    learning_history: dict[str, Any] | None
    personas_used: list[dict[str, Any]]
    persona_context: PersonaContext
    learning_key: str
    applied_student_learning: dict[str, Any] | None  # {digest, char_count, entry_count, ...}
    applied_teacher_learning: dict[str, Any] | None
    learning_updates: list[dict[str, Any]]  # playbook changes this session made
    student_learning: str | None
    teacher_learning: str | None
    review_status: ReviewStatus | None
    review_notes: str | None
    # human plan approval
    plan_approval: dict[str, Any] | None
    cost: dict[str, float]  # dollars per priced role and "total" (see pricing.py)
    budget: dict[str, Any] | None  # the budget, what was spent, and whether it stopped the loop
    # events of the run for the export, oldest first, capped (see trajectory.py)
    trajectory_events: Annotated[list[TrajectoryEvent], keep_trajectory]


class RouteView(TypedDict, total=False):
    """What the session's routes read: a conditional edge copies only these channels.

    Each route is a conditional edge (so ``update_state`` routes a fork); its input schema
    decides how many channels LangGraph copies to show it the state after the node's writes.
    """

    task: str
    session_metadata: dict[str, Any]
    session_id: str
    lane: LaneName
    plan: Plan
    steps: Annotated[dict[str, StepRecord], merge_steps]
    reward: dict[str, Any] | None
    persona_context: PersonaContext
    plan_approval: dict[str, Any] | None
    usage: Annotated[dict[str, Usage], merge_usage]  # the budget routes read what was spent


class StepTask(TypedDict, total=False):
    """The payload a step branch carries through execute → validate → guide → execute."""

    task: str
    lane: LaneName
    session_id: str
    session_metadata: dict[str, Any]
    step: StepSpec
    attempt: int
    guidance: list[str]
    prior_results: dict[str, str]
    output: str
    error: str | None
    tool_calls: list[ToolCallRecord]
    execute_ms: float
    verdict: Verdict
    then: StepExit
    persona_context: PersonaContext
    spent: dict[str, Usage]  # the session's usage when the step started, plus this branch's
