"""The synthesizer: the learning model reads one session and proposes playbook entries.

It sees the session's trajectory (steps, tool calls, guidance, verdicts), its reward, the
current playbook with each entry's statistics, and the recent rewards of the learning key,
and replies with a ``PlaybookUpdate`` (structured output).
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from atlas_graph import prompts
from atlas_graph.learning.playbook import PlaybookUpdate
from atlas_graph.learning.usage import summary
from atlas_graph.services import AtlasContext, Services
from atlas_graph.state import AtlasState
from atlas_graph.usage import Usage

_OUTPUT_CHARS = 600


def trajectory(state: AtlasState) -> list[dict[str, Any]]:
    """The steps as the synthesizer reads them: what was tried, called, said and judged."""
    plan = state.get("plan")
    specs = {step["id"]: step for step in (plan["steps"] if plan else [])}
    steps = []
    for step_id, record in sorted((state.get("steps") or {}).items(), key=lambda kv: int(kv[0])):
        attempts = record.get("attempts", [])
        steps.append({
            "step": spec["description"] if (spec := specs.get(int(step_id))) else "",
            "attempts": len(attempts),
            "tool_calls": sorted({c.get("name", "") for a in attempts
                                  for c in a.get("tool_calls") or []}),
            "guidance": record.get("guidance", []),
            "verdict": record.get("validation"),
            "output": str(record.get("output", ""))[:_OUTPUT_CHARS],
        })  # fmt: skip
    return steps


def playbook_view(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The live playbook as the synthesizer reads it, with each entry's record so far."""
    return [
        {"id": e["id"], "audience": e["audience"], "cue": e["cue"], "action": e["action"],
         "expected_effect": e["expected_effect"], "status": e["status"],
         "stats": summary(e.get("stats", {}))}
        for e in entries if e.get("status") in ("accepted", "provisional")
    ]  # fmt: skip


def message(state: AtlasState, entries: list[dict[str, Any]], recent: list[dict[str, Any]]) -> str:
    """The synthesizer's user message for one session."""
    reward = state.get("reward") or {}
    rewards = [s.get("reward") for s in recent]
    return (
        f"Task:\n{state.get('task', '')}\n\nReward: {reward.get('score')}\n"
        f"Rationale: {reward.get('rationale', '')}\n\n"
        f"Steps:\n{json.dumps(trajectory(state), indent=1, default=str)}\n\n"
        f"Final answer:\n{str(state.get('final_answer', ''))[:_OUTPUT_CHARS]}\n\n"
        f"Current playbook:\n{json.dumps(playbook_view(entries), indent=1, default=str)}\n\n"
        f"Recent session rewards of this learning key (oldest first): {rewards}"
    )


def system_prompt(services: Services) -> str:
    """The configured synthesizer prompt, with the schema's limits spelled out."""
    learning = services.config.learning
    schema = learning.playbook_schema
    limits = [f"Allowed cue types: {', '.join(schema.cue_types)}.",
              f"Entries stay under {learning.gates.max_text_length} characters."]  # fmt: skip
    if schema.allowed_runtime_handles or schema.runtime_handle_prefixes:
        handles = [
            *schema.allowed_runtime_handles,
            *(f"{p}*" for p in schema.runtime_handle_prefixes),
        ]
        limits.append(f"Runtime handles must be one of: {', '.join(handles)}.")
    return (learning.prompts.synthesizer or prompts.PLAYBOOK_SYNTHESIZER) + "\n" + " ".join(limits)


async def asynthesize(
    services: Services,
    state: AtlasState,
    runtime: Runtime[AtlasContext] | None,
    *,
    entries: list[dict[str, Any]],
    recent: list[dict[str, Any]],
) -> tuple[PlaybookUpdate, Usage]:
    """Ask the learning model for a playbook update.

    Raises:
        ModelOutputError: The reply is not a ``PlaybookUpdate``.
    """
    runnable = services.structured("learning", PlaybookUpdate, runtime)
    messages = [
        SystemMessage(system_prompt(services)),
        HumanMessage(message(state, entries, recent)),
    ]
    answer = await runnable.ainvoke(messages)
    return answer.value, answer.usage
