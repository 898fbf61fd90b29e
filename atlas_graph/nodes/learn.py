"""Persona memory per fingerprint, learning notes, and the ``learn`` node that closes a session.

Memories live in the Store under ``("atlas", "memory", <fingerprint>)``, one item per memory::

    {id, persona: "student" | "teacher", text, status: "candidate" | "active" | "retired",
     seen, created_at, updated_at, source_session, reason}

Each session that used a memory adds one item under ``("atlas", "memory_uses", <fingerprint>)``
(``{memory_id, session_id, score, at}``), so concurrent sessions never lose each other's uses.

Lifecycle: guidance from steps that needed retries or scored low becomes a student candidate;
passing verdicts on a session the reward scored low become a teacher candidate. Candidates and
active memories are injected into the next sessions' prompts (candidates on trial). Once a
memory has been used in ``min_sessions`` rewarded sessions, a candidate whose sessions score
at least the fingerprint's baseline (its recent mean reward) is promoted to active, otherwise
retired; an active memory whose sessions fall below the baseline is retired. Duplicates (same
text after normalisation) are compacted into one memory; caps apply per persona.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import statistics
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from pydantic import BaseModel, ConfigDict

from atlas_graph import prompts
from atlas_graph.config import AtlasConfig
from atlas_graph.nodes.finalize import session_status
from atlas_graph.services import AtlasContext, Node, Services
from atlas_graph.state import AtlasState, Verdict
from atlas_graph.storage import history
from atlas_graph.telemetry.events import utc_now
from atlas_graph.usage import Usage

MEMORY_PERSONAS = ("student", "teacher")
_USES_KEPT = 20


def memory_namespace(fp: str) -> tuple[str, ...]:
    """Where the persona memories of one fingerprint live."""
    return ("atlas", "memory", fp)


def normalize(text: str) -> str:
    """Text compared for duplicates: case, punctuation and spacing do not matter."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.lower())).strip()


def memory_id(persona: str, text: str) -> str:
    """One id per persona and normalised text, so a duplicate lands on the same item."""
    return hashlib.sha256(f"{persona}:{normalize(text)}".encode()).hexdigest()[:16]


def uses_namespace(fp: str) -> tuple[str, ...]:
    """Where the per-session uses of one fingerprint's memories live."""
    return ("atlas", "memory_uses", fp)


_READ_LIMIT = 1000


async def load_memories(
    store: BaseStore, fp: str, *, with_uses: bool = True
) -> list[dict[str, Any]]:
    """Every memory of ``fp`` (any status), with its recent ``uses`` oldest first."""
    items = await store.asearch(memory_namespace(fp), limit=_READ_LIMIT)
    memories = [dict(item.value) for item in items]
    if not with_uses:
        return memories
    uses: dict[str, list[dict[str, Any]]] = {}
    for item in await store.asearch(uses_namespace(fp), limit=_READ_LIMIT * _USES_KEPT):
        uses.setdefault(item.value["memory_id"], []).append(dict(item.value))
    for memory in memories:
        memory["uses"] = sorted(uses.get(memory["id"], []), key=lambda use: use["at"])
    return memories


async def save_memories(
    store: BaseStore,
    fp: str,
    changed: list[dict[str, Any]],
    *,
    session_id: str,
    score: float,
    used_ids: list[str],
) -> None:
    """Write changed memories and this session's uses; drop uses beyond the kept window."""
    writes = [
        store.aput(
            memory_namespace(fp),
            memory["id"],
            {k: v for k, v in memory.items() if k not in ("uses", "stale_uses")},
        )
        for memory in changed
    ]
    now = utc_now()
    by_id = {memory["id"]: memory for memory in changed}
    for mid in used_ids:
        if mid not in by_id:
            continue  # retired before this session, or unknown: nothing to count
        use = {"memory_id": mid, "session_id": session_id, "score": score, "at": now}
        writes.append(store.aput(uses_namespace(fp), f"{mid}:{session_id}", use))
        for old in by_id[mid].get("stale_uses", []):
            writes.append(store.adelete(uses_namespace(fp), f"{mid}:{old['session_id']}"))
    await asyncio.gather(*writes)


def for_prompts(
    memories: list[dict[str, Any]], config: AtlasConfig
) -> dict[str, list[dict[str, Any]]]:
    """Memories to inject per persona: active ones first, then candidates on trial."""
    cap = config.learning.max_active_per_persona
    chosen: dict[str, list[dict[str, Any]]] = {}
    for persona in MEMORY_PERSONAS:
        mine = [m for m in memories if m["persona"] == persona]
        active = sorted(
            (m for m in mine if m["status"] == "active"), key=lambda m: m["created_at"]
        )[:cap]
        trial = sorted(
            (m for m in mine if m["status"] == "candidate"), key=lambda m: m["created_at"]
        )[-config.learning.max_candidates_per_persona :]
        chosen[persona] = [*active, *trial]
    return chosen


def _mean_use(memory: dict[str, Any]) -> float:
    return statistics.fmean(use["score"] for use in memory["uses"]) if memory["uses"] else 0.0


Candidate = tuple[str, str, str]
"""A lesson a session offers: ``(persona, text, why)``."""


def candidates_from(
    state: AtlasState, retry_threshold: float, success_threshold: float
) -> list[Candidate]:
    """``(persona, text, reason)`` lessons this session offers."""
    found: list[Candidate] = []
    verdicts: list[Verdict] = []
    for step_id, record in sorted(state.get("steps", {}).items()):
        verdict = record.get("validation") or None
        low = False
        if verdict:
            verdicts.append(verdict)
            low = float(verdict.get("score", 1.0)) < retry_threshold
        retried = bool(record.get("guidance"))
        texts = list(record.get("guidance", []))
        if low and verdict and verdict.get("guidance"):
            texts.append(verdict["guidance"])
        why = f"step {step_id} needed retries" if retried else f"step {step_id} scored low"
        for text in texts:
            if text.strip() and (retried or low):
                found.append(("student", text.strip(), why))
    reward = state.get("reward")
    passed = verdicts and all(v.get("valid") and v.get("score", 0) >= retry_threshold
                              for v in verdicts)  # fmt: skip
    if reward is not None and reward["score"] < success_threshold and passed:
        rationale = str(reward.get("rationale", "")).strip()[:300]
        text = "Check the work against the task before accepting it; work you passed was " + (
            f"later judged: {rationale}" if rationale else "later judged poor."
        )
        why = f"passing verdicts but a reward of {reward['score']:.2f}"
        found.append(("teacher", text, why))
    unique = {memory_id(persona, text): (persona, text, why) for persona, text, why in found}
    return list(unique.values())


def update_memories(
    memories: list[dict[str, Any]],
    *,
    used_ids: list[str],
    candidates: list[Candidate],
    session_id: str,
    score: float,
    base: float,
    config: AtlasConfig,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Judge the memories this session used, add its candidates, enforce caps.

    Returns:
        ``(changed memories to write, persona_updates for the session record)``.
    """
    learning = config.learning
    now = utc_now()
    by_id = {m["id"]: m for m in memories}
    changed: dict[str, dict[str, Any]] = {}
    updates: list[dict[str, Any]] = []

    def record(memory: dict[str, Any], action: str, reason: str) -> None:
        memory["updated_at"] = now
        memory["reason"] = reason
        changed[memory["id"]] = memory
        updates.append(
            {"memory_id": memory["id"], "persona": memory["persona"], "action": action,
             "status": memory["status"], "text": memory["text"], "reason": reason}
        )  # fmt: skip

    for mid in used_ids:
        memory = by_id.get(mid)
        if memory is None or memory["status"] == "retired":
            continue
        uses = [*memory.get("uses", []), {"session_id": session_id, "score": score}]
        memory["uses"] = uses[-_USES_KEPT:]
        memory["stale_uses"] = uses[:-_USES_KEPT]  # to delete from the store
        changed[mid] = memory
        if len(memory["uses"]) < learning.min_sessions:
            continue
        mean = _mean_use(memory)
        versus = f"sessions using it average {mean:.2f} against a baseline of {base:.2f}"
        if memory["status"] == "candidate":
            memory["status"] = "active" if mean >= base else "retired"
            record(memory, "promoted" if mean >= base else "retired", versus)
        elif mean < base:
            memory["status"] = "retired"
            record(memory, "retired", versus)

    for persona, text, why in candidates:
        mid = memory_id(persona, text)
        existing = by_id.get(mid)
        if existing is not None:  # a duplicate: keep one memory and count how often it came up
            existing["seen"] = existing.get("seen", 1) + 1
            record(existing, "compacted", f"the same lesson came up again ({why})")
            continue
        memory = {
            "id": mid, "persona": persona, "text": text, "status": "candidate", "seen": 1,
            "uses": [], "created_at": now, "source_session": session_id,
        }  # fmt: skip
        by_id[mid] = memory
        record(memory, "created", why)

    for persona in MEMORY_PERSONAS:
        mine = [m for m in by_id.values() if m["persona"] == persona]
        active = sorted((m for m in mine if m["status"] == "active"), key=_mean_use, reverse=True)
        for memory in active[learning.max_active_per_persona :]:
            memory["status"] = "retired"
            record(memory, "retired", f"over max_active_per_persona ({len(active)} active)")
        trial = sorted(
            (m for m in mine if m["status"] == "candidate"),
            key=lambda m: m["created_at"], reverse=True,
        )  # fmt: skip
        for memory in trial[learning.max_candidates_per_persona :]:
            memory["status"] = "retired"
            record(memory, "retired", "over max_candidates_per_persona; oldest dropped")
    return list(changed.values()), updates


class LearningNotes(BaseModel):
    """The learning model's reply."""

    model_config = ConfigDict(extra="ignore")

    student_learning: str
    teacher_learning: str


def template_notes(state: AtlasState) -> tuple[str | None, str | None]:
    """Notes from the reward rationale and the teacher's verdicts, without a model call."""
    reward = state.get("reward")
    records = state.get("steps", {})
    guidance = [text for record in records.values() for text in record.get("guidance", [])]
    verdicts = [v for record in records.values() if (v := record.get("validation"))]
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


async def learning_notes(
    services: Services, state: AtlasState, runtime: Runtime[AtlasContext] | None
) -> tuple[str | None, str | None, Usage | None, str | None]:
    """``(student note, teacher note, usage, problem)``; an LLM writes them when configured."""
    student, teacher = template_notes(state)
    if student is None and teacher is None:
        return None, None, None, None
    if services.config.learning.llm is None and not services.has_model("learning", runtime):
        return student, teacher, None, None
    reward = state.get("reward") or {}
    guidance = [t for r in state.get("steps", {}).values() for t in r.get("guidance", [])]
    message = (
        f"Task:\n{state['task']}\n\nReward: {reward.get('score')}\n"
        f"Rationale: {reward.get('rationale', '')}\n\nGuidance given:\n"
        + (prompts.format_guidance(guidance) or "(none)")
    )
    try:
        runnable = services.structured("learning", LearningNotes, runtime)
        answer = await runnable.ainvoke(
            [SystemMessage(prompts.LEARNING_NOTES), HumanMessage(message)]
        )
        notes, usage = answer.value, answer.usage
    except Exception as error:  # the template notes stand in
        return (
            student,
            teacher,
            None,
            f"learning notes from template: {type(error).__name__}: {error}",
        )
    return notes.student_learning, notes.teacher_learning, usage, None


def certification_verdict(state: AtlasState, score: float) -> dict[str, Any]:
    """What a certification run leaves for its fingerprint: the teacher's verdict and reward.

    The teacher's own rationale is kept (not the reward's "reused as reward" label), so a
    later reader sees why the fingerprint was certified.
    """
    verdicts = [v for r in state.get("steps", {}).values() if (v := r.get("validation"))]
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


def make_learn_node(services: Services) -> Node:
    """After the reward: history for the probe, certification, drift, memory and notes."""
    config = services.config
    rim = config.rim

    async def learn(state: AtlasState, runtime: Runtime[AtlasContext]) -> AtlasState:
        store = runtime.store
        fp = state.get("fingerprint")
        session_id = state.get("session_id", "")
        reward = state.get("reward")
        score = float(reward["score"]) if reward is not None else None
        summary = state.get("adaptive_summary") or {}
        update: AtlasState = {}
        if config.learning.enabled and config.learning.session_note_enabled:
            student, teacher, usage, problem = await learning_notes(services, state, runtime)
            update.update({"student_learning": student, "teacher_learning": teacher})
            if usage:
                update["usage"] = {"learning": usage}
            if problem:
                update["plan_notes"] = [problem]
        if store is None:
            # history, certification, drift and memory all live in the Store; say they were
            # skipped rather than let a session without one look as if it learned
            update["plan_notes"] = [
                *update.get("plan_notes", []),
                "learning skipped: the graph was compiled without a store, so fingerprint "
                "history, certification, drift and persona memory were not kept",
            ]
            return update
        if not fp:
            return update
        sessions = await history.aload_sessions(store, fp)
        if summary.get("certification_run") and score is not None:
            await history.asave_certification(store, fp, certification_verdict(state, score))
        drift = config.runtime_safety.drift
        if drift.enabled and score is not None:
            finding = history.drift(
                score, sessions, window=drift.window, z_threshold=drift.z_threshold,
                min_baseline=drift.min_baseline,
            )  # fmt: skip
            if finding is not None:
                update.update({"review_status": "pending", "review_notes": finding["reason"]})
                update["adaptive_summary"] = {**summary, "drift": finding}
        if config.learning.enabled and config.learning.update_enabled and score is not None:
            memories = await load_memories(store, fp)
            used = [u["memory_id"] for u in state.get("personas_used", []) if "memory_id" in u]
            base = history.baseline(sessions, config.learning.history_limit)
            changed, updates = update_memories(
                memories, used_ids=used,
                candidates=candidates_from(state, rim.retry_threshold, rim.success_threshold),
                session_id=session_id, score=score,
                base=rim.success_threshold if base is None else base, config=config,
            )  # fmt: skip
            await save_memories(
                store, fp, changed, session_id=session_id, score=score, used_ids=used
            )
            update["persona_updates"] = updates
            if updates:
                counts: dict[str, int] = {}
                for item in updates:
                    counts[item["action"]] = counts.get(item["action"], 0) + 1
                services.emit(
                    runtime, "memory_update", session_id=session_id, actor="system",
                    fingerprint=fp, counts=counts, updates=updates,
                )  # fmt: skip
        entry = {
            "session_id": session_id, "lane": state.get("lane"), "reward": score,
            "retries": _retries(state), "status": session_status(state, rim.success_threshold),
            "certification_run": bool(summary.get("certification_run")),
            "completed_at": utc_now(),
        }  # fmt: skip
        cap = max(config.adaptive_teaching.learning_history_limit, drift.window,
                  config.learning.history_limit)  # fmt: skip
        await history.aappend_session(store, fp, entry, cap, sessions)
        return update

    return learn
