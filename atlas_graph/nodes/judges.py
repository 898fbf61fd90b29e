"""Tier-1 judging: sample each judge at each temperature and decide whether to escalate.

A judge first states two or three weighted principles for the work in front of it, then
scores against them: ``{principles, score, rationale, uncertainty}``. Sampling one judge at
several temperatures shows how settled its opinion is; a spread above
``rim.variance_threshold`` or a sample less sure than ``rim.uncertainty_threshold`` sends the
judge to the arbiter. A reply that cannot be read is an invalid sample, never a crash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean, pstdev
from typing import Any

from langchain_core.messages import BaseMessage
from pydantic import BaseModel, ConfigDict, Field, field_validator

from atlas_graph.config import JudgeConfig, RimConfig
from atlas_graph.errors import ModelOutputError, one_line
from atlas_graph.prompts import tool_calls_section
from atlas_graph.structured import Structured, clamp_unit, finite_number
from atlas_graph.usage import Usage

OUTPUT_CONTRACT = """First state 2 or 3 principles that matter most for judging this work, each
with a weight (the weights sum to 1). Then score the work against them from 0 (fails) to 1
(excellent), explain the score briefly, and give your uncertainty from 0 (sure) to 1 (guessing).
Reply with JSON only:
{"principles": [{"name": "...", "weight": 0.6, "description": "..."}],
 "score": 0.8, "rationale": "...", "uncertainty": 0.1}"""

BUILTIN_PROMPTS: dict[str, str] = {
    "process": """You are a process judge in a reward system. Judge how the work was done:
whether the steps were sound and complete, whether the reasoning holds, how many retries and
failures it took, and whether the final answer follows from the work.""",
    "helpfulness": """You are a helpfulness judge in a reward system. Judge the final answer
from the point of view of the person who asked: does it solve their task, is it correct,
complete and clear, and can they act on it?""",
    "custom": """You are a reward judge. Judge how well the work solves the task.""",
}


class Principle(BaseModel):
    """One thing a judge weighs, and how much."""

    model_config = ConfigDict(extra="ignore")

    name: str
    weight: float = 1.0
    description: str = ""

    @field_validator("weight", mode="before")
    @classmethod
    def _weight(cls, value: Any) -> float:
        number = finite_number(value)
        return max(0.0, number)

    @field_validator("description", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        return "" if value is None else str(value)


class ScoredReply(BaseModel):
    """What a judge's and the arbiter's replies share: principles, a score and a rationale."""

    model_config = ConfigDict(extra="ignore")

    principles: list[Principle] = Field(default_factory=list)
    score: float = Field(description="0 to 1")
    rationale: str = ""

    @field_validator("score", mode="before")
    @classmethod
    def _unit_interval(cls, value: Any) -> float:
        return clamp_unit(value)

    @field_validator("principles", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        return principle_items(value)

    @field_validator("rationale", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        return "" if value is None else str(value)


class JudgeReply(ScoredReply):
    """A judge's structured reply; score and uncertainty are clamped to [0, 1]."""

    uncertainty: float = Field(description="0 (sure) to 1 (guessing)")

    @field_validator("uncertainty", mode="before")
    @classmethod
    def _unit_uncertainty(cls, value: Any) -> float:
        return clamp_unit(value)


def principle_items(value: Any) -> Any:
    """Accept a bare list of names, a common shorthand for equally weighted principles."""
    if isinstance(value, list):
        return [{"name": item} if isinstance(item, str) else item for item in value]
    return value


class JudgeRequest(BaseModel):
    """What a Python judge receives; ``step`` is set when it scores one step."""

    task: str
    final_answer: str
    lane: str
    plan: dict[str, Any]
    steps: dict[str, Any]
    session_metadata: dict[str, Any]
    step: dict[str, Any] | None = None


def normalized_principles(
    principles: list[Principle], configured: list[str]
) -> list[dict[str, Any]]:
    """Principles with weights that sum to 1; the configured ones when the judge named none."""
    if not principles:
        principles = [Principle(name=text, description=text) for text in configured]
    total = sum(item.weight for item in principles)
    return [
        {
            "name": item.name,
            "weight": round(item.weight / total if total > 0 else 1 / len(principles), 4),
            "description": item.description,
        }
        for item in principles
    ]


def judge_system_prompt(judge: JudgeConfig, rim: RimConfig) -> str:
    """A judge's system prompt: its instructions, its principles, the shared reply format.

    The instructions are the judge's own ``prompt``, else ``rim.judge_prompt``, else the
    built-in prompt of its kind.
    """
    text = judge.prompt or rim.judge_prompt or BUILTIN_PROMPTS.get(judge.kind, "")
    if judge.principles:
        listed = "\n".join(f"- {item}" for item in judge.principles)
        text += f"\n\nStart from these principles:\n{listed}"
    return f"{text.strip()}\n\n{OUTPUT_CONTRACT}"


def session_message(
    task: str, final_answer: str, plan_steps: Sequence[Mapping[str, Any]], steps: Mapping[str, Any]
) -> str:
    """What a session judge sees: the task, the answer and how each planned step went."""
    lines = []
    for spec in plan_steps:
        record = steps.get(str(spec["id"]), {})
        attempts = len(record.get("attempts", []))
        first_line = (str(spec.get("description", "")).strip().splitlines() or [""])[0]
        lines.append(
            f"- step {spec['id']} ({first_line}): {record.get('status', 'not run')}, "
            f"{attempts} attempt(s)"
        )
    return f"Task:\n{task}\n\nFinal answer:\n{final_answer}\n\nSteps:\n" + (
        "\n".join(lines) or "(none)"
    )


def step_message(task: str, description: str, record: Mapping[str, Any]) -> str:
    """What a step judge sees: the task, the step, its last output and that attempt's tools."""
    prior = record.get("prior_results") or {}
    earlier = "\n".join(f"- step {key}: {value}" for key, value in prior.items()) or "(none)"
    attempts = record.get("attempts") or []
    tool_calls = (attempts[-1].get("tool_calls") if attempts else None) or []
    used = tool_calls_section(tool_calls, "the last attempt")
    return (
        f"Task:\n{task}\n\nStep: {description}\n\nResults of earlier steps:\n{earlier}{used}"
        f"\n\nStep output ({len(attempts)} attempt(s)):\n"
        f"{record.get('output', '')}"
    )


@dataclass
class Call:
    """One judge call: a valid sample or the reason it is invalid, with its cost."""

    judge: str
    model: str
    temperature: float | None
    sample: dict[str, Any] | None = None
    error: str | None = None
    usage: Usage | None = None
    prompt: str | None = None
    reply: str | None = None

    def keep_exchange(
        self, messages: list[BaseMessage], reply: BaseMessage | None, raw: str
    ) -> None:
        """Keep the prompt and the reply for the audit (``rim.audit_prompts``)."""
        self.prompt = "\n\n".join(str(message.content) for message in messages)
        self.reply = raw or str(getattr(reply, "content", ""))


def sample_from_reply(
    data: Any, configured: list[str], temperature: float | None
) -> dict[str, Any]:
    """Validate one reply into a sample.

    Raises:
        ValueError: the reply is not a judge reply (pydantic's ValidationError included).
    """
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    return judge_sample(JudgeReply.model_validate(data), configured, temperature)


def judge_sample(
    reply: JudgeReply, configured: list[str], temperature: float | None
) -> dict[str, Any]:
    """A validated judge reply as a sample, its principles normalised."""
    return {
        "score": reply.score,
        "rationale": reply.rationale,
        "principles": normalized_principles(reply.principles, configured),
        "uncertainty": reply.uncertainty,
        "temperature": temperature,
    }


async def sample_llm(
    structured: Structured[JudgeReply],
    messages: list[BaseMessage],
    *,
    judge: JudgeConfig,
    model: str,
    temperature: float,
    keep_prompt: bool,
) -> Call:
    """One LLM judge sample at ``temperature``; a reply unreadable even when asked again is
    an invalid sample."""
    call = Call(judge=judge.identifier, model=model, temperature=temperature)
    try:
        answer = await structured.ainvoke(messages, temperature=temperature)
    except ModelOutputError as error:
        call.usage = error.usage
        call.error = f"unreadable judge reply: {one_line(error)}"
        if keep_prompt:
            call.keep_exchange(messages, None, "")
        return call
    call.usage = answer.usage
    call.sample = judge_sample(answer.value, judge.principles, temperature)
    if keep_prompt:
        call.keep_exchange(messages, answer.reply, "")
    return call


def python_sample(result: Any, judge: JudgeConfig) -> dict[str, Any]:
    """A Python judge's return value (a number, a dict or a ``JudgeReply``) as a sample; sure
    unless it says.

    Raises:
        ValueError: the value is not a usable score.
    """
    if isinstance(result, BaseModel):
        result = result.model_dump()
    data = dict(result) if isinstance(result, Mapping) else {"score": result}
    data.setdefault("uncertainty", 0.0)
    return sample_from_reply(data, judge.principles, None)


def judge_outcome(
    judge: JudgeConfig, calls: list[Call], variance_threshold: float, uncertainty_threshold: float
) -> dict[str, Any]:
    """One judge's tier-1 result in the reward breakdown's judge shape.

    The score is the mean of the valid samples. ``escalated`` is set, with its reason, when
    the samples disagree or one is unsure; the arbiter then replaces the score. No valid
    sample at all is a score of 0 with uncertainty 1, and is not escalated. A Python judge is
    a rule: its one sample is final.
    """
    samples = [call.sample for call in calls if call.sample is not None]
    invalid: list[dict[str, Any]] = [
        {"temperature": call.temperature, "error": call.error}
        for call in calls
        if call.sample is None
    ]
    entry: dict[str, Any] = {
        "identifier": judge.identifier,
        "kind": judge.kind,
        "weight": judge.weight,
        "samples": samples,
        "invalid_samples": invalid,
        "escalated": False,
        "escalation_reason": None,
    }
    if not samples:
        # the reasons stay in invalid_samples: the rationale reaches the reward and, through
        # learning notes, the student's memory, which is no place for parse errors
        return {
            **entry,
            "score": 0.0,
            "uncertainty": 1.0,
            "rationale": f"no valid sample from {len(calls)} judge call(s)",
            "principles": normalized_principles([], judge.principles),
            "stddev": 0.0,
        }
    scores = [sample["score"] for sample in samples]
    uncertainties = [sample["uncertainty"] for sample in samples]
    spread = pstdev(scores) if len(scores) > 1 else 0.0
    surest = min(samples, key=lambda sample: sample["uncertainty"])
    reasons: list[str] = []
    if judge.kind != "python":
        if spread > variance_threshold:
            reasons.append(f"score stdev {spread:.3f} > variance_threshold {variance_threshold}")
        if max(uncertainties) > uncertainty_threshold:
            reasons.append(
                f"sample uncertainty {max(uncertainties):.2f} > uncertainty_threshold "
                f"{uncertainty_threshold}"
            )
    return {
        **entry,
        "score": fmean(scores),
        "uncertainty": fmean(uncertainties),
        "rationale": surest["rationale"],
        "principles": surest["principles"],
        "stddev": spread,
        "escalated": bool(reasons),
        "escalation_reason": "; ".join(reasons) or None,
    }


def audit_entry(call: Call, *, stage: str, subject: str) -> dict[str, Any]:
    """The audit record of one call, in the export's ``reward_audit`` shape."""
    sample = call.sample or {}
    entry: dict[str, Any] = {
        "stage": stage,
        "judge": call.judge,
        "model": call.model,
        "temperature": call.temperature,
        "score": sample.get("score"),
        "uncertainty": sample.get("uncertainty"),
        "rationale": sample.get("rationale", call.error or ""),
        "valid": call.sample is not None,
        "subject": subject,
    }
    if call.error:
        entry["error"] = call.error
    if call.prompt is not None:
        entry["prompt"] = call.prompt
        entry["reply"] = call.reply
    return entry


def model_label(model: Any) -> str:
    """A model's name for the audit: its model name when it has one."""
    for attribute in ("model_name", "model", "deployment_name"):
        value = getattr(model, attribute, None)
        if isinstance(value, str) and value:
            return value
    return type(model).__name__
