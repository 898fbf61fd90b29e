"""The reward node (tier 1): judges score the session and, when configured, each step.

Every judge samples once per ``rim.temperatures`` entry, all calls concurrently (at most
``rim.parallel_workers`` at a time). A judge whose samples disagree or are unsure is marked
for the arbiter node (tier 2), which the graph visits only then. Judge scores are combined by
``rim.aggregation`` into the session reward. In the paired lane and in certification runs the
teacher's validation verdicts already judge the whole answer, so with
``rim.reuse_validation_as_reward`` they become the reward without another call.

Step rewards are always real scores: the step judges' when ``rim.scope`` includes steps,
otherwise the teacher's verdict of the step; a lone step without a verdict takes the session's.
"""

from __future__ import annotations

import asyncio
import math
from statistics import fmean, pstdev
from typing import Any, Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime

from atlas_graph.callables import call_maybe_async, load_object
from atlas_graph.config import JudgeConfig, RimConfig
from atlas_graph.nodes.judges import (
    Call,
    JudgeReply,
    JudgeRequest,
    audit_entry,
    judge_outcome,
    judge_system_prompt,
    model_label,
    python_sample,
    sample_llm,
    session_message,
    step_message,
)
from atlas_graph.services import AtlasContext, Node, Services
from atlas_graph.state import AtlasState, Verdict
from atlas_graph.usage import Usage, sum_usage

SESSION = "session"
"""The subject key of the whole session; steps are keyed by their step id."""


def subject_messages(state: AtlasState, scope: str) -> dict[str, str]:
    """What the judges look at, by subject key: the session and/or each step."""
    found: dict[str, str] = {}
    if scope in ("session", "both"):
        found[SESSION] = session_message(
            state["task"], state.get("final_answer", ""), state["plan"]["steps"],
            state.get("steps", {}),
        )  # fmt: skip
    if scope in ("step", "both"):
        descriptions = {str(spec["id"]): spec["description"] for spec in state["plan"]["steps"]}
        for step_id, record in state.get("steps", {}).items():
            found[step_id] = step_message(state["task"], descriptions.get(step_id, ""), record)
    return found


def active_judges(rim: RimConfig, *, has_model: bool) -> list[JudgeConfig]:
    """The judges that score: the enabled configured ones plus the built-ins switched on.

    With nothing configured and a judge model available, one built-in process judge scores.
    """
    judges = [judge for judge in rim.judges if judge.enabled]
    taken = {judge.identifier for judge in rim.judges}  # a disabled judge stays off
    if rim.active_judges is not None:
        presets = [name for name, on in rim.active_judges.items() if on and name not in taken]
    else:
        presets = ["process"] if not judges and has_model else []
    return judges + [JudgeConfig(identifier=name, kind=name) for name in presets]


def aggregate(judges: list[dict[str, Any]], strategy: str = "weighted_mean") -> float:
    """Combine judge scores: their weighted mean, or the lowest one (``minimum``)."""
    if strategy == "minimum":
        return min(entry["score"] for entry in judges)
    total_weight = sum(entry["weight"] for entry in judges)
    return sum(entry["score"] * entry["weight"] for entry in judges) / total_weight


def judged_breakdown(entries: list[dict[str, Any]], strategy: str, source: str) -> dict[str, Any]:
    """The reward breakdown of one subject from its judges' results."""
    return {
        "score": aggregate(entries, strategy),
        "rationale": " | ".join(f"{e['identifier']}: {e['rationale']}" for e in entries),
        "judges": entries,
        "raw": {"source": source, "aggregation": strategy},
    }


def verdict_breakdown(verdicts: list[Verdict], reason: str) -> dict[str, Any]:
    """Teacher verdicts as a reward breakdown: their mean score, their rationales."""
    score = fmean(float(verdict["score"]) for verdict in verdicts)
    return {
        "score": score,
        "rationale": f"teacher validation reused as reward ({reason})",
        "judges": [
            {
                "identifier": "teacher_validation", "kind": "validation", "weight": 1.0,
                "score": score, "rationale": " | ".join(v["rationale"] for v in verdicts),
                "principles": [], "samples": [], "escalated": False, "escalation_reason": None,
            }
        ],
        "raw": {"source": "teacher_validation", "valid": all(v["valid"] for v in verdicts)},
    }  # fmt: skip


def reward_stats(score: float | None, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """``reward_stats`` of the export: the reward and the spread of the samples behind it."""
    scores = [float(sample["score"]) for sample in samples]
    uncertainties = [
        float(sample["uncertainty"]) for sample in samples if sample.get("uncertainty") is not None
    ]
    return {
        "score": score,
        "score_mean": fmean(scores) if scores else None,
        "score_stddev": _spread(scores) if scores else None,
        "sample_count": len(scores),
        "uncertainty_mean": fmean(uncertainties) if uncertainties else None,
        "uncertainty_stddev": _spread(uncertainties) if uncertainties else None,
        "best_uncertainty": min(uncertainties) if uncertainties else None,
    }


def _spread(values: list[float]) -> float:
    """Population standard deviation of ``values`` (not empty).

    One value has no spread: answered directly, because ``pstdev`` computes in exact fractions
    and a paired session's reward, one reused verdict, would pay for that every session.
    """
    return 0.0 if len(values) == 1 and math.isfinite(values[0]) else pstdev(values)


def pending_escalations(judged: dict[str, list[dict[str, Any]]]) -> list[dict[str, str]]:
    """Judges the arbiter still has to settle, as ``{subject, judge}``."""
    return [
        {"subject": subject, "judge": entry["identifier"]}
        for subject, entries in judged.items()
        for entry in entries
        if entry["escalated"] and not entry.get("arbitrated")
    ]


def assemble(
    state: AtlasState, judged: dict[str, list[dict[str, Any]]], rim: RimConfig
) -> AtlasState:
    """Session and step rewards from judge results (keyed by subject) and teacher verdicts.

    Used by both reward nodes, so a reward looks the same whether or not the arbiter ran.
    """
    records = state.get("steps", {})
    steps: dict[str, Any] = {}
    for step_id, record in records.items():
        if step_id in judged:
            steps[step_id] = judged_breakdown(judged[step_id], rim.aggregation, "step_judges")
        elif validation := record.get("validation"):
            steps[step_id] = verdict_breakdown([validation], "step verdict")
    samples: list[dict[str, Any]]
    if SESSION in judged:
        session = judged_breakdown(judged[SESSION], rim.aggregation, "judges")
        samples = [sample for entry in judged[SESSION] for sample in entry["samples"]]
    else:
        step_rewards = [steps[step_id] for step_id in judged if step_id in steps]
        session = {
            "score": fmean(reward["score"] for reward in step_rewards),
            "rationale": "mean of the step rewards",
            "judges": [entry for step_id in judged for entry in judged[step_id]],
            "raw": {"source": "step_judges", "aggregation": rim.aggregation},
        }
        samples = [s for step_id in judged for e in judged[step_id] for s in e["samples"]]
    pending = pending_escalations(judged)
    session["raw"]["pending_arbiter"] = pending
    session["raw"]["escalations"] = sum(
        entry["escalated"] for entries in judged.values() for entry in entries
    )
    if len(records) == 1 and not steps:
        # one step and no verdict of it: the session's judgement is the step's
        (only,) = records
        steps[only] = {**session, "raw": {**session["raw"], "source": SESSION}}
    return {
        "reward": session,
        "reward_stats": reward_stats(session["score"], samples),
        "steps": {step_id: {"reward": reward} for step_id, reward in steps.items()},
    }


def emit_reward(
    services: Services,
    runtime: Runtime[AtlasContext],
    state: AtlasState,
    actor: Literal["judge", "arbiter"] = "judge",
) -> None:
    """The ``reward`` event of a finished reward, from whoever had the last word."""
    reward = state["reward"]
    assert reward is not None
    services.emit(
        runtime, "reward", session_id=state.get("session_id", ""), actor=actor,
        score=reward["score"], source=reward["raw"]["source"],
        success=reward["score"] >= services.config.rim.success_threshold,
        judges=[{"identifier": e["identifier"], "score": e["score"]} for e in reward["judges"]],
    )  # fmt: skip


def is_certification_run(state: AtlasState) -> bool:
    """Whether the adaptive layer marked this session as a certification run."""
    return bool((state.get("adaptive_summary") or {}).get("certification_run"))


def make_reward_node(services: Services) -> Node:
    """Score the session (and steps) with tier-1 judges, or reuse the teacher's verdicts."""
    rim = services.config.rim
    python_judges = {
        judge.identifier: load_object(judge.import_path)
        for judge in rim.judges
        if judge.kind == "python" and judge.import_path
    }

    async def judge_subject(
        judge: JudgeConfig,
        subject: str,
        message: str,
        state: AtlasState,
        runtime: Runtime[AtlasContext],
        limit: asyncio.Semaphore,
    ) -> list[Call]:
        if judge.kind == "python":
            return [await python_call(judge, subject, state, limit)]
        model = services.model("judge", runtime, max_tokens=judge.max_tokens, params=judge.llm)
        runnable = services.structured(
            "judge", JudgeReply, runtime, max_tokens=judge.max_tokens, params=judge.llm
        )
        messages = [SystemMessage(judge_system_prompt(judge, rim)), HumanMessage(message)]

        async def one(temperature: float) -> Call:
            async with limit:
                return await sample_llm(
                    runnable, messages, judge=judge, model=model_label(model),
                    temperature=temperature, keep_prompt=rim.audit_prompts,
                )  # fmt: skip

        return list(await asyncio.gather(*(one(t) for t in rim.temperatures)))

    async def python_call(
        judge: JudgeConfig, subject: str, state: AtlasState, limit: asyncio.Semaphore
    ) -> Call:
        step = None
        if subject != SESSION:
            specs = {str(s["id"]): s for s in state["plan"]["steps"]}
            step = {**specs.get(subject, {}), **state.get("steps", {}).get(subject, {})}
        request = JudgeRequest(
            task=state["task"], final_answer=state.get("final_answer", ""), lane=state["lane"],
            plan=dict(state["plan"]), steps=dict(state.get("steps", {})),
            session_metadata=state.get("session_metadata", {}), step=step,
        )  # fmt: skip
        call = Call(judge=judge.identifier, model=f"python:{judge.import_path}", temperature=None)
        async with limit:
            try:
                result = await call_maybe_async(python_judges[judge.identifier], request)
                call.sample = python_sample(result, judge)
            except GraphBubbleUp:  # an interrupt() pauses the session
                raise
            except Exception as error:  # a broken judge is an invalid sample, not a crash
                call.error = f"judge raised {type(error).__name__}: {error}"
        return call

    async def reward(state: AtlasState, runtime: Runtime[AtlasContext]) -> AtlasState:
        verdicts = [v for r in state.get("steps", {}).values() if (v := r.get("validation"))]
        judges = active_judges(rim, has_model=services.has_model("judge", runtime))
        reuse = rim.reuse_validation_as_reward and (
            state["lane"] == "paired" or is_certification_run(state)
        )
        session_id = state.get("session_id", "")
        if verdicts and (reuse or not judges):
            reason = "no judge configured"
            if reuse:
                reason = "certification run" if is_certification_run(state) else "paired lane"
            session = verdict_breakdown(verdicts, reason)
            update: AtlasState = {
                "reward": session,
                "reward_stats": reward_stats(
                    session["score"], [{"score": v["score"]} for v in verdicts]
                ),
                "reward_audit": [],
                "steps": {
                    step_id: {"reward": verdict_breakdown([validation], "step verdict")}
                    for step_id, record in state.get("steps", {}).items()
                    if (validation := record.get("validation"))
                },
            }
            emit_reward(services, runtime, {**state, **update})
            return update
        if not judges:
            return {"reward": None, "plan_notes": ["no reward: no judge and no verdict to reuse"]}

        targets = subject_messages(state, rim.scope)
        if not targets:
            return {"reward": None, "plan_notes": ["no reward: no step to judge"]}
        limit = asyncio.Semaphore(rim.parallel_workers)
        keys = [(subject, judge) for subject in targets for judge in judges]
        results = await asyncio.gather(
            *(judge_subject(j, s, targets[s], state, runtime, limit) for s, j in keys)
        )
        judged: dict[str, list[dict[str, Any]]] = {subject: [] for subject in targets}
        audit: list[dict[str, Any]] = []
        usages: list[Usage] = []
        for (subject, judge), calls in zip(keys, results, strict=True):
            entry = judge_outcome(judge, calls, rim.variance_threshold, rim.uncertainty_threshold)
            entry["subject"] = subject
            judged[subject].append(entry)
            audit.extend(audit_entry(call, stage="tier1", subject=subject) for call in calls)
            usages.extend(call.usage for call in calls if call.usage)
            services.emit(
                runtime, "reward_tier1", session_id=session_id, actor="judge",
                step_id=None if subject == SESSION else int(subject),
                judge=judge.identifier, subject=subject, score=entry["score"],
                stddev=entry["stddev"], uncertainty=entry["uncertainty"],
                samples=len(entry["samples"]), invalid=len(entry["invalid_samples"]),
                escalate=entry["escalated"], reason=entry["escalation_reason"],
            )  # fmt: skip
        update = assemble(state, judged, rim)
        update["reward_audit"] = audit
        if usages:
            update["usage"] = {"judge": sum_usage(usages)}
        if not (update.get("reward") or {})["raw"]["pending_arbiter"]:
            emit_reward(services, runtime, {**state, **update})
        return update

    return reward
