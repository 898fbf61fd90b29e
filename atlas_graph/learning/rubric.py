"""The rubric: actionability, generality, hookability and concision, weighted by config."""

from __future__ import annotations

from atlas_graph.config import LearningConfig
from atlas_graph.learning.gates import (
    actionability_failures,
    cue_failures,
    entry_text,
    incident_tokens,
)
from atlas_graph.learning.playbook import EntryDraft, handle_of

MIN_SCORE = 0.5
"""Entries that pass the gates but score below this are rejected as weak."""

_HOOKABILITY = {"regex": 1.0, "predicate": 0.9, "keyword": 0.8}


def score(draft: EntryDraft, config: LearningConfig) -> dict[str, float]:
    """Each rubric score in [0, 1] and their weighted ``total``."""
    actionable = not actionability_failures(draft, config)
    scores = {
        "actionability": (1.0 if handle_of(draft.action) else 0.7) if actionable else 0.2,
        "generality": max(0.0, 1.0 - 0.25 * len(incident_tokens(draft, config))),
        "hookability": 0.0 if cue_failures(draft, config) else _HOOKABILITY[draft.cue.type],
        "concision": _concision(len(entry_text(draft)), config.gates.max_text_length),
    }
    weights = config.rubric_weights.model_dump()
    total = sum(weights[name] * value for name, value in scores.items()) / sum(weights.values())
    return {**{name: round(value, 3) for name, value in scores.items()}, "total": round(total, 3)}


def _concision(size: int, limit: int) -> float:
    """Full marks up to half the limit, falling to zero at the limit."""
    half = limit / 2
    return 1.0 if size <= half else max(0.0, (limit - size) / half)
