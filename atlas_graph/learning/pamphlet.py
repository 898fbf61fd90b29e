"""The pamphlet: the live entries of one audience, as prompt text within a character budget."""

from __future__ import annotations

import hashlib
from typing import Any

from atlas_graph.learning.playbook import LIVE_STATUSES, Audience, handle_of

CHAR_BUDGET = 2400
"""Pamphlet characters per audience: entries beyond it wait for a pruned one's place."""
HEADER = "Playbook from earlier sessions (apply an entry when its cue matches the work):"


def _line(entry: dict[str, Any]) -> str:
    cue = entry["cue"]
    handle = handle_of(entry["action"])
    text = f"- When {cue['type']} `{cue['pattern']}` matches: {entry['action']['imperative']}"
    if handle:
        text += f" (use `{handle}`)"
    text += f". Expected: {entry['expected_effect']}"
    return text + (" [on trial]" if entry.get("status") == "provisional" else "")


def render(
    entries: list[dict[str, Any]], audience: Audience, budget: int = CHAR_BUDGET
) -> tuple[str, list[str]]:
    """``(pamphlet text, ids of the entries it holds)``; accepted and best-scored first."""
    live = [
        e for e in entries if e.get("audience") == audience and e.get("status") in LIVE_STATUSES
    ]
    live.sort(
        key=lambda e: (e["status"] != "accepted", -float(e.get("rubric", {}).get("total", 0)))
    )
    lines: list[str] = []
    ids: list[str] = []
    size = len(HEADER)
    for entry in live:
        line = _line(entry)
        if size + 1 + len(line) > budget:
            continue
        lines.append(line)
        ids.append(entry["id"])
        size += 1 + len(line)
    return ("\n".join([HEADER, *lines]) if lines else ""), ids


def applied(text: str, ids: list[str]) -> dict[str, Any] | None:
    """What the session records of a pamphlet: ``{digest, char_count, entry_count, entry_ids}``."""
    if not text:
        return None
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return {"digest": digest, "char_count": len(text), "entry_count": len(ids), "entry_ids": ids}
