"""One session's turn of the learning cycle, as pure functions over plain entry dicts.

``track`` counts the session in every live entry (cue hits, adoption, reward with/without)
and promotes provisional entries that paid off; ``admit`` gates, scores and accepts or rejects
the synthesizer's proposals; ``prune`` applies Atlas's four rules. Each returns the entries to
write and the history records that say what happened and why.
"""

from __future__ import annotations

from typing import Any

from atlas_graph.config import LearningConfig
from atlas_graph.learning import gates, rubric
from atlas_graph.learning.playbook import LIVE_STATUSES, EntryDraft, PlaybookEntry, entry_id
from atlas_graph.learning.pruning import prune_reason
from atlas_graph.learning.registry import change
from atlas_graph.learning.usage import SessionUse, mean, record_use, session_uses, task_digest
from atlas_graph.state import AtlasState
from atlas_graph.telemetry.events import utc_now

Changes = tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]
"""``(entries to write by id, history records)``."""


def live(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries that enter prompts and are tracked."""
    return [entry for entry in entries if entry.get("status") in LIVE_STATUSES]


def track(
    entries: list[dict[str, Any]],
    state: AtlasState,
    *,
    reward: float | None,
    success_threshold: float,
    config: LearningConfig,
    promote: bool = True,
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], dict[str, SessionUse]]:
    """Count this session in every live entry; promote provisional entries that paid off.

    A provisional entry is accepted once a session applies it and scores at least the
    sessions without it (or the success threshold before there are any).
    """
    session_id = state.get("session_id", "")
    uses = session_uses(live(entries), state)
    written: dict[str, dict[str, Any]] = {}
    history: list[dict[str, Any]] = []
    for entry in live(entries):
        use = uses[entry["id"]]
        before = entry.get("stats", {}).get("reward_without", {})
        updated = record_use(entry, use, reward=reward, session_id=session_id,
                             task=state.get("task", ""), config=config)  # fmt: skip
        if use["cue_hit"]:
            history.append(change(updated, "cue_hit", "the cue matched the task", session_id))
        if use["adopted"]:
            history.append(change(updated, "adopted", "the action's handle was used", session_id))
        baseline = mean(before)
        bar = success_threshold if baseline is None else baseline
        on_trial = promote and updated["status"] == "provisional"
        if on_trial and use["applied"] and reward is not None and reward >= bar:
            updated = {**updated, "status": "accepted", "version": updated["version"] + 1,
                       "updated_at": utc_now()}  # fmt: skip
            reason = f"applied in a session rewarded {reward:.2f} (bar {bar:.2f})"
            history.append(change(updated, "accepted", reason, session_id))
        written[entry["id"]] = updated
    return written, history, uses


def _new_entry(
    draft: EntryDraft, config: LearningConfig, state: AtlasState, key: str, entry_ids: set[str]
) -> dict[str, Any]:
    scope = draft.scope
    if scope.category is None:
        scope = scope.model_copy(update={"category": config.playbook_schema.default_scope_category})
    known = draft.id if draft.id in entry_ids else None
    entry = PlaybookEntry(
        **draft.model_dump(exclude={"id", "scope"}),
        id=known or entry_id(draft),
        scope=scope,
        schema_version=config.playbook_schema.version,
        provenance={"session_id": state.get("session_id", ""), "learning_key": key,
                    "task_digest": task_digest(state.get("task", "")), "source": "synthesizer"},
    )  # fmt: skip
    return entry.model_dump(mode="json")


def _content(entry: dict[str, Any]) -> tuple[Any, ...]:
    return (entry["audience"], entry["cue"], entry["action"], entry["expected_effect"],
            entry["scope"])  # fmt: skip


def admit(
    drafts: list[EntryDraft],
    entries: list[dict[str, Any]],
    state: AtlasState,
    *,
    key: str,
    baseline: dict[str, float | int],
    config: LearningConfig,
) -> Changes:
    """Gate and score each proposal; accept, provisionally accept or reject it with a reason.

    A proposal naming an existing entry (or identical to one) revises it: a new version,
    gated again, statistics kept. ``baseline`` seeds a new entry's reward-without bucket with
    the learning key's recent sessions, which ran without it.
    """
    session_id = state.get("session_id", "")
    by_id = {entry["id"]: entry for entry in entries}
    written: dict[str, dict[str, Any]] = {}
    history: list[dict[str, Any]] = []
    now = utc_now()
    for draft in drafts:
        entry = _new_entry(draft, config, state, key, set(by_id))
        entry["status"] = None  # proposed: gates and rubric decide
        old = written.get(entry["id"]) or by_id.get(entry["id"])
        if old is not None:
            if _content(old) == _content(entry) and old.get("status") in LIVE_STATUSES:
                continue  # proposed again as it stands: nothing changes
            entry.update(version=old.get("version", 1) + 1, stats=old.get("stats", {}),
                         provenance=old.get("provenance", entry["provenance"]),
                         created_at=old.get("created_at", now))  # fmt: skip
            action = "revised"
        else:
            entry.update(created_at=now, stats={"reward_without": dict(baseline)})
            action = "synthesized"
        parsed = EntryDraft.model_validate(entry)
        verdict = gates.gate(parsed, config)
        scores = rubric.score(parsed, config)
        entry.update(gate=verdict, rubric=scores, updated_at=now)
        history.append(change(entry, action, f"proposed after session {session_id}", session_id))
        if not verdict["passed"]:
            entry["status"] = "rejected"
            reason = "; ".join(verdict["failures"])  # type: ignore[arg-type]
        elif scores["total"] < rubric.MIN_SCORE:
            entry["status"] = "rejected"
            reason = f"rubric total {scores['total']:.2f} below {rubric.MIN_SCORE}"
        else:
            history.append(change(entry, "gated", f"passed {', '.join(verdict['checked'])}",  # type: ignore[arg-type]
                                  session_id))  # fmt: skip
            provisional = config.provisional_acceptance
            entry["status"] = "provisional" if provisional else "accepted"
            reason = f"rubric total {scores['total']:.2f}" + (
                "; on trial until a session applies it" if provisional else ""
            )
        entry["reason"] = reason
        history.append(change(entry, entry["status"], reason, session_id))
        written[entry["id"]] = entry
    return written, history


def prune(entries: list[dict[str, Any]], config: LearningConfig, session_id: str) -> Changes:
    """Prune live entries that break one of the four rules; they keep stats and reason."""
    written: dict[str, dict[str, Any]] = {}
    history: list[dict[str, Any]] = []
    for entry in live(entries):
        reason = prune_reason(entry, config.pruning_config)
        if reason is None:
            continue
        pruned = {**entry, "status": "pruned", "reason": reason,
                  "version": entry.get("version", 1) + 1, "updated_at": utc_now()}  # fmt: skip
        written[entry["id"]] = pruned
        history.append(change(pruned, "pruned", reason, session_id))
    return written, history
