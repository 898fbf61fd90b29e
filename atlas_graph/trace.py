"""Map a session ledger record to an AtlasSessionTrace: the training-data contract.

The mapping is pure (a dict in, a new dict out) and reads only the ledger record, which
carries everything finalize knew (see ``ledger.py``), so an export never needs the
checkpoints. The output follows ``spec/session-trace.md`` key for key. Values that were never
produced stay ``null`` rather than being invented: an ``auto`` session has no verdict and, unless
a reward was configured, no reward.
"""

from __future__ import annotations

from typing import Any

from atlas_graph.redaction import scrub

REWARD_STATS_KEYS = (
    "score", "score_mean", "score_stddev", "sample_count", "uncertainty_mean",
    "uncertainty_stddev", "best_uncertainty",
)  # fmt: skip


def session_trace(
    record: dict[str, Any], *, trajectory_event_limit: int | None = None
) -> dict[str, Any]:
    """The AtlasSessionTrace of one ledger record, secrets scrubbed (a new JSON-only dict).

    Args:
        record: A session ledger record (``("atlas", "sessions")`` in the Store).
        trajectory_event_limit: Keep at most this many events (the newest, since they carry
            the outcome), still oldest first; ``None`` keeps all the record holds.
    """
    trace = unscrubbed_trace(record, trajectory_event_limit=trajectory_event_limit)
    return scrub(trace)


def unscrubbed_trace(
    record: dict[str, Any], *, trajectory_event_limit: int | None = None
) -> dict[str, Any]:
    """``session_trace`` before scrubbing; it may share values with ``record``.

    For writers that check the encoded text first (``redaction.may_hold_secrets``) and scrub
    only the rare trace that needs it.
    """
    plan = _plan(record.get("plan"))
    specs = {step["id"]: step for step in plan["steps"]}
    step_records = sorted(
        (record.get("steps") or {}).values(),
        key=lambda step: (step.get("started_at") or "", int(step.get("step_id", 0))),
    )
    lane = record.get("execution_mode") or record.get("lane")
    dossier = record.get("dossier") or {}
    usage = record.get("usage") or {}
    drift = (record.get("adaptive_summary") or {}).get("drift")
    trace: dict[str, Any] = {
        "session_id": record.get("session_id"),
        "task": record.get("task") or "",
        "final_answer": record.get("final_answer") or "",
        "plan": plan,
        "steps": [_step(step, specs.get(int(step.get("step_id", 0)))) for step in step_records],
        "session_metadata": {
            **(record.get("session_metadata") or {}),
            "session_id": record.get("session_id"),
            "status": record.get("status"),
            "created_at": record.get("started_at"),
            "completed_at": record.get("completed_at"),
            "execution_mode": lane,
            "review_status": record.get("review_status") or "pending",
            "token_usage": usage,
            "triage_dossier": dossier,
            "fingerprint": record.get("fingerprint"),
            "checkpoint_id": record.get("checkpoint_id"),
            "applied_student_learning": _applied(record.get("applied_student_learning")),
            "applied_teacher_learning": _applied(record.get("applied_teacher_learning")),
        },
        "session_reward": record.get("reward"),
        "reward_stats": _reward_stats(record.get("reward_stats")),
        "reward_audit": list(record.get("reward_audit") or []),
        "adaptive_summary": _adaptive_summary(record.get("adaptive_summary"), lane),
        "triage_dossier": dossier,
        "execution_mode": lane,
        "student_learning": record.get("student_learning"),
        "teacher_learning": record.get("teacher_learning"),
        "learning_history": record.get("learning_history"),
        "learning_key": record.get("learning_key") or "",
        "drift": drift,
        "drift_alert": bool(drift and drift.get("alert")),
        "reward_summary": reward_summary(record.get("reward"), record.get("reward_audit")),
        "teacher_notes": teacher_notes(record.get("review"), step_records),
        "trajectory_events": _events(record.get("trajectory_events"), trajectory_event_limit),
        "review_status": record.get("review_status") or "pending",
        "review_notes": record.get("review_notes"),
        "token_usage": usage,
    }
    return trace


def reward_summary(
    reward: dict[str, Any] | None, audit: list[dict[str, Any]] | None = None
) -> dict[str, Any] | None:
    """The spec's flat ``{score, judges: {identifier: score}, escalated}`` of a reward."""
    if not reward:
        return None
    judges = [judge for judge in reward.get("judges") or [] if isinstance(judge, dict)]
    escalated = any(judge.get("escalated") for judge in judges) or any(
        entry.get("stage") == "arbiter" for entry in audit or []
    )
    return {
        "score": reward.get("score"),
        "judges": {str(judge.get("identifier")): judge.get("score") for judge in judges},
        "escalated": bool(escalated),
    }


def teacher_notes(review: dict[str, Any] | None, step_records: list[dict[str, Any]]) -> list[str]:
    """The teacher's words in order: plan review concerns, then each step's guidance."""
    review = review or {}
    given = [*(review.get("concerns") or []), *(review.get("issues") or [])]
    notes = [str(item) for item in given]
    for step in step_records:
        notes.extend(str(item) for item in step.get("guidance") or [] if item)
    return notes


def _applied(applied: dict[str, Any] | None) -> dict[str, Any] | None:
    """The spec's ``{digest, char_count, entry_count}`` of a pamphlet the prompts carried."""
    if not applied:
        return None
    return {key: applied.get(key) for key in ("digest", "char_count", "entry_count")}


def _plan(plan: dict[str, Any] | None) -> dict[str, Any]:
    plan = plan or {}
    steps = [
        {
            "id": int(step["id"]),
            "description": str(step.get("description", "")),
            "depends_on": [int(item) for item in step.get("depends_on") or []],
            "tool": step.get("tool"),
            "tool_params": dict(step.get("tool_params") or {}),
        }
        for step in plan.get("steps") or []
    ]
    mode = plan.get("execution_mode") or ("stepwise" if len(steps) > 1 else "single_shot")
    return {"steps": steps, "execution_mode": mode}


def _step(record: dict[str, Any], spec: dict[str, Any] | None) -> dict[str, Any]:
    """One step record: the last attempt's result, its history, reward and timings."""
    step_id = int(record.get("step_id", 0))
    spec = spec or {}
    attempts = list(record.get("attempts") or [])
    last = attempts[-1] if attempts else {}
    validation = record.get("validation") or last.get("validation")
    execute = sum(float((a.get("timings_ms") or {}).get("execute", 0.0)) for a in attempts)
    validate = sum(float((a.get("timings_ms") or {}).get("validate", 0.0)) for a in attempts)
    return {
        "step_id": step_id,
        "description": str(spec.get("description", "")),
        "depends_on": list(spec.get("depends_on") or []),
        "tool": spec.get("tool"),
        "tool_params": dict(spec.get("tool_params") or {}),
        "trace": str(last.get("trace") or last.get("output") or ""),
        "output": str(record.get("output", last.get("output", "")) or ""),
        "deliverable": last.get("deliverable"),
        "artifacts": dict(last.get("artifacts") or {}),
        "attempts": len(attempts),
        "guidance": [str(item) for item in record.get("guidance") or []],
        "validation": validation,
        "reward": step_reward(record, validation),
        "context": {"prior_results": dict(record.get("prior_results") or {})},
        "runtime": {
            "timings_ms": {
                "execute": round(execute, 3),
                "validate": round(validate, 3),
                "total": round(execute + validate, 3),
            },
            "status": record.get("status") or "failed",
        },
        "metadata": {
            "attempt_history": [_attempt(attempt) for attempt in attempts],
            "reasoning": last.get("reasoning"),
            "started_at": record.get("started_at"),
            "completed_at": record.get("completed_at"),
        },
    }


def _attempt(attempt: dict[str, Any]) -> dict[str, Any]:
    return {
        "attempt": int(attempt.get("attempt", 0)),
        "output": str(attempt.get("output") or ""),
        "validation": attempt.get("validation"),
        "guidance": attempt.get("guidance"),
        "timings_ms": dict(attempt.get("timings_ms") or {}),
        "error": attempt.get("error"),
        "tool_calls": list(attempt.get("tool_calls") or []),
        "reasoning": attempt.get("reasoning"),
    }


def step_reward(record: dict[str, Any], validation: dict[str, Any] | None) -> dict[str, Any] | None:
    """The step's reward breakdown: its own (step judges or reused verdict), else the verdict.

    ``None`` when the step was neither judged nor validated (the ``auto`` lane without step
    judges): a made-up score would teach a trainer something that never happened.
    """
    reward = record.get("reward")
    if reward:
        return reward
    if not validation or not isinstance(validation.get("score"), int | float):
        return None
    return {
        "score": float(validation["score"]),
        "rationale": str(validation.get("rationale") or ""),
        "judges": [{
            "identifier": "teacher_validation", "score": float(validation["score"]),
            "rationale": str(validation.get("rationale") or ""), "principles": [],
            "samples": [], "escalated": False, "escalation_reason": None,
        }],
        "raw": {"source": "teacher_validation", "valid": bool(validation.get("valid"))},
    }  # fmt: skip


def _reward_stats(stats: dict[str, Any] | None) -> dict[str, Any]:
    """Every stats key, ``null`` where no reward was computed."""
    stats = stats or {}
    return {**stats, **{key: stats.get(key) for key in REWARD_STATS_KEYS}}


def _adaptive_summary(summary: dict[str, Any] | None, lane: str | None) -> dict[str, Any]:
    """The spec's keys; ``probe`` is ``{mode, confidence, evidence}`` with nulls when no probe
    ran (a forced lane or certification), so readers need no special case."""
    summary = dict(summary or {})
    probe = summary.get("probe") or {}
    summary.update(
        adaptive_mode=summary.get("adaptive_mode") or lane,
        confidence=summary.get("confidence"),
        certification_run=bool(summary.get("certification_run")),
        probe={
            **probe,
            "mode": probe.get("mode"),
            "confidence": probe.get("confidence"),
            "evidence": list(probe.get("evidence") or []),
        },
        mode_history=list(summary.get("mode_history") or []),
    )
    return summary


def _events(events: list[dict[str, Any]] | None, limit: int | None) -> list[dict[str, Any]]:
    """Oldest first by time: parallel step branches append their events a node run at a time,
    so append order interleaves branches."""
    kept = sorted(events or [], key=lambda event: event.get("created_at") or "")
    if limit is not None:
        kept = kept[-limit:] if limit > 0 else []
    return kept
