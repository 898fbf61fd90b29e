"""The reward system: tier-1 sampling, arbiter escalation, aggregation, step rewards, reuse."""

from __future__ import annotations

import asyncio
import json
from statistics import pstdev
from typing import Any

import pytest
from helpers import teacher_responder, verdict

from atlas_graph import JudgeReply, JudgeRequest, Principle
from atlas_graph.graph import create_atlas_graph
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

PRINCIPLES = [
    {"name": "correctness", "weight": 2, "description": "the answer is right"},
    {"name": "clarity", "weight": 1, "description": "the answer is clear"},
]


def reply(score: Any, uncertainty: Any = 0.1, **extra: Any) -> str:
    """A judge's JSON reply."""
    return json.dumps(
        {"principles": PRINCIPLES, "score": score, "rationale": f"scored {score}",
         "uncertainty": uncertainty, **extra}
    )  # fmt: skip


def teacher(**kwargs: Any) -> ScriptedChatModel:
    return ScriptedChatModel(responder=teacher_responder(**kwargs))


def judged_run(make_run: Any, judge: ScriptedChatModel, config: dict[str, Any] | None = None,
               **models: Any) -> Any:  # fmt: skip
    return make_run(
        config or {}, agent=ScriptedAgent(),
        models={"teacher": teacher(), "judge": judge, **models},
    )  # fmt: skip


async def test_disagreeing_samples_escalate_and_take_the_arbiter_score(make_run: Any) -> None:
    judge = ScriptedChatModel(responses=[reply(0.9), reply(0.5), reply(0.7)])
    arbiter = ScriptedChatModel(
        responses=[json.dumps({"score": 0.55, "rationale": "the middle reading holds"})],
        model_name="big-arbiter",
    )
    run = judged_run(make_run, judge, arbiter=arbiter)
    state = await run("task", mode="coach")

    assert run.nodes[-3:] == ["reward", "arbiter", "finalize"]
    assert sorted(call["kwargs"]["temperature"] for call in judge.calls) == [0.2, 0.5, 0.8]
    (entry,) = state["reward"]["judges"]
    assert entry["identifier"] == "process"  # the built-in judge when none is configured
    assert pstdev([0.9, 0.5, 0.7]) == pytest.approx(0.163, abs=1e-3)
    assert entry["escalated"] is True
    assert "score stdev 0.163 > variance_threshold 0.15" in entry["escalation_reason"]
    assert entry["score"] == 0.55 and state["reward"]["score"] == 0.55
    assert entry["tier1_score"] == pytest.approx(0.7)
    assert entry["rationale"] == "the middle reading holds"
    assert sorted(s["score"] for s in entry["samples"]) == [0.5, 0.7, 0.9]
    assert state["reward"]["raw"]["pending_arbiter"] == []
    assert state["status"] == "failed"  # 0.55 < success_threshold 0.7

    # the arbiter saw the task, the answer and every tier-1 sample
    seen = str(arbiter.calls[0]["messages"][-1].content)
    assert "Task:\ntask" in seen and "Final answer:\nresult of step 1" in seen
    assert "- step 1 (task): succeeded, 1 attempt(s)" in seen
    assert all(f"score {s:.2f}" in seen for s in (0.9, 0.5, 0.7))
    assert "correctness (0.67)" in seen

    audit = state["reward_audit"]
    assert [a["stage"] for a in audit] == ["tier1"] * 3 + ["arbiter"]
    assert audit[-1]["model"] == "big-arbiter" and audit[-1]["score"] == 0.55
    assert sorted(a["temperature"] for a in audit[:3]) == [0.2, 0.5, 0.8]
    for item in audit:
        assert {"stage", "judge", "model", "temperature", "score", "uncertainty",
                "rationale"} <= set(item)  # fmt: skip
    assert state["usage"]["judge"]["calls"] == 3 and state["usage"]["arbiter"]["calls"] == 1

    kinds = [event["atlas_event"] for event in run.events]
    assert kinds.index("reward_tier1") < kinds.index("arbiter_escalation") < kinds.index("reward")
    escalation = next(e for e in run.events if e["atlas_event"] == "arbiter_escalation")
    assert escalation["actor"] == "arbiter" and escalation["data"]["score"] == 0.55
    tier1 = next(e for e in run.events if e["atlas_event"] == "reward_tier1")
    assert tier1["actor"] == "judge" and tier1["data"]["escalate"] is True


async def test_agreeing_sure_samples_do_not_escalate(make_run: Any) -> None:
    judge = ScriptedChatModel(responses=[reply(0.8), reply(0.85), reply(0.9)])
    arbiter = ScriptedChatModel(responses=[])
    run = judged_run(make_run, judge, arbiter=arbiter)
    state = await run("task", mode="coach")

    assert "arbiter" not in run.nodes
    assert arbiter.call_count == 0
    (entry,) = state["reward"]["judges"]
    assert entry["escalated"] is False and entry["escalation_reason"] is None
    assert entry["score"] == pytest.approx(0.85)  # the mean of the samples
    assert entry["principles"] == [
        {"name": "correctness", "weight": 0.6667, "description": "the answer is right"},
        {"name": "clarity", "weight": 0.3333, "description": "the answer is clear"},
    ]
    assert state["status"] == "succeeded"
    assert "arbiter_escalation" not in [event["atlas_event"] for event in run.events]
    stats = state["reward_stats"]
    assert stats["score"] == pytest.approx(0.85)
    assert stats["score_mean"] == pytest.approx(0.85)
    assert stats["score_stddev"] == pytest.approx(pstdev([0.8, 0.85, 0.9]))
    assert stats["sample_count"] == 3
    assert stats["uncertainty_mean"] == pytest.approx(0.1)
    assert stats["uncertainty_stddev"] == pytest.approx(0.0)
    assert stats["best_uncertainty"] == pytest.approx(0.1)


async def test_one_unsure_sample_escalates_even_when_scores_agree(make_run: Any) -> None:
    judge = ScriptedChatModel(responses=[reply(0.8), reply(0.8, uncertainty=0.45), reply(0.8)])
    arbiter = ScriptedChatModel(responses=[json.dumps({"score": 0.9, "rationale": "sure"})])
    state = await judged_run(make_run, judge, arbiter=arbiter)("task", mode="coach")
    (entry,) = state["reward"]["judges"]
    assert entry["escalation_reason"] == "sample uncertainty 0.45 > uncertainty_threshold 0.3"
    assert entry["score"] == 0.9


async def test_thresholds_come_from_config(make_run: Any) -> None:
    judge = ScriptedChatModel(responses=[reply(0.9), reply(0.5), reply(0.7)])
    config = {"rim": {"variance_threshold": 0.2}}
    run = judged_run(make_run, judge, config, arbiter=ScriptedChatModel(responses=[]))
    state = await run("task", mode="coach")
    assert "arbiter" not in run.nodes
    assert state["reward"]["score"] == pytest.approx(0.7)


async def test_an_unreadable_arbiter_reply_keeps_the_tier1_mean(make_run: Any) -> None:
    judge = ScriptedChatModel(responses=[reply(0.9), reply(0.5), reply(0.7)])
    arbiter = ScriptedChatModel(responses=["I cannot decide.", "Still undecided."])
    state = await judged_run(make_run, judge, arbiter=arbiter)("task", mode="coach")
    assert arbiter.call_count == 2  # the reply, and one re-ask with the parse error
    (entry,) = state["reward"]["judges"]
    assert entry["escalated"] is True
    assert entry["score"] == pytest.approx(0.7)
    assert entry["rationale"].startswith("unreadable arbiter reply")
    last = state["reward_audit"][-1]
    assert (last["stage"], last["valid"], last["score"]) == ("arbiter", False, None)


async def test_without_a_large_model_the_judge_model_arbitrates(make_run: Any) -> None:
    judge = ScriptedChatModel(
        responses=[reply(0.9), reply(0.5), reply(0.7), json.dumps({"score": 0.6})]
    )
    state = await judged_run(make_run, judge)("task", mode="coach")
    assert judge.call_count == 4
    assert judge.calls[3]["tools"] == ["ArbiterReply"]
    assert state["reward"]["score"] == 0.6


async def test_malformed_and_out_of_range_replies(make_run: Any) -> None:
    judge = ScriptedChatModel(
        responses=[
            "I think it is fine.",  # no JSON at all
            reply(1.7, uncertainty=-0.2, principles=["exactness"]),  # clamped to 1 and 0
            json.dumps({"score": "high", "rationale": "?", "uncertainty": 0.1}),
            "Still no JSON.",  # the re-ask of each unreadable sample, answered no better
            "Still no JSON.",
        ]
    )
    run = judged_run(make_run, judge, arbiter=ScriptedChatModel(responses=[]))
    state = await run("task", mode="coach")
    (entry,) = state["reward"]["judges"]
    assert [s["score"] for s in entry["samples"]] == [1.0]
    assert entry["samples"][0]["uncertainty"] == 0.0
    assert entry["samples"][0]["principles"] == [
        {"name": "exactness", "weight": 1.0, "description": ""}
    ]
    assert len(entry["invalid_samples"]) == 2
    assert entry["score"] == 1.0 and entry["escalated"] is False
    audit = state["reward_audit"]
    invalid = [item for item in audit if not item["valid"]]
    assert len(invalid) == 2
    assert all(item["score"] is None and "unreadable judge reply" in item["error"]
               for item in invalid)  # fmt: skip
    assert state["reward_stats"]["sample_count"] == 1


async def test_no_valid_sample_scores_zero_with_full_uncertainty(make_run: Any) -> None:
    judge = ScriptedChatModel(responses=["nope"], repeat_last=True)
    run = judged_run(make_run, judge, arbiter=ScriptedChatModel(responses=[]))
    state = await run("task", mode="coach")
    (entry,) = state["reward"]["judges"]
    assert (entry["score"], entry["uncertainty"]) == (0.0, 1.0)
    assert entry["rationale"].startswith("no valid sample from 3 judge call(s)")
    assert entry["escalated"] is False and "arbiter" not in run.nodes
    assert state["reward"]["score"] == 0.0
    assert state["reward_stats"]["sample_count"] == 0


def scored(score: float) -> str:
    return f"test_reward:judge_{str(score).replace('.', '_')}"


def judge_0_9(request: Any) -> float:
    return 0.9


def judge_0_3(request: Any) -> dict[str, Any]:
    return {"score": 0.3, "rationale": "weak", "principles": [{"name": "rule", "weight": 1}]}


def unsure_rule(request: Any) -> dict[str, Any]:
    return {"score": 0.8, "uncertainty": 0.9}


def typed_rule(request: JudgeRequest) -> JudgeReply:
    return JudgeReply(score=0.6, rationale=f"lane {request.lane}", uncertainty=0.2,
                      principles=[Principle(name="rule")])  # fmt: skip


@pytest.mark.parametrize(
    ("aggregation", "key", "expected"),
    [
        ("weighted_mean", "aggregation", (0.9 * 3 + 0.3 * 1) / 4),
        ("minimum", "aggregation", 0.3),
        ("minimum", "aggregation_strategy", 0.3),  # Atlas's spelling
    ],
)
async def test_weighted_mean_and_minimum(
    make_run: Any, aggregation: str, key: str, expected: float
) -> None:
    config = {
        "rim": {
            key: aggregation,
            "judges": [
                {"identifier": "high", "kind": "python", "import_path": scored(0.9), "weight": 3},
                {"identifier": "low", "kind": "python", "import_path": scored(0.3), "weight": 1},
            ],
        }
    }
    run = make_run(config, agent=ScriptedAgent(), models={"teacher": teacher()})
    state = await run("task", mode="coach")
    assert state["reward"]["score"] == pytest.approx(expected)
    assert state["reward"]["raw"]["aggregation"] == aggregation


async def test_python_judge_scores_once_and_deterministically(make_run: Any) -> None:
    config = {"rim": {"judges": [{"identifier": "rule", "kind": "python",
                                  "import_path": scored(0.3)}]}}  # fmt: skip
    run = make_run(config, agent=ScriptedAgent(), models={"teacher": teacher()})
    state = await run("task", mode="coach")
    (entry,) = state["reward"]["judges"]
    assert len(entry["samples"]) == 1
    assert entry["samples"][0] == {
        "score": 0.3, "rationale": "weak", "temperature": None, "uncertainty": 0.0,
        "principles": [{"name": "rule", "weight": 1.0, "description": ""}],
    }  # fmt: skip
    (audit,) = state["reward_audit"]
    assert audit["model"] == f"python:{scored(0.3)}"


async def test_a_python_judge_is_final_even_when_unsure(make_run: Any) -> None:
    config = {"rim": {"judges": [{"identifier": "rule", "kind": "python",
                                  "import_path": "test_reward:unsure_rule"}]}}  # fmt: skip
    run = make_run(config, agent=ScriptedAgent(), models={"teacher": teacher()})
    state = await run("task", mode="coach")
    assert "arbiter" not in run.nodes
    assert state["reward"]["judges"][0]["escalated"] is False
    assert state["reward"]["score"] == 0.8


async def test_a_python_judge_may_answer_with_the_judge_reply_model(make_run: Any) -> None:
    config = {"rim": {"judges": [{"identifier": "rule", "kind": "python",
                                  "import_path": "test_reward:typed_rule"}]}}  # fmt: skip
    run = make_run(config, agent=ScriptedAgent(), models={"teacher": teacher()})
    state = await run("task", mode="coach")
    (entry,) = state["reward"]["judges"]
    assert entry["samples"][0] == {
        "score": 0.6, "rationale": "lane coach", "temperature": None, "uncertainty": 0.2,
        "principles": [{"name": "rule", "weight": 1.0, "description": ""}],
    }  # fmt: skip


async def test_audit_keeps_prompts_and_replies_only_when_configured(make_run: Any) -> None:
    for keep in (False, True):
        judge = ScriptedChatModel(responses=[reply(0.8)], repeat_last=True)
        run = judged_run(make_run, judge, {"rim": {"audit_prompts": keep}})
        state = await run("the task text", mode="coach")
        for item in state["reward_audit"]:
            assert ("prompt" in item) is keep and ("reply" in item) is keep
            if keep:
                assert "the task text" in item["prompt"]
                assert json.loads(item["reply"])["score"] == 0.8


async def test_paired_session_costs_two_calls_with_reuse_and_five_without(
    make_run: Any,
) -> None:
    for reuse, expected_judge_calls in ((True, 0), (False, 3)):
        student = ScriptedChatModel(responses=["the answer"])
        validator = teacher()
        judge = ScriptedChatModel(responses=[reply(0.8)], repeat_last=True)
        run = make_run(
            {"rim": {"reuse_validation_as_reward": reuse}},
            models={"student": student, "teacher": validator, "judge": judge},
        )
        state = await run("question", mode="paired")
        calls = student.call_count + validator.call_count + judge.call_count
        assert calls == 2 + expected_judge_calls
        assert judge.call_count == expected_judge_calls
        source = "teacher_validation" if reuse else "judges"
        assert state["reward"]["raw"]["source"] == source
        assert state["reward"]["score"] == pytest.approx(0.9 if reuse else 0.8)


async def test_certification_runs_reuse_the_verdict() -> None:
    from langgraph.runtime import Runtime

    from atlas_graph.config import load_config
    from atlas_graph.nodes.reward import make_reward_node
    from atlas_graph.services import AtlasContext, Services

    judge = ScriptedChatModel(responses=[reply(0.8)], repeat_last=True)
    node = make_reward_node(Services(load_config({}), models={"judge": judge}))
    state: Any = {
        "task": "t", "lane": "coach", "final_answer": "a", "session_id": "s",
        "plan": {"steps": [{"id": 1, "description": "t"}], "execution_mode": "single_shot"},
        "steps": {"1": {"status": "succeeded", "validation": verdict(True, 0.75)}},
    }  # fmt: skip
    runtime = Runtime(context=AtlasContext())
    certified = await node({**state, "adaptive_summary": {"certification_run": True}}, runtime)
    assert certified["reward"]["score"] == 0.75
    assert certified["reward"]["rationale"].endswith("(certification run)")
    assert judge.call_count == 0
    judged = await node(state, runtime)
    assert judged["reward"]["raw"]["source"] == "judges" and judge.call_count == 3


async def test_step_rewards_are_the_teacher_verdicts(make_run: Any) -> None:
    steps = [{"id": 1, "description": "a"}, {"id": 2, "description": "b", "depends_on": [1]}]
    scores = iter([0.95, 0.75])
    validator = teacher(validate=lambda _: verdict(True, next(scores)))
    judge = ScriptedChatModel(responses=[reply(0.8)], repeat_last=True)
    run = make_run(agent=ScriptedAgent(plan=steps),
                   models={"teacher": validator, "judge": judge})  # fmt: skip
    state = await run("task", mode="escalate")
    rewards = {key: record["reward"] for key, record in state["steps"].items()}
    assert rewards["1"]["score"] == 0.95 and rewards["2"]["score"] == 0.75
    assert rewards["1"]["raw"]["source"] == "teacher_validation"
    assert state["reward"]["score"] == pytest.approx(0.8)  # session judges
    assert judge.call_count == 3


@pytest.mark.parametrize("scope", ["step", "both"])
async def test_step_judges_score_each_step(make_run: Any, scope: str) -> None:
    steps = [{"id": 1, "description": "alpha"}, {"id": 2, "description": "beta"}]
    judge = ScriptedChatModel(
        responder=lambda m: reply(0.6 if "Step: alpha" in str(m[-1].content) else 0.8)
    )
    run = make_run(
        {"rim": {"scope": scope}},
        agent=ScriptedAgent(plan=steps),
        models={"teacher": teacher(), "judge": judge},
    )
    state = await run("task", mode="escalate")
    assert state["steps"]["1"]["reward"]["score"] == pytest.approx(0.6)
    assert state["steps"]["2"]["reward"]["score"] == pytest.approx(0.8)
    assert state["steps"]["1"]["reward"]["raw"]["source"] == "step_judges"
    subjects = {item["subject"] for item in state["reward_audit"]}
    if scope == "step":
        assert judge.call_count == 6
        assert subjects == {"1", "2"}
        assert state["reward"]["score"] == pytest.approx(0.7)  # mean of the step rewards
    else:
        assert judge.call_count == 9
        assert subjects == {"1", "2", "session"}
        assert state["reward"]["raw"]["source"] == "judges"


async def test_step_judges_escalate_per_step(make_run: Any) -> None:
    steps = [{"id": 1, "description": "alpha"}, {"id": 2, "description": "beta"}]
    alpha = iter([0.9, 0.5, 0.7])
    judge = ScriptedChatModel(
        responder=lambda m: reply(next(alpha) if "Step: alpha" in str(m[-1].content) else 0.8)
    )
    arbiter = ScriptedChatModel(responses=[json.dumps({"score": 0.4, "rationale": "weak"})])
    run = make_run(
        {"rim": {"scope": "step"}},
        agent=ScriptedAgent(plan=steps),
        models={"teacher": teacher(), "judge": judge, "arbiter": arbiter},
    )
    state = await run("task", mode="escalate")
    assert run.nodes[-3:] == ["reward", "arbiter", "finalize"]
    assert "Step: alpha" in str(arbiter.calls[0]["messages"][-1].content)
    first, second = state["steps"]["1"]["reward"], state["steps"]["2"]["reward"]
    assert first["score"] == 0.4 and first["judges"][0]["escalated"] is True
    assert second["score"] == pytest.approx(0.8) and second["judges"][0]["escalated"] is False
    assert state["reward"]["score"] == pytest.approx((0.4 + 0.8) / 2)
    escalation = next(e for e in run.events if e["atlas_event"] == "arbiter_escalation")
    assert escalation["step_id"] == 1


async def test_single_unvalidated_step_carries_the_session_reward(make_run: Any) -> None:
    judge = ScriptedChatModel(responses=[reply(0.8)], repeat_last=True)
    run = make_run(
        {"rim": {"reward_auto_lane": True}},
        agent=ScriptedAgent(),
        models={"teacher": teacher(), "judge": judge},
    )
    state = await run("task", mode="auto")
    step_reward = state["steps"]["1"]["reward"]
    assert step_reward["score"] == pytest.approx(0.8)
    assert step_reward["raw"]["source"] == "session"


async def test_judge_calls_run_concurrently_within_the_worker_bound(make_run: Any) -> None:
    in_flight = 0
    peak = 0

    async def respond(messages: Any) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return reply(0.8)

    for workers, expected in ((2, 2), (6, 6)):
        peak = 0
        judge = ScriptedChatModel(responder=respond)
        config = {"rim": {"parallel_workers": workers,
                          "active_judges": {"process": True, "helpfulness": True}}}  # fmt: skip
        state = await judged_run(make_run, judge, config)("task", mode="coach")
        assert judge.call_count == 6
        assert peak == expected
        assert [e["identifier"] for e in state["reward"]["judges"]] == ["process", "helpfulness"]


async def test_seed_layout_with_judge_llm_and_arbiter_model(
    make_run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # judges[].llm and rim.arbiter load; run-time models replace the clients per role
    config = {
        "rim": {
            "judges": [{"identifier": "helpfulness", "kind": "helpfulness",
                        "principles": ["User impact"]}],
            "arbiter": {"provider": "openai", "model": "gpt-4o"},
        }
    }  # fmt: skip
    judge = ScriptedChatModel(responses=[reply(0.9), reply(0.5), reply(0.7)])
    arbiter = ScriptedChatModel(responses=[json.dumps({"score": 0.65})])
    state = await judged_run(make_run, judge, config, arbiter=arbiter)("task", mode="coach")
    system = str(judge.calls[0]["messages"][0].content)
    assert "helpfulness judge" in system and "- User impact" in system
    assert state["reward"]["score"] == 0.65


def test_arbiter_edge_is_drawn() -> None:
    drawing = create_atlas_graph({}, agent=ScriptedAgent()).compile().get_graph().draw_mermaid()
    assert "\tarbiter(arbiter)" in drawing
    assert "reward -.-> arbiter;" in drawing
    assert "reward -.-> finalize;" in drawing
    assert "arbiter --> finalize;" in drawing


async def test_a_session_stopped_in_the_arbiter_resumes_without_resampling(
    make_run: Any,
) -> None:
    judge = ScriptedChatModel(responses=[reply(0.9), reply(0.5), reply(0.7)])
    arbiter = ScriptedChatModel(
        responses=[RuntimeError("arbiter down"), json.dumps({"score": 0.5, "rationale": "ok"})]
    )
    run = judged_run(make_run, judge, arbiter=arbiter)
    with pytest.raises(RuntimeError, match="arbiter down"):
        await run("task", mode="coach")
    config: Any = {"configurable": {"thread_id": "t1"}}
    stopped = await run.graph.aget_state(config)
    assert stopped.next == ("arbiter",)
    assert stopped.values["reward"]["raw"]["pending_arbiter"] == [
        {"subject": "session", "judge": "process"}
    ]
    state = await run.graph.ainvoke(None, config)
    assert judge.call_count == 3  # tier 1 is not repeated
    arbiter.assert_complete()  # an extra call would have stopped the run, as the first did
    assert state["reward"]["score"] == 0.5 and state["status"] == "failed"
    assert [item["stage"] for item in state["reward_audit"]] == ["tier1"] * 3 + ["arbiter"]
