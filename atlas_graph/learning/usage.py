"""Usage tracking: per entry and session, cue hits, adoption and the session's reward.

A cue is evaluated against the task and the plan's step text. An action counts as adopted
when its runtime handle or tool appears in an attempt's tool calls or output; an action with
no handle cannot be observed, so its cue hit stands in. Rewards are kept as running sums for
sessions with the entry applied and sessions without it, which gives the reward delta.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, TypedDict

from atlas_graph.callables import load_object
from atlas_graph.config import LearningConfig
from atlas_graph.learning.playbook import handle_of
from atlas_graph.state import AtlasState


class SessionUse(TypedDict):
    """What one session did with one entry."""

    cue_hit: bool
    adopted: bool
    applied: bool  # adopted, or cue hit for an action that cannot be observed


def task_digest(task: str) -> str:
    """Tasks are compared for transfer by a short digest of their normalised text."""
    return hashlib.sha256(" ".join(task.lower().split()).encode()).hexdigest()[:12]


def cue_text(state: AtlasState) -> str:
    """The task and every plan step's description: the text cues are evaluated against."""
    plan = state.get("plan")
    steps = plan["steps"] if plan else []
    return "\n".join([state.get("task", ""), *(str(step.get("description", "")) for step in steps)])


def cue_hit(cue: dict[str, Any], text: str, state: AtlasState) -> bool:
    """Whether ``cue`` fires on ``text``; a broken cue never fires."""
    pattern = str(cue.get("pattern", "")).strip()
    if not pattern:
        return False
    kind = cue.get("type")
    if kind == "regex":
        try:
            return re.search(pattern, text, re.IGNORECASE) is not None
        except re.error:
            return False
    if kind == "keyword":
        lowered = text.lower()
        words = [w.strip().lower() for w in re.split(r"[,|]", pattern) if w.strip()]
        return any(word in lowered for word in words)
    if kind == "predicate":
        try:
            predicate = load_object(pattern)
            context = {"task": state.get("task", ""), "text": text,
                       "metadata": state.get("session_metadata", {}),
                       "plan": state.get("plan") or {}}  # fmt: skip
            return bool(predicate(context))
        except Exception:  # user code that fails means the cue did not fire
            return False
    return False


def _observed(state: AtlasState) -> tuple[set[str], str]:
    """Tool names called and output text of every attempt, and the final answer."""
    names: set[str] = set()
    outputs = [state.get("final_answer", "")]
    for record in (state.get("steps") or {}).values():
        for attempt in record.get("attempts", []):
            names.update(call.get("name", "") for call in attempt.get("tool_calls") or [])
            outputs.append(str(attempt.get("output") or ""))
    return names, "\n".join(outputs)


def session_uses(entries: list[dict[str, Any]], state: AtlasState) -> dict[str, SessionUse]:
    """Per entry id: did its cue fire in this session, and was its action adopted."""
    text = cue_text(state)
    names, output = _observed(state)
    uses: dict[str, SessionUse] = {}
    for entry in entries:
        hit = cue_hit(entry["cue"], text, state)
        handle = handle_of(entry["action"])
        adopted = handle is not None and (handle in names or handle in output)
        uses[entry["id"]] = {"cue_hit": hit, "adopted": adopted,
                             "applied": adopted if handle else hit}  # fmt: skip
    return uses


def empty_stats() -> dict[str, Any]:
    """Statistics of an entry that has seen no session yet."""
    return {
        "sessions": 0, "cue_hits": 0, "adoptions": 0, "transfer_sessions": 0,
        "reward_with": {"sum": 0.0, "count": 0}, "reward_without": {"sum": 0.0, "count": 0},
        "last_session": None,
    }  # fmt: skip


def record_use(
    entry: dict[str, Any],
    use: SessionUse,
    *,
    reward: float | None,
    session_id: str,
    task: str,
    config: LearningConfig,
) -> dict[str, Any]:
    """The entry with this session counted in its statistics (a new dict)."""
    stats = {**empty_stats(), **entry.get("stats", {})}
    stats["sessions"] += 1
    stats["cue_hits"] += int(use["cue_hit"])
    stats["adoptions"] += int(use["adopted"])
    origin = (entry.get("provenance") or {}).get("task_digest")
    if use["cue_hit"] and origin and task_digest(task) != origin:
        stats["transfer_sessions"] += 1
    if reward is not None:
        side = "reward_with" if use["applied"] else "reward_without"
        bucket = dict(stats[side])
        bucket["sum"] = round(bucket["sum"] + reward, 6)
        bucket["count"] += 1
        stats[side] = bucket
    stats["last_session"] = session_id
    updated = {**entry, "stats": stats}
    tracking = config.usage_tracking
    if tracking.capture_examples and use["cue_hit"] and tracking.max_examples_per_entry:
        example = {"session_id": session_id, "task": task[:200], "adopted": use["adopted"],
                   "reward": reward}  # fmt: skip
        examples = [*entry.get("examples", []), example]
        updated["examples"] = examples[-tracking.max_examples_per_entry :]
    return updated


def mean(bucket: dict[str, Any]) -> float | None:
    """The mean of a ``{sum, count}`` bucket, or None when empty."""
    return bucket["sum"] / bucket["count"] if bucket.get("count") else None


def summary(stats: dict[str, Any]) -> dict[str, float | int | None]:
    """Rates and the reward delta, for reports and pruning."""
    sessions = stats.get("sessions", 0)
    with_mean = mean(stats.get("reward_with", {}))
    without_mean = mean(stats.get("reward_without", {}))
    delta = None if with_mean is None or without_mean is None else with_mean - without_mean
    return {
        "sessions": sessions,
        "cue_hit_rate": stats.get("cue_hits", 0) / sessions if sessions else None,
        "adoption_rate": stats.get("adoptions", 0) / sessions if sessions else None,
        "reward_with": with_mean,
        "reward_without": without_mean,
        "reward_delta": delta,
        "transfer_sessions": stats.get("transfer_sessions", 0),
    }
