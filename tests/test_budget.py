"""Cost ledger and session budgets: prices per model, Result.cost, and a budget that stops the
loop cleanly in every lane with the reason recorded."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import teacher_responder, verdict

from atlas_graph.agents import AgentRequest
from atlas_graph.config import ConfigError, load_config
from atlas_graph.pricing import DEFAULT_PRICES, Budget, Ledger, Price, price_of
from atlas_graph.runner import arun
from atlas_graph.testing import ScriptedChatModel

STUDENT_TOKENS = 50


class Student:
    """A student that reports 50 tokens a call and counts its calls by mode."""

    def __init__(self, plan: list[dict[str, Any]] | None = None) -> None:
        self.plan = plan or [{"id": 1, "description": "answer", "depends_on": []}]
        self.calls: list[str] = []

    def __call__(self, request: AgentRequest) -> dict[str, Any]:
        self.calls.append(request.mode)
        usage = {"prompt_tokens": 40, "completion_tokens": 10}
        if request.mode == "planning":
            return {"content": json.dumps({"steps": self.plan}), "usage": usage}
        return {"content": f"answer to {request.task}", "usage": usage}


def config(lane: str, **budget: Any) -> dict[str, Any]:
    return {
        "orchestration": {"forced_mode": lane, "max_retries": 2, "budget": budget or None},
        "rim": {"reward_auto_lane": True, "reuse_validation_as_reward": False},
        "storage": {"backend": "memory"},
    }


def failing_teacher() -> ScriptedChatModel:
    return ScriptedChatModel(
        responder=teacher_responder(validate=lambda _: verdict(valid=False, score=0.1))
    )


def judge() -> ScriptedChatModel:
    reply = {"principles": [{"name": "p", "weight": 1.0, "description": "d"}], "score": 0.9,
             "rationale": "ok", "uncertainty": 0.1}  # fmt: skip
    return ScriptedChatModel(responses=[reply], repeat_last=True)


# --------------------------------------------------------------------------- prices


def test_price_lookup_exact_prefixed_and_dated() -> None:
    assert price_of("gpt-4o-mini", DEFAULT_PRICES) == Price(0.15, 0.60)
    assert price_of("openai/gpt-4o-mini", DEFAULT_PRICES) == Price(0.15, 0.60)
    assert price_of("claude-sonnet-4-5-20250929", DEFAULT_PRICES) == Price(3.0, 15.0)
    assert price_of("my-local-model", DEFAULT_PRICES) is None


def test_ledger_costs_roles_and_names_unpriced_ones() -> None:
    ledger = Ledger({"student": "gpt-4o-mini", "teacher": "local"}, DEFAULT_PRICES)
    usage = {
        "student": {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000,
                    "total_tokens": 2_000_000, "calls": 3},
        "teacher": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "calls": 1},
    }  # fmt: skip
    assert ledger.cost(usage) == {"student": 0.75, "total": 0.75}
    assert ledger.unpriced(usage) == ["teacher"]


def test_budget_reasons() -> None:
    ledger = Ledger({"teacher": "m"}, {"m": Price(1_000_000.0, 0.0)})
    usage = {"teacher": {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3,
                         "calls": 1}}  # fmt: skip
    assert Budget(ledger, max_tokens=4).exceeded(usage) is None
    assert Budget(ledger, max_tokens=3).exceeded(usage) == "3 tokens spent, budget 3"
    assert Budget(ledger, max_cost=2.0).exceeded(usage) == "$3.000000 spent, budget $2"
    assert Budget(ledger, max_tokens=1).exceeded({}) is None


def test_pricing_and_budget_load_from_config() -> None:
    loaded = load_config({"pricing": {"local": {"input": 0.1, "output": 0.2}},
                          "orchestration": {"budget": {"max_cost": 0.5}}})  # fmt: skip
    assert loaded.pricing["local"].output == 0.2
    assert loaded.orchestration.budget is not None
    assert loaded.orchestration.budget.max_cost == 0.5
    with pytest.raises(ConfigError, match="max_tokens"):
        load_config({"orchestration": {"budget": {"max_tokens": 0}}})


async def test_result_cost_by_role_from_config_pricing() -> None:
    teacher = ScriptedChatModel(responder=teacher_responder(), model_name="local-teacher")
    data = {
        "orchestration": {"forced_mode": "paired"},
        "storage": {"backend": "memory"},
        "pricing": {"local-teacher": {"input": 1.0, "output": 2.0}},
    }
    result = await arun("What is 2+2?", config=data, agent=Student(), models={"teacher": teacher})
    # one validation: 10 input and 5 output tokens at $1 and $2 per million
    assert result.cost == {"teacher": pytest.approx(2e-5), "total": pytest.approx(2e-5)}
    assert result.budget is None


# --------------------------------------------------------------------------- budgets per lane


async def test_budget_skips_the_reward_in_auto() -> None:
    scorer = judge()
    result = await arun(
        "What is 2+2?", config=config("auto", max_tokens=STUDENT_TOKENS), agent=Student(),
        models={"judge": scorer},
    )  # fmt: skip
    assert scorer.call_count == 0
    assert result.reward is None
    assert result.status == "succeeded"
    assert result.budget is not None and result.budget["exceeded"] is True
    assert result.budget["reason"] == "50 tokens spent, budget 50"
    assert any(note.startswith("budget exceeded") for note in result.notes)


async def test_budget_within_limit_records_no_excess() -> None:
    scorer = judge()
    result = await arun(
        "What is 2+2?", config=config("auto", max_tokens=10_000), agent=Student(),
        models={"judge": scorer},
    )  # fmt: skip
    assert result.reward is not None
    assert result.budget is not None and result.budget["exceeded"] is False
    assert result.budget["tokens"] == result.budget["tokens"] > STUDENT_TOKENS


async def test_budget_skips_the_reward_in_paired() -> None:
    scorer = judge()
    result = await arun(
        "What is 2+2?", config=config("paired", max_tokens=60), agent=Student(),
        models={"teacher": ScriptedChatModel(responder=teacher_responder()), "judge": scorer},
    )  # fmt: skip
    assert scorer.call_count == 0  # 50 student + 15 teacher tokens: no judge call
    assert result.reward is None
    assert result.budget is not None and result.budget["exceeded"] is True
    assert result.budget["tokens"] == 65


async def test_budget_stops_retries_in_coach() -> None:
    student = Student()
    result = await arun(
        "What is 2+2?", config=config("coach", max_tokens=120), agent=student,
        models={"teacher": failing_teacher(), "judge": judge()},
    )  # fmt: skip
    # plan 50 + review 15 + attempt 50 + verdict 15 = 130 tokens: over, so no second attempt
    assert student.calls == ["planning", "execute"]
    assert [step.attempts for step in result.steps] == [1]
    assert result.status == "failed"
    assert result.reward is None
    assert result.budget is not None
    assert result.budget["exceeded"] is True and result.budget["tokens"] == 130


async def test_without_a_budget_coach_retries() -> None:
    student = Student()
    result = await arun(
        "What is 2+2?", config=config("coach"), agent=student,
        models={"teacher": failing_teacher(), "judge": judge()},
    )  # fmt: skip
    assert student.calls.count("execute") == 3  # max_retries 2
    assert result.budget is None


async def test_budget_starts_no_new_step_in_escalate() -> None:
    plan = [
        {"id": 1, "description": "first", "depends_on": []},
        {"id": 2, "description": "second", "depends_on": [1]},
    ]
    student = Student(plan)
    result = await arun(
        "Two steps", config=config("escalate", max_tokens=100), agent=student,
        models={"teacher": ScriptedChatModel(responder=teacher_responder()), "judge": judge()},
    )  # fmt: skip
    assert student.calls == ["planning", "execute", "synthesize"]
    assert result.status == "failed"
    assert result.reward is None
    assert result.budget is not None
    assert result.budget["skipped_steps"] == [2]
    assert result.budget["exceeded"] is True


async def test_money_budget_stops_retries() -> None:
    teacher = ScriptedChatModel(
        responder=teacher_responder(validate=lambda _: verdict(valid=False, score=0.1)),
        model_name="pricey",
    )
    data = config("paired", max_cost=0.01)
    data["orchestration"]["lanes"] = {"paired": {"max_retries": 3}}
    data["pricing"] = {"pricey": {"input": 1000.0, "output": 1000.0}}
    student = Student()
    result = await arun("What is 2+2?", config=data, agent=student, models={"teacher": teacher})
    # one verdict costs 15 tokens at $1000 per million = $0.015: no retry after it
    assert student.calls == ["execute"]
    assert result.cost["teacher"] == pytest.approx(0.015)
    assert result.budget is not None and result.budget["reason"].startswith("$0.015")
