"""``Result``: the public, validated view of a finished (or stopped) session."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class AttemptResult(BaseModel):
    """One attempt at a step."""

    attempt: int
    output: str = ""
    error: str | None = None
    validation: dict[str, Any] | None = None
    not_judged: str | None = None
    """Why the teacher could not judge this attempt (its reply was unreadable), if so."""
    guidance: str | None = None
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)


class StepResult(BaseModel):
    """One plan step: what ran, how often, and what the teacher said."""

    step_id: int
    description: str
    depends_on: list[int] = Field(default_factory=list)
    status: str = "pending"
    output: str = ""
    attempts: int = 0
    validation: dict[str, Any] | None = None
    not_judged: str | None = None
    """Why the step's last attempt went unjudged, if it did."""
    reward: dict[str, Any] | None = None
    guidance: list[str] = Field(default_factory=list)
    attempt_history: list[AttemptResult] = Field(default_factory=list)
    prior_results: dict[str, str] = Field(default_factory=dict)


class Result(BaseModel):
    """What ``run``/``arun`` return."""

    session_id: str
    task: str
    final_answer: str = ""
    status: str = "running"
    lane: str | None = None
    lane_decision: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    steps: list[StepResult] = Field(default_factory=list)
    reward: dict[str, Any] | None = None
    reward_stats: dict[str, Any] | None = None
    reward_audit: list[dict[str, Any]] = Field(default_factory=list)
    usage: dict[str, dict[str, int]] = Field(default_factory=dict)
    cost: dict[str, float] = Field(
        default_factory=dict,
        description="US dollars per priced role and 'total' (config `pricing` over the "
        "built-in table); roles without a price are left out",
    )
    budget: dict[str, Any] | None = Field(
        default=None,
        description="with orchestration.budget: the limits, what was spent, and whether "
        "(and why) the budget stopped the loop",
    )
    session_metadata: dict[str, Any] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    fingerprint: str | None = None
    adaptive_summary: dict[str, Any] = Field(default_factory=dict)
    review_status: str | None = None
    review_notes: str | None = None
    student_learning: str | None = None
    teacher_learning: str | None = None
    personas_used: list[dict[str, Any]] = Field(default_factory=list)
    learning_key: str | None = None
    applied_student_learning: dict[str, Any] | None = None
    applied_teacher_learning: dict[str, Any] | None = None
    learning_updates: list[dict[str, Any]] = Field(default_factory=list)
    started_at: str | None = None
    completed_at: str | None = None
    checkpoint_id: str | None = None
    waiting_for: dict[str, Any] | None = Field(
        default=None,
        description="set when the session paused for a person (e.g. plan approval): the "
        "interrupt's payload; resume it with a decision",
    )

    @property
    def waiting(self) -> bool:
        """Whether the session paused on an interrupt and waits for a decision."""
        return self.waiting_for is not None

    @property
    def success(self) -> bool:
        """Whether the session finished and met its bar (see ``status``)."""
        return self.status == "succeeded"

    @property
    def retries(self) -> int:
        """Retries across all steps."""
        return sum(max(0, step.attempts - 1) for step in self.steps)

    @classmethod
    def from_state(cls, values: dict[str, Any], *, checkpoint_id: str | None = None) -> Result:
        """Build from graph state values (e.g. ``graph.get_state(config).values``)."""
        plan = values.get("plan")
        records = values.get("steps", {})
        steps: list[StepResult] = []
        for spec in (plan or {}).get("steps", []):
            record = records.get(str(spec["id"]), {})
            history = [AttemptResult(**entry) for entry in record.get("attempts", [])]
            steps.append(
                StepResult(
                    step_id=spec["id"],
                    description=spec["description"],
                    depends_on=spec.get("depends_on", []),
                    status=record.get("status", "pending"),
                    output=record.get("output", ""),
                    attempts=len(history),
                    validation=record.get("validation"),
                    not_judged=record.get("not_judged"),
                    reward=record.get("reward"),
                    guidance=record.get("guidance", []),
                    attempt_history=history,
                    prior_results=record.get("prior_results", {}),
                )
            )
        decision = values.get("lane_decision")
        return cls(
            session_id=values.get("session_id", ""),
            task=values.get("task", ""),
            final_answer=values.get("final_answer", ""),
            status=values.get("status", "running"),
            lane=values.get("lane"),
            lane_decision=dict(decision) if decision else None,
            plan=dict(plan) if plan else None,
            steps=steps,
            reward=values.get("reward"),
            reward_stats=values.get("reward_stats"),
            reward_audit=values.get("reward_audit", []),
            usage=values.get("usage", {}),
            cost=values.get("cost") or {},
            budget=values.get("budget"),
            session_metadata=values.get("session_metadata", {}),
            notes=values.get("plan_notes", []),
            fingerprint=values.get("fingerprint"),
            adaptive_summary=values.get("adaptive_summary") or {},
            review_status=values.get("review_status"),
            review_notes=values.get("review_notes"),
            student_learning=values.get("student_learning"),
            teacher_learning=values.get("teacher_learning"),
            personas_used=values.get("personas_used") or [],
            learning_key=values.get("learning_key"),
            applied_student_learning=values.get("applied_student_learning"),
            applied_teacher_learning=values.get("applied_teacher_learning"),
            learning_updates=values.get("learning_updates") or [],
            started_at=values.get("started_at"),
            completed_at=values.get("completed_at"),
            checkpoint_id=checkpoint_id,
        )
