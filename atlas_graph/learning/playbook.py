"""The ``playbook_entry.v1`` models: pydantic at the edge, plain dicts in state and Store."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from atlas_graph.config import PLAYBOOK_SCHEMA_VERSION, CueType, ScopeCategory

Audience = Literal["student", "teacher"]
EntryStatus = Literal["provisional", "accepted", "rejected", "pruned"]
LIVE_STATUSES: tuple[EntryStatus, ...] = ("accepted", "provisional")
"""Statuses whose entries enter prompts and are tracked."""


class Cue(BaseModel):
    """When the entry applies, machine-detectable in the task and step text."""

    model_config = ConfigDict(extra="ignore")

    type: CueType
    pattern: str = Field(description="a regex, comma-separated keywords, or module:function")


class PlaybookAction(BaseModel):
    """What to do when the cue fires, optionally through a runtime handle or tool."""

    model_config = ConfigDict(extra="ignore")

    imperative: str
    runtime_handle: str | None = None
    tool: str | None = Field(default=None, description="the tool name, when it is a tool call")


class Scope(BaseModel):
    """Reinforce what worked or differentiate from what failed, with its constraints."""

    model_config = ConfigDict(extra="ignore")

    category: ScopeCategory | None = None
    constraints: list[str] = Field(default_factory=list)

    @field_validator("constraints", mode="before")
    @classmethod
    def _as_list(cls, value: object) -> object:
        if value is None:
            return []
        return [value] if isinstance(value, str) else value


class EntryDraft(BaseModel):
    """One entry as the synthesizer proposes it; ``id`` names an existing entry to revise."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    audience: Audience
    cue: Cue
    action: PlaybookAction
    expected_effect: str
    scope: Scope = Field(default_factory=Scope)


class PlaybookUpdate(BaseModel):
    """The synthesizer's reply: new or revised entries and the session's learning notes."""

    model_config = ConfigDict(extra="ignore")

    entries: list[EntryDraft] = Field(default_factory=list)
    student_learning: str | None = None
    teacher_learning: str | None = None


class PlaybookEntry(EntryDraft):
    """A stored entry: the draft plus identity, version, provenance and status."""

    id: str
    schema_version: str = PLAYBOOK_SCHEMA_VERSION
    version: int = 1
    provenance: dict[str, str | None] = Field(default_factory=dict)
    status: EntryStatus = "provisional"


def entry_id(draft: EntryDraft) -> str:
    """One id per audience, cue and imperative, so a repeated proposal revises one entry."""
    material = json.dumps(
        [draft.audience, draft.cue.type, draft.cue.pattern.strip().lower(),
         " ".join(draft.action.imperative.lower().split())]
    )  # fmt: skip
    return "pb-" + hashlib.sha256(material.encode()).hexdigest()[:12]


def handle_of(action: PlaybookAction | dict[str, object]) -> str | None:
    """The runtime handle or tool an action names, if any."""
    if isinstance(action, PlaybookAction):
        return action.runtime_handle or action.tool
    handle = action.get("runtime_handle") or action.get("tool")
    return str(handle) if handle else None
