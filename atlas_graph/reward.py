"""The reward node: score the session with judges, or reuse the teacher's verdicts.

Each configured judge (an LLM with a prompt, or a Python function) scores the final answer
once; judges run concurrently and their weighted mean is the session reward. In the paired
lane the teacher's validation verdict already is a judgement of the whole answer, so with
``rim.reuse_validation_as_reward`` it becomes the reward without another call.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from atlas_graph import prompts
from atlas_graph.callables import call_maybe_async, load_object
from atlas_graph.config import JudgeConfig
from atlas_graph.models import ModelOutputError, call_structured
from atlas_graph.services import AtlasContext, Node, Services
from atlas_graph.state import AtlasState


class JudgeScore(BaseModel):
    """One judge's structured reply."""

    model_config = ConfigDict(extra="ignore")

    score: float = Field(description="0 to 1")
    rationale: str = ""

    @field_validator("score", mode="before")
    @classmethod
    def _clamp(cls, value: Any) -> float:
        return min(1.0, max(0.0, float(value)))


class JudgeRequest(BaseModel):
    """What a Python judge receives."""

    task: str
    final_answer: str
    lane: str
    plan: dict[str, Any]
    steps: dict[str, Any]
    session_metadata: dict[str, Any]


def _judge_entry(judge: JudgeConfig, score: float, rationale: str, valid: bool) -> dict[str, Any]:
    principles = [
        {"name": text, "weight": round(1 / len(judge.principles), 4), "description": text}
        for text in judge.principles
    ]
    return {
        "identifier": judge.identifier,
        "kind": judge.kind,
        "weight": judge.weight,
        "score": score,
        "rationale": rationale,
        "principles": principles,
        "samples": [
            {
                "score": score,
                "rationale": rationale,
                "principles": principles,
                "uncertainty": None if valid else 1.0,
                "temperature": judge.llm.temperature if judge.llm else None,
                "valid": valid,
            }
        ],
        "escalated": False,
        "escalation_reason": None,
    }


def aggregate(judges: list[dict[str, Any]]) -> float:
    """Weighted mean of judge scores (a plain mean when every weight is zero)."""
    total_weight = sum(entry["weight"] for entry in judges)
    if total_weight <= 0:
        return sum(entry["score"] for entry in judges) / len(judges)
    return sum(entry["score"] * entry["weight"] for entry in judges) / total_weight


def make_reward_node(services: Services) -> Node:
    """Score the session; the breakdown follows the export contract's reward shape."""
    rim = services.config.rim
    python_judges = {
        judge.identifier: load_object(judge.import_path)
        for judge in rim.judges
        if judge.kind == "python" and judge.import_path
    }

    async def run_judge(
        judge: JudgeConfig, state: AtlasState, runtime: Runtime[AtlasContext]
    ) -> tuple[dict[str, Any], dict[str, int] | None]:
        if judge.kind == "python":
            request = JudgeRequest(
                task=state["task"], final_answer=state.get("final_answer", ""),
                lane=state["lane"], plan=dict(state["plan"]), steps=dict(state.get("steps", {})),
                session_metadata=state.get("session_metadata", {}),
            )  # fmt: skip
            try:
                result = await call_maybe_async(python_judges[judge.identifier], request)
                score = JudgeScore.model_validate(
                    result if isinstance(result, dict) else {"score": result}
                )
            except ValidationError as error:
                message = f"judge returned an unusable score: {error.errors()[0]['msg']}"
                return _judge_entry(judge, 0.0, message, valid=False), None
            except Exception as error:  # a broken judge is an invalid sample, not a crash
                message = f"judge raised {type(error).__name__}: {error}"
                return _judge_entry(judge, 0.0, message, valid=False), None
            return _judge_entry(judge, score.score, score.rationale, valid=True), None
        prompt = judge.prompt or rim.judge_prompt or prompts.JUDGE
        if judge.principles:
            prompt += "\n\nJudge against these principles:\n" + prompts.format_guidance(
                judge.principles
            )
        runnable = services.structured(
            "judge", JudgeScore, runtime, max_tokens=judge.max_tokens, params=judge.llm
        )
        messages = [
            SystemMessage(prompt),
            HumanMessage(prompts.judge_message(
                state["task"], state.get("final_answer", ""), state.get("steps", {})
            )),
        ]  # fmt: skip
        try:
            parsed, usage = await call_structured(runnable, JudgeScore, messages, role="judge")
        except ModelOutputError as error:
            entry = _judge_entry(judge, 0.0, f"invalid judge reply: {error}", valid=False)
            return entry, error.usage
        return _judge_entry(judge, parsed.score, parsed.rationale, valid=True), usage

    async def reward(state: AtlasState, runtime: Runtime[AtlasContext]) -> dict[str, Any]:
        verdicts = [
            record["validation"]
            for record in state.get("steps", {}).values()
            if record.get("validation")
        ]
        judges = [judge for judge in rim.judges if judge.enabled]
        if not judges and services.has_model("judge", runtime):
            judges = [JudgeConfig(identifier="session", kind="process")]
        reuse = rim.reuse_validation_as_reward and state["lane"] == "paired"
        # a certification run's verdict is the fingerprint's reference score: reuse it as is
        reuse = reuse or bool((state.get("adaptive_summary") or {}).get("certification_run"))
        update: dict[str, Any] = {}
        if verdicts and (reuse or not judges):
            score = sum(v["score"] for v in verdicts) / len(verdicts)
            reason = "paired lane" if reuse else "no judge configured"
            breakdown = {
                "score": score,
                "rationale": f"teacher validation reused as reward ({reason})",
                "judges": [
                    {
                        "identifier": "teacher_validation", "kind": "validation", "weight": 1.0,
                        "score": score, "rationale": " | ".join(v["rationale"] for v in verdicts),
                        "principles": [], "samples": [], "escalated": False,
                        "escalation_reason": None,
                    }
                ],
                "raw": {"source": "teacher_validation"},
            }  # fmt: skip
        elif judges:
            results = await asyncio.gather(*(run_judge(j, state, runtime) for j in judges))
            entries = [entry for entry, _ in results]
            usages = [usage for _, usage in results if usage]
            if usages:
                update["usage"] = {
                    "judge": {
                        key: sum(u[key] for u in usages)
                        for key in ("prompt_tokens", "completion_tokens", "total_tokens", "calls")
                    }
                }
            breakdown = {
                "score": aggregate(entries),
                "rationale": " | ".join(f"{e['identifier']}: {e['rationale']}" for e in entries),
                "judges": entries,
                "raw": {"source": "judges"},
            }
        else:
            return {"reward": None, "plan_notes": ["no reward: no judge and no verdict to reuse"]}
        update["reward"] = breakdown
        scores = [{"identifier": e["identifier"], "score": e["score"]} for e in breakdown["judges"]]
        services.emit(
            runtime, "reward", session_id=state.get("session_id", ""), actor="judge",
            score=breakdown["score"], source=breakdown["raw"]["source"], judges=scores,
        )  # fmt: skip
        return update

    return reward
