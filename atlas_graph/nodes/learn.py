"""The ``learn`` node that closes a session: probe history, certification, drift, playbook.

After the reward it appends the session to its fingerprint's history (what the probe reads),
keeps a certification run's verdict, checks reward drift, and turns the learning cycle of the
session's learning key (``atlas_graph.learning``): usage tracking, synthesis of playbook
entries with gates and rubric, promotion and pruning, all recorded in the registry's history.
"""

from __future__ import annotations

import statistics
from typing import Any

from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore

from atlas_graph.learning import cycle, registry
from atlas_graph.learning.synthesizer import asynthesize
from atlas_graph.learning.usage import task_digest
from atlas_graph.nodes.finalize import session_status
from atlas_graph.services import AtlasContext, Node, Services
from atlas_graph.state import AtlasState
from atlas_graph.storage import history
from atlas_graph.telemetry.events import utc_now
from atlas_graph.usage import Usage

_NOT_SHOWN = ("cue_hit", "adopted")  # per-session usage: in the registry, not in the session


def template_notes(state: AtlasState) -> tuple[str | None, str | None]:
    """Notes from the reward rationale and the teacher's verdicts, without a model call."""
    reward = state.get("reward")
    records = state.get("steps", {})
    guidance = [text for record in records.values() for text in record.get("guidance", [])]
    verdicts = [verdict for record in records.values() if (verdict := record.get("validation"))]
    student = None
    if reward is not None:
        student = f"Reward {reward['score']:.2f}: {str(reward.get('rationale', '')).strip()}"
        if guidance:
            student += " Guidance that was needed: " + "; ".join(guidance)
        student = student[:1000]
    teacher = None
    if verdicts:
        mean = statistics.fmean(float(v["score"]) for v in verdicts)
        teacher = f"Validated {len(verdicts)} step(s), mean verdict score {mean:.2f}"
        if reward is not None:
            gap = reward["score"] - mean
            teacher += f"; the reward was {reward['score']:.2f} ({gap:+.2f} against verdicts)"
        teacher += "."
    return student, teacher


def certification_verdict(state: AtlasState, score: float) -> dict[str, Any]:
    """What a certification run leaves for its fingerprint: the teacher's verdict and reward.

    The teacher's own rationale is kept (not the reward's "reused as reward" label), so a
    later reader sees why the fingerprint was certified.
    """
    verdicts = [
        verdict for r in state.get("steps", {}).values() if (verdict := r.get("validation"))
    ]
    reward = state.get("reward") or {}
    rationale = " | ".join(v["rationale"] for v in verdicts if v.get("rationale"))
    return {
        "score": score,
        "valid": all(v["valid"] for v in verdicts) if verdicts else None,
        "rationale": rationale or reward.get("rationale", ""),
        "reward_source": reward.get("raw", {}).get("source"),
        "session_id": state.get("session_id", ""),
    }


def _retries(state: AtlasState) -> int:
    return sum(max(0, len(r.get("attempts", [])) - 1) for r in state.get("steps", {}).values())


def _tokens(state: AtlasState, extra: Usage | None) -> int:
    usage = state.get("usage") or {}
    total = sum(int(counts.get("total_tokens", 0)) for counts in usage.values())
    return total + (extra["total_tokens"] if extra else 0)


def _baseline(sessions: list[dict[str, Any]], score: float) -> dict[str, float | int]:
    """Rewards of recent sessions, this one included: a new entry was in none of them."""
    rewards = [float(s["reward"]) for s in sessions if s.get("reward") is not None]
    rewards.append(score)
    return {"sum": round(sum(rewards), 6), "count": len(rewards)}


async def learn_playbook(
    services: Services,
    state: AtlasState,
    runtime: Runtime[AtlasContext],
    store: BaseStore,
    score: float | None,
) -> dict[str, Any]:
    """One turn of the learning cycle for the session's learning key; the state update."""
    learning = services.config.learning
    key = state.get("learning_key") or registry.learning_key(services.config, state)
    session_id = state.get("session_id", "")
    entries = await registry.aload_entries(store, key)
    sessions = (await registry.aload_sessions(store, key))[-learning.history_limit :]
    written: dict[str, dict[str, Any]] = {}
    changes: list[dict[str, Any]] = []
    uses: dict[str, Any] = {}
    if learning.usage_tracking.enabled:
        written, changes, uses = cycle.track(
            entries, state, reward=score, config=learning, promote=learning.update_enabled,
            success_threshold=services.config.rim.success_threshold,
        )  # fmt: skip
    update: dict[str, Any] = {"learning_key": key}
    usage = None
    if learning.update_enabled and score is not None:
        current = [written.get(entry["id"], entry) for entry in entries]
        try:
            reply, usage = await asynthesize(services, state, runtime, entries=current,
                                            recent=sessions)  # fmt: skip
        except GraphBubbleUp:  # an interrupt() pauses the session
            raise
        except Exception as error:  # a session never fails because learning did
            update["plan_notes"] = [f"playbook not updated: {type(error).__name__}: {error}"]
            student, teacher = template_notes(state)
        else:
            admitted, notes = cycle.admit(
                reply.entries, current, state, key=key, config=learning,
                baseline=_baseline(sessions, score),
            )  # fmt: skip
            written.update(admitted)
            changes += notes
            student, teacher = reply.student_learning, reply.teacher_learning
            update["usage"] = {"learning": usage}
        if learning.session_note_enabled:
            update.update(student_learning=student, teacher_learning=teacher)
        if learning.usage_tracking.enabled:
            current = [written.get(entry["id"], entry) for entry in entries]
            pruned, notes = cycle.prune(current, learning, session_id)
            written.update(pruned)
            changes += notes
    record = {
        "session_id": session_id, "at": utc_now(), "reward": score,
        "tokens": _tokens(state, usage), "task_digest": task_digest(state.get("task", "")),
        "applied_student_learning": state.get("applied_student_learning"),
        "applied_teacher_learning": state.get("applied_teacher_learning"),
        "cue_hits": sorted(i for i, use in uses.items() if use["cue_hit"]),
        "adopted": sorted(i for i, use in uses.items() if use["adopted"]),
    }  # fmt: skip
    await registry.awrite(store, key, list(written.values()), changes, record)
    shown = [
        {"entry_id": c["entry_id"], "audience": c["entry"].get("audience"), "action": c["action"],
         "status": c["status"], "version": c["version"], "reason": c["reason"]}
        for c in changes if c["action"] not in _NOT_SHOWN
    ]  # fmt: skip
    update["learning_updates"] = shown
    if shown:
        services.emit(runtime, "learning_update", session_id=session_id, actor="system",
                      learning_key=key, updates=shown)  # fmt: skip
    return update


def make_learn_node(services: Services) -> Node:
    """After the reward: history for the probe, certification, drift and the playbook."""
    config = services.config
    rim = config.rim

    async def learn(state: AtlasState, runtime: Runtime[AtlasContext]) -> dict[str, Any]:
        store = runtime.store
        fp = state.get("fingerprint")
        reward = state.get("reward")
        score = float(reward["score"]) if reward is not None else None
        summary = state.get("adaptive_summary") or {}
        update: dict[str, Any] = {}
        if store is None:
            # history, certification, drift and the playbook all live in the Store; say they
            # were skipped rather than let a session without one look as if it learned
            return {
                "plan_notes": [
                    "learning skipped: the graph was compiled without a store, so fingerprint "
                    "history, certification, drift and the learning playbook were not kept"
                ]
            }
        if services.learns_playbook(runtime):
            update = await learn_playbook(services, state, runtime, store, score)
        if not fp:
            return update
        sessions = await history.aload_sessions(store, fp)
        if summary.get("certification_run") and score is not None:
            await history.asave_certification(store, fp, certification_verdict(state, score))
        drift = config.runtime_safety.drift
        uncertainty = (state.get("reward_stats") or {}).get("uncertainty_mean")
        if drift.enabled and score is not None:
            check = history.drift(
                score, sessions, window=drift.window, z_threshold=drift.z_threshold,
                min_baseline=drift.min_baseline, uncertainty=uncertainty,
                mad_threshold=drift.mad_threshold, two_sided=drift.two_sided,
            )  # fmt: skip
            if check is not None:  # kept whether it fired or not: the export's `drift`
                update["adaptive_summary"] = {**summary, "drift": check}
                if check["alert"]:
                    update.update(review_status="pending", review_notes=check["reason"])
        entry = {
            "session_id": state.get("session_id", ""), "lane": state.get("lane"),
            "reward": score, "uncertainty": uncertainty, "retries": _retries(state),
            "status": session_status(state, rim.success_threshold),
            "certification_run": bool(summary.get("certification_run")),
            "completed_at": utc_now(),
        }  # fmt: skip
        cap = max(config.adaptive_teaching.learning_history_limit, drift.window)
        await history.aappend_session(store, fp, entry, cap, sessions)
        return update

    return learn
