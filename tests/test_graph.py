"""The supervised loop end to end with scripted models: lanes, retries, plans, parallel steps."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from helpers import teacher_responder, verdict
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from atlas_graph import demo
from atlas_graph.graph import NODES, create_atlas_graph
from atlas_graph.storage.review_cache import acached_review, aremember_review
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

THREE_STEPS = [
    {"id": 1, "description": "first"},
    {"id": 2, "description": "second"},
    {"id": 3, "description": "third", "depends_on": [1, 2]},
]


def scripted_teacher(**kwargs: Any) -> ScriptedChatModel:
    return ScriptedChatModel(responder=teacher_responder(**kwargs))


@pytest.mark.parametrize(
    ("lane", "expected"),
    [
        ("auto", ["triage", "probe", "execute", "finalize"]),
        ("paired", ["triage", "probe", "execute", "validate", "reward", "finalize"]),
        (
            "coach",
            ["triage", "probe", "plan", "review", "execute", "validate", "reward", "finalize"],
        ),
    ],
)  # fmt: skip
async def test_node_order_per_lane(make_run: Any, lane: str, expected: list[str]) -> None:
    run = make_run(agent=ScriptedAgent(plan=THREE_STEPS), models={"teacher": scripted_teacher()})
    state = await run("do the thing", mode=lane)
    assert run.nodes == expected
    assert state["lane"] == lane
    assert state["status"] == "succeeded"


async def test_escalate_runs_independent_steps_side_by_side_then_the_dependent(
    make_run: Any,
) -> None:
    run = make_run(agent=ScriptedAgent(plan=THREE_STEPS), models={"teacher": scripted_teacher()})
    state = await run("do the thing", mode="escalate")
    assert run.nodes == [
        "triage", "probe", "plan", "review",
        "execute", "execute", "validate", "validate", "dispatch",
        "execute", "validate", "dispatch", "synthesize", "reward", "finalize",
    ]  # fmt: skip
    assert state["plan"]["execution_mode"] == "stepwise"
    assert state["steps"]["3"]["prior_results"] == {
        "1": "result of step 1",
        "2": "result of step 2",
    }
    assert all(record["status"] == "succeeded" for record in state["steps"].values())


async def test_independent_steps_are_in_flight_together(make_run: Any) -> None:
    # A barrier of 4 only opens when all four executes are waiting at once.
    steps = [{"id": n, "description": f"part {n}"} for n in range(1, 5)]
    agent = ScriptedAgent(plan=steps, barrier=asyncio.Barrier(4), barrier_timeout=5)
    run = make_run(
        {"orchestration": {"max_parallel_steps": 4}},
        agent=agent,
        models={"teacher": scripted_teacher()},
    )
    state = await run("four parts", mode="escalate")
    assert {record["status"] for record in state["steps"].values()} == {"succeeded"}
    assert len([call for call in agent.calls if call["mode"] == "execute"]) == 4


async def test_max_parallel_steps_bounds_concurrency(make_run: Any) -> None:
    in_flight = 0
    peak = 0

    async def agent(request: Any) -> str:
        nonlocal in_flight, peak
        if request.mode == "planning":
            return json.dumps({"steps": [{"id": n, "description": f"p{n}"} for n in range(1, 6)]})
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return "done"

    run = make_run(
        {"orchestration": {"max_parallel_steps": 2}},
        agent=agent,
        models={"teacher": scripted_teacher()},
    )
    state = await run("five parts", mode="escalate")
    assert len(state["steps"]) == 5
    assert peak == 2


@pytest.mark.parametrize("max_retries", [0, 1, 3])
async def test_retries_stop_at_max_and_every_attempt_is_validated(
    make_run: Any, max_retries: int
) -> None:
    teacher = scripted_teacher(validate=lambda _: verdict(False, 0.1, "be better"))
    run = make_run(
        {"orchestration": {"max_retries": max_retries}},
        agent=ScriptedAgent(plan=[{"id": 1, "description": "only"}]),
        models={"teacher": teacher},
    )
    state = await run("hard", mode="coach")
    record = state["steps"]["1"]
    assert len(record["attempts"]) == max_retries + 1
    assert all(attempt["validation"]["valid"] is False for attempt in record["attempts"])
    assert run.nodes.count("validate") == max_retries + 1
    # the verdict's guidance starts each retry from validate itself: no guide superstep
    assert run.nodes.count("guide") == 0
    assert run.nodes.count("execute") == max_retries + 1
    assert record["status"] == "failed"
    assert record["guidance"] == ["be better"] * max_retries
    assert [a.get("guidance") for a in record["attempts"][:-1]] == ["be better"] * max_retries
    # a failed step does not crash the run: its output is the answer and it is rewarded
    assert run.nodes[-2:] == ["reward", "finalize"]
    assert state["final_answer"] == record["attempts"][-1]["output"]
    assert state["status"] == "failed"


async def test_score_below_retry_threshold_retries_even_when_valid(make_run: Any) -> None:
    scores = iter([0.5, 0.8])
    teacher = scripted_teacher(validate=lambda _: verdict(True, next(scores), "add detail"))
    agent = ScriptedAgent(outputs={1: ["thin", "thorough"]})
    run = make_run(
        {"rim": {"retry_threshold": 0.7}, "orchestration": {"max_retries": 2}},
        agent=agent,
        models={"teacher": teacher},
    )
    state = await run("explain", mode="coach")
    record = state["steps"]["1"]
    assert [a["validation"]["score"] for a in record["attempts"]] == [0.5, 0.8]
    assert record["status"] == "succeeded"
    assert state["final_answer"] == "thorough"
    second = [call for call in agent.calls if call["mode"] == "execute"][1]
    assert second["guidance"] == ["add detail"]


async def test_guidance_reaches_the_next_attempt_inside_the_tag(make_run: Any) -> None:
    seen: list[str] = []

    async def agent(request: Any) -> str:
        if request.mode == "execute":
            seen.append(request.prompt)
        return "output"

    teacher = scripted_teacher(
        validate=lambda text: verdict("<hint>" in text or "Teacher guidance" in text, 0.9, "fix it")
    )
    run = make_run(
        {"orchestration": {"rim_guidance_tag": "hint"}}, agent=agent, models={"teacher": teacher}
    )
    await run("task", mode="paired")
    assert len(seen) == 1  # paired lane: no retries by default
    run = make_run(
        {"orchestration": {"rim_guidance_tag": "hint", "lanes": {"paired": {"max_retries": 1}}}},
        agent=agent,
        models={"teacher": scripted_teacher(validate=lambda _: verdict(False, 0.0, "fix it"))},
    )
    seen.clear()
    await run("task", mode="paired", thread="t2")
    assert len(seen) == 2
    assert "<hint>\n1. fix it\n</hint>" in seen[1]


async def test_guidance_falls_back_to_rationale_when_verdict_has_none(make_run: Any) -> None:
    teacher = scripted_teacher(validate=lambda _: verdict(False, 0.2, ""))
    run = make_run(agent=ScriptedAgent(), models={"teacher": teacher})
    state = await run("task", mode="coach")
    assert state["steps"]["1"]["guidance"] == ["The previous attempt fell short: scripted"]


async def test_separate_guidance_call_when_configured(make_run: Any) -> None:
    replies = iter([verdict(False, 0.2, "verdict guidance"), verdict(True, 0.9)])

    def respond(messages: Any) -> str:
        text = str(messages[-1].content)
        if "\n\nPlan:\n" in text:
            return json.dumps({"approved": True, "concerns": []})
        if "Verdict: score" in text:
            return "a separate, sharper hint"
        return json.dumps(next(replies))

    run = make_run(
        {"teacher": {"guidance_call": True}},
        agent=ScriptedAgent(),
        models={"teacher": ScriptedChatModel(responder=respond)},
    )
    state = await run("task", mode="coach")
    assert state["steps"]["1"]["guidance"] == ["a separate, sharper hint"]
    assert state["steps"]["1"]["attempts"][0]["guidance"] == "a separate, sharper hint"
    assert run.nodes.count("guide") == 1


async def test_step_timeout_is_a_failed_attempt_with_its_reason(make_run: Any) -> None:
    agent = ScriptedAgent(latency=2.0)
    run = make_run(
        {"orchestration": {"step_timeout_seconds": 0.05}},
        agent=agent,
        models={"teacher": scripted_teacher()},
    )
    state = await run("slow", mode="paired")
    attempt = state["steps"]["1"]["attempts"][0]
    assert "timed out after 0.05s" in attempt["error"]
    assert attempt["validation"]["valid"] is False
    assert state["steps"]["1"]["status"] == "failed"
    assert state["status"] == "failed"


async def test_agent_exception_is_a_failed_attempt_then_retry_succeeds(make_run: Any) -> None:
    agent = ScriptedAgent(outputs={1: [ConnectionError("agent endpoint down"), "recovered"]})
    run = make_run(agent=agent, models={"teacher": scripted_teacher()})
    state = await run("flaky", mode="coach")
    first, second = state["steps"]["1"]["attempts"]
    assert "agent endpoint down" in first["error"]
    assert second["output"] == "recovered"
    assert state["steps"]["1"]["status"] == "succeeded"


async def test_malformed_teacher_json_is_recorded_not_raised(make_run: Any) -> None:
    teacher = ScriptedChatModel(responses=["this is not json at all", "still not json"])
    run = make_run(agent=ScriptedAgent(), models={"teacher": teacher})
    state = await run("task", mode="paired")
    step = state["steps"]["1"]
    assert step["validation"] is None  # not judged: not an invalid attempt
    assert "teacher's verdict could not be read" in step["not_judged"]
    assert step["status"] == "succeeded"
    assert teacher.call_count == 2
    assert "could not be read as TeacherVerdict" in teacher.calls[1]["messages"][-1].content


async def test_fenced_teacher_json_is_parsed(make_run: Any) -> None:
    reply = "Here you go:\n```json\n" + json.dumps(verdict(True, 0.75)) + "\n```"
    run = make_run(agent=ScriptedAgent(), models={"teacher": ScriptedChatModel(responses=[reply])})
    state = await run("task", mode="paired")
    assert state["steps"]["1"]["validation"]["score"] == 0.75


async def test_cyclic_plan_goes_back_for_review_then_collapses(make_run: Any) -> None:
    cyclic = [
        {"id": 1, "description": "a", "depends_on": [2]},
        {"id": 2, "description": "b", "depends_on": [1]},
    ]
    reviews: list[str] = []

    def review(text: str) -> dict[str, Any]:
        reviews.append(text)
        return {"approved": True, "concerns": []}

    agent = ScriptedAgent(plan=cyclic)
    run = make_run(agent=agent, models={"teacher": scripted_teacher(review=review)})
    state = await run("loop", mode="escalate")
    # the teacher saw the cycle each time, the student redrafted once, then it collapsed
    assert len(reviews) == 2
    assert all("dependency cycle" in text for text in reviews)
    assert [c["mode"] for c in agent.calls].count("planning") == 2
    assert state["plan"]["execution_mode"] == "single_shot"
    assert any("collapsed into one step" in note for note in state["plan_notes"])
    assert state["status"] == "succeeded"


async def test_unknown_dependency_is_detected(make_run: Any) -> None:
    plan = [{"id": 1, "description": "a", "depends_on": [9]}]
    run = make_run(
        {"orchestration": {"max_plan_revisions": 0}},
        agent=ScriptedAgent(plan=plan),
        models={"teacher": scripted_teacher()},
    )
    state = await run("x", mode="escalate")
    assert state["plan_draft"]["issues"] == ["step 1 depends on unknown step 9"]
    assert state["plan"]["execution_mode"] == "single_shot"


async def test_revised_plan_replaces_the_draft(make_run: Any) -> None:
    revised = {"steps": [{"id": "step_1", "description": "better one"},
                         {"id": "step_2", "description": "better two",
                          "depends_on": ["step_1"]}]}  # fmt: skip
    teacher = scripted_teacher(
        review=lambda _: {"approved": False, "concerns": ["too vague"], "revised_plan": revised}
    )
    run = make_run(agent=ScriptedAgent(plan=THREE_STEPS), models={"teacher": teacher})
    state = await run("x", mode="escalate")
    assert [s["description"] for s in state["plan"]["steps"]] == ["better one", "better two"]
    assert state["plan"]["steps"][1]["depends_on"] == [1]
    assert "teacher revised the plan" in state["plan_notes"]


async def test_rejection_without_revision_redrafts_then_runs_last_draft(make_run: Any) -> None:
    teacher = scripted_teacher(review=lambda _: {"approved": False, "concerns": ["split it"]})
    agent = ScriptedAgent(plan=THREE_STEPS)
    run = make_run(
        {"orchestration": {"max_plan_revisions": 2}}, agent=agent, models={"teacher": teacher}
    )
    state = await run("x", mode="escalate")
    planning = [call for call in agent.calls if call["mode"] == "planning"]
    assert len(planning) == 3
    assert planning[1]["guidance"] == ["split it"]  # concerns go back to the student
    assert run.nodes.count("review") == 3
    assert any("running the last draft" in note for note in state["plan_notes"])
    assert len(state["plan"]["steps"]) == 3


async def test_unparseable_plan_falls_back_to_one_step(make_run: Any) -> None:
    run = make_run(
        agent=ScriptedAgent(plan="I would rather not plan."),
        models={"teacher": scripted_teacher()},
    )
    state = await run("x", mode="escalate")
    assert state["plan"]["execution_mode"] == "single_shot"
    assert any("plan draft unusable" in note for note in state["plan_notes"])


async def test_coach_collapses_the_approved_plan(make_run: Any) -> None:
    run = make_run(agent=ScriptedAgent(plan=THREE_STEPS), models={"teacher": scripted_teacher()})
    state = await run("x", mode="coach")
    (step,) = state["plan"]["steps"]
    assert "1. first" in step["description"] and "3. third" in step["description"]


async def test_plan_review_is_reused_by_task_and_plan() -> None:
    teacher = scripted_teacher()
    builder = create_atlas_graph(
        {"storage": {"backend": "memory"}},
        agent=ScriptedAgent(plan=THREE_STEPS),
        models={"teacher": teacher},
    )
    graph = builder.compile(checkpointer=InMemorySaver(), store=InMemoryStore())
    sessions = []
    for thread in ("a", "b"):
        events: list[dict[str, Any]] = []
        async for chunk in graph.astream(
            {"task": "same", "mode": "escalate"},
            {"configurable": {"thread_id": thread}},
            stream_mode="custom",
        ):
            events.append(chunk)
        state = (await graph.aget_state({"configurable": {"thread_id": thread}})).values
        sessions.append((events, state))
    reviews = [c for c in teacher.calls if "\n\nPlan:\n" in str(c["messages"][-1].content)]
    assert len(reviews) == 1
    (_, first), (second_events, second) = sessions
    # the second session runs its own steps: every event is its own, and it paid for no review
    assert {event["session_id"] for event in second_events} == {"b"}
    [reused] = [e for e in second_events if e["atlas_event"] == "review_verdict"]
    assert reused["data"]["cached"] is True
    assert second["steps"].keys() == first["steps"].keys()
    assert second["usage"]["teacher"]["calls"] == first["usage"]["teacher"]["calls"] - 1
    await graph.ainvoke({"task": "other", "mode": "coach"}, {"configurable": {"thread_id": "c"}})
    reviews = [c for c in teacher.calls if "\n\nPlan:\n" in str(c["messages"][-1].content)]
    assert len(reviews) == 2


async def test_a_stale_review_is_not_reused() -> None:
    store = InMemoryStore()
    await aremember_review(store, "k", 1, {"approved": True, "concerns": []})
    assert await acached_review(store, "k", 1) == {"approved": True, "concerns": []}
    assert await acached_review(store, "k", 0) is None  # caching off
    assert await acached_review(None, "k", 60) is None  # no store
    await asyncio.sleep(1.1)
    assert await acached_review(store, "k", 1) is None


async def test_lane_precedence(make_run: Any) -> None:
    config = {
        "orchestration": {"forced_mode": "coach"},
        "adaptive_teaching": {"mode_override": "auto", "probe": {"fallback_mode": "escalate"}},
    }
    run = make_run(config, agent=ScriptedAgent(), models={"teacher": scripted_teacher()})
    assert (await run("x", mode="paired", thread="1"))["lane_decision"]["source"] == "run override"
    state = await run("x", thread="2")
    assert (state["lane"], state["lane_decision"]["source"]) == (
        "coach",
        "orchestration.forced_mode",
    )
    del config["orchestration"]
    run = make_run(config, agent=ScriptedAgent(), models={"teacher": scripted_teacher()})
    assert (await run("x", thread="3"))["lane"] == "auto"
    run = make_run(
        {"adaptive_teaching": {"probe": {"fallback_mode": "escalate"}}},
        agent=ScriptedAgent(),
        models={"teacher": scripted_teacher()},
    )
    state = await run("x", thread="4")
    assert (state["lane"], state["lane_decision"]["source"]) == ("escalate", "fallback")


async def test_paired_lane_with_chat_student_costs_two_llm_calls(make_run: Any) -> None:
    student = ScriptedChatModel(responses=["the answer"])
    teacher = scripted_teacher()
    run = make_run(models={"student": student, "teacher": teacher})
    state = await run("question", mode="paired")
    assert student.call_count + teacher.call_count == 2
    assert state["reward"]["score"] == 0.9
    assert state["reward"]["raw"]["source"] == "teacher_validation"
    assert state["usage"]["student"]["calls"] == 1
    assert state["usage"]["teacher"] == {
        "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "calls": 1
    }  # fmt: skip
    assert student.calls[0]["kwargs"].get("max_tokens") == 2048  # student.max_step_tokens


async def test_student_prompts_and_token_budgets_come_from_config(make_run: Any) -> None:
    student = ScriptedChatModel(
        responder=lambda m: (
            json.dumps({"steps": [{"id": 1, "description": "s"}]})
            if "Task:" in str(m[-1].content) and "Step 1" not in str(m[-1].content)
            else "out"
        )
    )
    config = {
        "agent": {"type": "python", "import_path": "json:dumps", "system_prompt": "BASE"},
        "student": {
            "prompts": {"planner": "{base_prompt} PLAN NOW", "executor": "EXEC {base_prompt}"},
            "max_plan_tokens": 111,
            "max_step_tokens": 222,
        },
    }
    run = make_run(config, agent=student, models={"teacher": scripted_teacher()})
    await run("t", mode="coach")
    systems = [str(c["messages"][0].content) for c in student.calls]
    assert systems[0] == "BASE PLAN NOW"
    assert systems[1] == "EXEC BASE"
    assert [c["kwargs"]["max_tokens"] for c in student.calls] == [111, 222]


async def test_python_validator_and_judge_supervise_without_llm(make_run: Any) -> None:
    config = {
        "teacher": {
            "validator": "atlas_graph.demo:validator",
            "plan_reviewer": "atlas_graph.demo:plan_reviewer",
        },
        "rim": {"judges": [{"identifier": "p", "kind": "python",
                            "import_path": "atlas_graph.demo:process_judge"}]},
    }  # fmt: skip
    run = make_run(config, agent=demo.student)
    state = await run("Add the latencies 1, 2 and 3 and report the total in ms.", mode="paired")
    # paired reuses the verdict as reward; here the unit is missing and no retries are allowed
    assert state["steps"]["1"]["validation"]["score"] == 0.4
    assert state["reward"]["score"] == 0.4
    state = await run("Add 2 and 3.", mode="escalate", thread="t2")
    assert state["reward"]["raw"]["source"] == "judges"
    assert state["reward"]["judges"][0]["identifier"] == "p"


async def test_llm_judges_score_concurrently_and_aggregate_by_weight(make_run: Any) -> None:
    judge = ScriptedChatModel(
        responder=lambda m: json.dumps({"score": 1.0 if "STRICT" not in str(m[0].content) else 0.4,
                                        "rationale": "ok", "uncertainty": 0.1})
    )  # fmt: skip
    config = {
        "rim": {
            "judges": [
                {"identifier": "lenient", "weight": 1.0},
                {"identifier": "strict", "weight": 3.0, "prompt": "STRICT judge"},
            ]
        }
    }
    run = make_run(
        config, agent=ScriptedAgent(), models={"teacher": scripted_teacher(), "judge": judge}
    )
    state = await run("x", mode="coach")
    assert state["reward"]["score"] == pytest.approx((1.0 * 1 + 0.4 * 3) / 4)
    assert judge.call_count == 6  # two judges, three temperatures each
    assert state["usage"]["judge"]["calls"] == 6


async def test_events_are_emitted_in_order(make_run: Any) -> None:
    run = make_run(agent=ScriptedAgent(), models={"teacher": scripted_teacher()})
    await run("x", mode="paired")
    kinds = [event["atlas_event"] for event in run.events]
    assert kinds == [
        "session_started", "triage_done", "lane_decided", "step_attempt_started",
        "step_attempt_finished", "validation_verdict", "step_finished", "reward", "final_answer",
        "session_finished",
    ]  # fmt: skip
    assert {event["session_id"] for event in run.events} == {"t1"}


async def test_emit_intermediate_steps_off_keeps_session_events_only(make_run: Any) -> None:
    run = make_run(
        {"orchestration": {"emit_intermediate_steps": False}},
        agent=ScriptedAgent(),
        models={"teacher": scripted_teacher()},
    )
    await run("x", mode="paired")
    kinds = [event["atlas_event"] for event in run.events]
    assert "step_attempt_started" not in kinds and "validation_verdict" not in kinds
    assert kinds[0] == "session_started" and kinds[-1] == "session_finished"


async def test_state_is_plain_json(make_run: Any) -> None:
    run = make_run(agent=ScriptedAgent(plan=THREE_STEPS), models={"teacher": scripted_teacher()})
    state = await run("x", mode="escalate")
    assert json.loads(json.dumps(state)) == state


async def test_missing_teacher_is_a_clear_error(make_run: Any) -> None:
    run = make_run(agent=ScriptedAgent())
    with pytest.raises(Exception, match="no teacher model"):
        await run("x", mode="paired")


def test_drawn_graph_contains_every_node() -> None:
    drawing = create_atlas_graph({}, agent=ScriptedAgent()).compile().get_graph().draw_mermaid()
    for node in NODES:
        assert f"\t{node}(" in drawing
    for edge in ("validate -.-> guide", "guide -.-> execute", "dispatch -.-> execute"):
        assert edge in drawing


async def test_context_swaps_models_for_one_run() -> None:
    from atlas_graph.services import AtlasContext

    default_teacher = scripted_teacher(validate=lambda _: verdict(True, 0.9))
    graph = create_atlas_graph(
        {}, agent=ScriptedAgent(), models={"teacher": default_teacher}
    ).compile()
    other = scripted_teacher(validate=lambda _: verdict(True, 0.65))
    state = await graph.ainvoke(
        {"task": "x", "mode": "paired"}, context=AtlasContext(models={"teacher": other})
    )
    assert state["reward"]["score"] == 0.65
    assert default_teacher.call_count == 0 and other.call_count == 1


def broken_judge(request: Any) -> float:
    raise RuntimeError("judge bug")


def half_judge(request: Any) -> dict[str, Any]:
    return {"score": 7, "rationale": "out of range is clamped"}


async def test_python_judge_errors_are_invalid_samples_not_crashes(make_run: Any) -> None:
    config = {
        "rim": {
            "judges": [
                {"identifier": "broken", "kind": "python",
                 "import_path": "test_graph:broken_judge"},
                {"identifier": "high", "kind": "python", "import_path": "test_graph:half_judge"},
            ]
        }
    }  # fmt: skip
    run = make_run(config, agent=ScriptedAgent(), models={"teacher": scripted_teacher()})
    state = await run("x", mode="coach")
    broken, high = state["reward"]["judges"]
    assert broken["score"] == 0.0
    # the reason is kept with the sample; the rationale, which reaches learning notes, says less
    assert broken["rationale"] == "no valid sample from 1 judge call(s)"
    assert broken["samples"] == []
    assert broken["invalid_samples"][0]["error"] == "judge raised RuntimeError: judge bug"
    assert high["score"] == 1.0
    assert state["reward"]["score"] == 0.5


async def test_session_routes_run_on_the_event_loop_thread(
    make_run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LangGraph runs a plain function on a conditional edge in a thread pool; the session's
    # routes are wrapped to run inline, for sync (invoke) and async callers alike
    import functools
    import threading

    from atlas_graph.routes import Routes

    threads: list[int] = []
    original = Routes.after_probe

    @functools.wraps(original)  # destinations() reads the route's return type
    def after_probe(self: Routes, state: Any) -> Any:
        threads.append(threading.get_ident())
        return original(self, state)

    monkeypatch.setattr(Routes, "after_probe", after_probe)
    run = make_run(agent=ScriptedAgent(), models={"teacher": scripted_teacher()})
    await run("task", mode="paired")
    assert threads == [threading.get_ident()]
