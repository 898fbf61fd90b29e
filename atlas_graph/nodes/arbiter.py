"""The arbiter node (tier 2): a larger model settles the judges that disagreed or were unsure.

The graph visits it only when the reward node escalated at least one judge. The arbiter sees
the task, the answer (or the step) and a summary of that judge's tier-1 samples, and gives the
judge's final score; the judge keeps ``escalated: true`` with the reason. The arbiter model is
``rim.large_model`` (Atlas's ``rim.arbiter``) or ``models={"arbiter": ...}``; without one the
judge's own model arbitrates, so an escalation never stops a session.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import field_validator

from atlas_graph.config import JudgeConfig
from atlas_graph.errors import ModelOutputError, one_line
from atlas_graph.models import Role
from atlas_graph.nodes.judges import (
    Call,
    ScoredReply,
    audit_entry,
    model_label,
    normalized_principles,
)
from atlas_graph.nodes.reward import (
    SESSION,
    active_judges,
    assemble,
    emit_reward,
    subject_messages,
)
from atlas_graph.services import AtlasContext, Node, Services
from atlas_graph.state import AtlasState
from atlas_graph.structured import clamp_unit
from atlas_graph.usage import sum_usage

ARBITER_PROMPT = """You are the arbiter of a reward system. One judge scored the same work
several times and its samples disagreed or were unsure. Read the work and the judge's samples,
weigh the principles they named, decide which reading is right, and give the final score from
0 (fails) to 1 (excellent) with a short rationale and your uncertainty from 0 to 1.
Reply with JSON only:
{"principles": [{"name": "...", "weight": 0.5, "description": "..."}],
 "score": 0.7, "rationale": "...", "uncertainty": 0.1}"""


class ArbiterReply(ScoredReply):
    """The arbiter's final word on one judge: a judge's reply whose uncertainty may be absent."""

    uncertainty: float | None = None

    @field_validator("uncertainty", mode="before")
    @classmethod
    def _uncertainty(cls, value: Any) -> float | None:
        return None if value is None else clamp_unit(value)


def tier1_summary(entry: dict[str, Any]) -> str:
    """The judge's tier-1 samples as the arbiter reads them."""
    lines = [
        f"Judge: {entry['identifier']} ({entry.get('kind', 'judge')})",
        f"Escalated because: {entry['escalation_reason']}",
        f"Tier-1 mean score: {entry['score']:.2f}",
        "Samples:",
    ]
    for sample in entry["samples"]:
        principles = ", ".join(f"{p['name']} ({p['weight']:.2f})" for p in sample["principles"])
        temperature = sample["temperature"]
        lines.append(
            f"- temperature {temperature if temperature is not None else '-'}: "
            f"score {sample['score']:.2f}, uncertainty {sample['uncertainty']:.2f}; "
            f"principles: {principles or 'none'}; rationale: {sample['rationale']}"
        )
    if entry.get("invalid_samples"):
        lines.append(f"Unreadable samples: {len(entry['invalid_samples'])}")
    return "\n".join(lines)


def judged_entries(state: AtlasState) -> dict[str, list[dict[str, Any]]]:
    """The judges' results by subject, as the reward node left them in state."""
    judged: dict[str, list[dict[str, Any]]] = {}
    reward = state.get("reward") or {}
    if reward.get("raw", {}).get("source") == "judges":
        judged[SESSION] = copy.deepcopy(reward["judges"])
    for step_id, record in state.get("steps", {}).items():
        step_reward = record.get("reward") or {}
        if step_reward.get("raw", {}).get("source") == "step_judges":
            judged[step_id] = copy.deepcopy(step_reward["judges"])
    return judged


def make_arbiter_node(services: Services) -> Node:
    """Settle every escalated judge with the arbiter model, then finish the reward."""
    rim = services.config.rim

    async def settle(
        entry: dict[str, Any],
        judge: JudgeConfig,
        subject: str,
        message: str,
        runtime: Runtime[AtlasContext],
        limit: asyncio.Semaphore,
    ) -> Call:
        role: Role
        if services.has_model("arbiter", runtime):
            role, params = "arbiter", None
        else:  # no larger model configured: the judge's own model arbitrates
            role, params = "judge", judge.llm
        model = services.model(role, runtime, max_tokens=judge.max_tokens, params=params)
        runnable = services.structured(
            role, ArbiterReply, runtime, max_tokens=judge.max_tokens, params=params
        )
        messages = [
            SystemMessage(ARBITER_PROMPT),
            HumanMessage(f"{message}\n\n{tier1_summary(entry)}"),
        ]
        call = Call(judge=judge.identifier, model=model_label(model), temperature=None)
        reply = None
        try:
            async with limit:
                answer = await runnable.ainvoke(messages)
        except ModelOutputError as error:
            call.usage = error.usage
            call.error = f"unreadable arbiter reply: {one_line(error)}"
        else:
            reply, verdict = answer.reply, answer.value
            call.usage = answer.usage
            call.sample = {
                "score": verdict.score,
                "rationale": verdict.rationale,
                "principles": normalized_principles(verdict.principles, []) or entry["principles"],
                "uncertainty": verdict.uncertainty,
            }
        if rim.audit_prompts:
            call.keep_exchange(messages, reply, "")
        return call

    async def arbiter(state: AtlasState, runtime: Runtime[AtlasContext]) -> AtlasState:
        reward = state.get("reward") or {}
        pending = reward.get("raw", {}).get("pending_arbiter") or []
        judges = {
            judge.identifier: judge
            for judge in active_judges(rim, has_model=services.has_model("judge", runtime))
        }
        judged = judged_entries(state)
        messages = subject_messages(state, rim.scope)
        limit = asyncio.Semaphore(rim.parallel_workers)
        targets = [
            (item["subject"], entry)
            for item in pending
            for entry in judged.get(item["subject"], [])
            if entry["identifier"] == item["judge"]
        ]

        def config_of(entry: dict[str, Any]) -> JudgeConfig:
            # a judge removed from the config since tier 1 still gets its final score
            found = judges.get(entry["identifier"])
            return found or JudgeConfig(identifier=entry["identifier"], kind="custom")

        calls = await asyncio.gather(
            *(
                settle(entry, config_of(entry), subject, messages[subject], runtime, limit)
                for subject, entry in targets
            )
        )
        audit: list[dict[str, Any]] = []
        session_id = state.get("session_id", "")
        for (subject, entry), call in zip(targets, calls, strict=True):
            tier1_score = entry["score"]
            entry["tier1_score"] = tier1_score
            entry["arbitrated"] = True
            entry["arbiter_model"] = call.model
            if call.sample is not None:
                entry["score"] = call.sample["score"]
                entry["rationale"] = call.sample["rationale"]
                entry["principles"] = call.sample["principles"]
                if call.sample["uncertainty"] is not None:
                    entry["uncertainty"] = call.sample["uncertainty"]
            else:
                entry["rationale"] = f"{call.error}; tier-1 mean kept. {entry['rationale']}"
            audit.append(audit_entry(call, stage="arbiter", subject=subject))
            services.emit(
                runtime, "arbiter_escalation", session_id=session_id, actor="arbiter",
                step_id=None if subject == SESSION else int(subject), judge=entry["identifier"],
                subject=subject, reason=entry["escalation_reason"], tier1_score=tier1_score,
                score=entry["score"], model=call.model, valid=call.sample is not None,
            )  # fmt: skip
        update = assemble(state, judged, rim)
        update["reward_audit"] = [*state.get("reward_audit", []), *audit]
        usages = [call.usage for call in calls if call.usage]
        if usages:
            update["usage"] = {"arbiter": sum_usage(usages)}
        emit_reward(services, runtime, {**state, **update}, actor="arbiter")
        return update

    return arbiter
