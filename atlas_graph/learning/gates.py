"""Hard gates an entry passes before it is scored: actionability, cue, generality, length.

Each gate returns the reasons it fails, so a rejected entry says why in its history.
"""

from __future__ import annotations

import re

from atlas_graph.callables import load_object
from atlas_graph.config import LearningConfig
from atlas_graph.learning.playbook import EntryDraft, handle_of

# openings that hedge instead of telling the agent what to do
_HEDGES = {"maybe", "perhaps", "possibly", "consider", "it", "this", "the", "a", "an", "there",
           "we", "i", "you", "should", "could", "might"}  # fmt: skip
_WORD = re.compile(r"[A-Za-z][\w'-]*")
_INCIDENT = re.compile(r"\b(?:[A-Z]{2,}-\d+|\d{4,}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f-]{4,})\b")


def entry_text(draft: EntryDraft) -> str:
    """The words an entry puts into a prompt: its imperative and expected effect."""
    return f"{draft.action.imperative.strip()} {draft.expected_effect.strip()}".strip()


def actionability_failures(draft: EntryDraft, config: LearningConfig) -> list[str]:
    """An imperative that starts with a verb, and a runtime handle the schema allows."""
    schema = config.playbook_schema
    failures: list[str] = []
    words = _WORD.findall(draft.action.imperative)
    if len(words) < 2 or words[0].lower() in _HEDGES:
        failures.append("the action is not an imperative")
    handle = handle_of(draft.action)
    if handle is None:
        if not schema.allow_missing_tool_mapping:
            failures.append("the action names no runtime handle or tool")
        return failures
    allowed = schema.allowed_runtime_handles
    prefixes = schema.runtime_handle_prefixes
    if (allowed or prefixes) and handle not in allowed and not handle.startswith(tuple(prefixes)):
        failures.append(f"runtime handle {handle!r} is not allowed by learning.schema")
    return failures


def cue_failures(draft: EntryDraft, config: LearningConfig) -> list[str]:
    """A cue of an allowed type that compiles and does not fire on every text."""
    cue = draft.cue
    if cue.type not in config.playbook_schema.cue_types:
        return [f"cue type {cue.type!r} is not in learning.schema.cue_types"]
    pattern = cue.pattern.strip()
    if not pattern:
        return ["the cue has no pattern"]
    if cue.type == "regex":
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            return [f"the cue regex does not compile: {error}"]
        if compiled.search("") is not None:
            return ["the cue regex matches every text"]
    elif cue.type == "predicate":
        try:
            predicate = load_object(pattern)
        except Exception:  # any import problem means the cue cannot fire
            return [f"the cue predicate {pattern!r} cannot be imported"]
        if not callable(predicate):
            return [f"the cue predicate {pattern!r} is not callable"]
    return []


def incident_tokens(draft: EntryDraft, config: LearningConfig) -> list[str]:
    """Tokens that tie an entry to one incident: banned tokens, ids, unknown proper nouns."""
    text = entry_text(draft)
    lowered = text.lower()
    found = [token for token in config.gates.banned_incident_tokens if token.lower() in lowered]
    found += _INCIDENT.findall(text)
    allowed = {noun.lower() for noun in config.gates.allowed_proper_nouns}
    for sentence in re.split(r"(?<=[.!?;:])\s+", text):
        for word in _WORD.findall(sentence)[1:]:  # a sentence's first word is capitalised anyway
            if word[0].isupper() and word.lower() not in allowed and not word.isupper():
                found.append(word)
    return found


def generality_failures(draft: EntryDraft, config: LearningConfig) -> list[str]:
    """At most ``generality_overflow_margin`` incident-specific tokens."""
    tokens = incident_tokens(draft, config)
    if len(tokens) > config.gates.generality_overflow_margin:
        return [f"too specific: {', '.join(dict.fromkeys(tokens))}"]
    return []


def length_failures(draft: EntryDraft, config: LearningConfig) -> list[str]:
    """Entries over ``max_text_length`` (plus Atlas's overflow margin) crowd the pamphlet out."""
    size = len(entry_text(draft))
    limit = config.gates.max_text_length
    if size <= limit + config.gates.allow_length_overflow_margin:
        return []
    return [f"{size} characters, over max_text_length {limit}"]


def gate(draft: EntryDraft, config: LearningConfig) -> dict[str, object]:
    """``{passed, failures, checked}``: every enforced gate, the length gate always."""
    gates = config.gates
    checked = ["length"]
    failures = length_failures(draft, config)
    if gates.enforce_actionability:
        checked.append("actionability")
        failures += actionability_failures(draft, config)
    if gates.enforce_cue:
        checked.append("cue")
        failures += cue_failures(draft, config)
    if gates.enforce_generality:
        checked.append("generality")
        failures += generality_failures(draft, config)
    return {"passed": not failures, "failures": failures, "checked": checked}
