"""Agents written the way Atlas SDK documents them, unchanged, for the migration tests."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

SEEN: list[tuple[str, dict[str, Any] | None]] = []


def agent(prompt, metadata=None):  # Atlas's documented form, unannotated
    SEEN.append((prompt, metadata))
    return f"answer to: {metadata['task_payload'] if metadata else prompt}"


async def create_agent(prompt=None, metadata=None):
    SEEN.append((prompt, metadata))
    step = (metadata or {}).get("step_payload")
    if step is None:
        return "async answer"
    return f"step {step['step_id']} (attempt {step['attempt']}) of {metadata['task_payload']}"


def keyword_metadata(prompt: str, *, metadata: dict[str, Any] | None = None) -> str:
    SEEN.append((prompt, metadata))
    return "keyword answer"


def llm_reader(prompt: str, metadata: dict[str, Any] | None = None) -> str:
    config = (metadata or {})["llm_config"]
    return f"model={config['model']} provider={config['provider']}"


def self_run_tools(prompt: str, metadata: dict[str, Any] | None = None) -> str:
    """Atlas's tool-running agent: asks for a tool, runs it when called back, then answers."""
    metadata = metadata or {}
    tool = metadata.get("tool")
    if tool is not None:
        SEEN.append((prompt, metadata))
        assert json.loads(prompt) == {"tool": tool}
        left, right = tool["arguments"]["expression"].split("*")
        return str(int(left) * int(right))
    if metadata.get("tool_rounds"):
        result = metadata["tool_rounds"][-1]["results"][0]
        return f"The result is {result['content']}."
    return json.dumps(
        {
            "content": "",
            "tool_calls": [
                {"id": "c1", "name": "calculate", "arguments": {"expression": "17 * 23"}}
            ],
        }
    )


def json_answer(prompt: str, metadata: dict[str, Any] | None = None) -> str:
    return json.dumps({"answer": 42})


# --------------------------------------------------------------------------- triage, as Atlas


class TriageSignal(BaseModel):
    name: str
    value: Any = None
    annotation: str | None = None


class TriageRisk(BaseModel):
    category: str
    description: str
    severity: str = "moderate"
    likelihood: str | None = None


class PersonaReference(BaseModel):
    persona_id: str
    rationale: str | None = None


class TriageDossier(BaseModel):
    """Atlas's ``TriageDossier`` shape, as an Atlas triage adapter returns it."""

    task: str
    summary: str
    risks: list[TriageRisk] = Field(default_factory=list)
    signals: list[TriageSignal] = Field(default_factory=list)
    persona_references: list[PersonaReference] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


def atlas_triage(task: str, metadata: dict[str, Any]) -> TriageDossier:
    return TriageDossier(
        task=task,
        summary="billing dispute",
        risks=[TriageRisk(category="money", description="refund owed", severity="high")],
        signals=[TriageSignal(name="tier", value="gold", annotation="paying customer")],
        persona_references=[PersonaReference(persona_id="support-lead")],
        tags=["domain:support"],
        metadata={"fingerprint_hint": "fp-billing"},
    )
