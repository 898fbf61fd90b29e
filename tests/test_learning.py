"""Persona memory over a scripted sequence of sessions, learning notes, drift and prompt rewrite."""

from __future__ import annotations

import asyncio
from typing import Any

from helpers import teacher_responder, verdict
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from atlas_graph.config import load_config
from atlas_graph.graph import create_atlas_graph
from atlas_graph.nodes.learn import memory_namespace, update_memories, uses_namespace
from atlas_graph.nodes.personas import rewrite_key
from atlas_graph.prompts import MEMORY_HEADER
from atlas_graph.result import Result
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

LEARNING = {"learning": {"enabled": True}}


class RecordingAgent:
    """A scripted agent that keeps the system prompt of every request."""

    def __init__(self) -> None:
        self.inner = ScriptedAgent()
        self.requests: list[Any] = []

    async def ainvoke(self, request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return await self.inner.ainvoke(request)

    def prompts(self, mode: str) -> list[str]:
        return [r.system_prompt for r in self.requests if r.mode == mode]


class Teacher:
    """Validation verdicts from a per-session script: attempt 1 may fail with guidance."""

    def __init__(self) -> None:
        self.first: dict[str, Any] = verdict(score=0.9)
        self.retry: dict[str, Any] = verdict(score=0.9)
        self.attempts = 0
        self.model = ScriptedChatModel(responder=teacher_responder(validate=self._validate))

    def session(self, first: dict[str, Any], retry: dict[str, Any] | None = None) -> None:
        self.first, self.retry, self.attempts = first, retry or first, 0

    def _validate(self, _text: str) -> dict[str, Any]:
        self.attempts += 1
        return self.first if self.attempts == 1 else self.retry

    def system_prompts(self) -> list[str]:
        return [str(call["messages"][0].content) for call in self.model.calls]


def memories(store: InMemoryStore, fp: str) -> dict[str, dict[str, Any]]:
    return {item.value["text"]: item.value for item in store.search(memory_namespace(fp))}


async def test_memory_is_created_promoted_injected_and_retired(make_run: Any) -> None:
    store = InMemoryStore()
    agent, teacher = RecordingAgent(), Teacher()
    run = make_run(LEARNING, agent=agent, models={"teacher": teacher.model}, store=store)
    lesson = "Cite the runbook section you used."

    # 1: the first attempt fails; its guidance becomes a student candidate
    teacher.session(verdict(valid=False, score=0.3, guidance=lesson), verdict(score=0.9))
    first = await run("x", mode="coach", thread="s1")
    fp = first["fingerprint"]
    assert first["steps"]["1"]["guidance"] == [lesson]
    assert [(u["action"], u["persona"], u["text"]) for u in first["persona_updates"]] == [
        ("created", "student", lesson)
    ]
    assert memories(store, fp)[lesson]["status"] == "candidate"
    update_events = [e for e in run.events if e["atlas_event"] == "memory_update"]
    assert update_events[-1]["data"]["counts"] == {"created": 1}

    # 2: the candidate is on trial in the prompt; the session scores at the baseline: promoted
    teacher.session(verdict(score=0.9))
    second = await run("x", mode="coach", thread="s2")
    executor_prompt = agent.prompts("execute")[-1]
    assert MEMORY_HEADER in executor_prompt and f"- {lesson}" in executor_prompt
    assert MEMORY_HEADER in agent.prompts("planning")[-1]
    assert {"persona": "student", "memory_id": memories(store, fp)[lesson]["id"],
            "status": "candidate"} in second["personas_used"]  # fmt: skip
    assert [(u["action"], u["status"]) for u in second["persona_updates"]] == [
        ("promoted", "active")
    ]
    assert memories(store, fp)[lesson]["status"] == "active"

    # 3: active memory is injected; this session scores far below the baseline: retired
    teacher.session(verdict(valid=True, score=0.65))
    third = await run("x", mode="coach", thread="s3")
    assert f"- {lesson}" in agent.prompts("execute")[-1]
    assert any(u["action"] == "retired" and u["text"] == lesson for u in third["persona_updates"])
    assert memories(store, fp)[lesson]["status"] == "retired"

    # 4: retired memories are no longer injected
    teacher.session(verdict(score=0.9))
    await run("x", mode="coach", thread="s4")
    assert MEMORY_HEADER not in agent.prompts("execute")[-1]


async def test_teacher_memory_reaches_the_teacher_prompt(make_run: Any) -> None:
    store = InMemoryStore()
    teacher = Teacher()
    sessions_scores = {"s1": 0.2, "s2": 0.9}  # every sample of a session agrees
    judge_scores = iter(score for score in sessions_scores.values() for _ in range(3))
    judge = ScriptedChatModel(
        responder=lambda _m: {
            "score": next(judge_scores),
            "rationale": "missed the refund",
            "uncertainty": 0.1,
        }
    )
    run = make_run(
        LEARNING, agent=ScriptedAgent(), models={"teacher": teacher.model, "judge": judge},
        store=store,
    )  # fmt: skip
    first = await run("x", mode="coach", thread="s1")
    [update] = first["persona_updates"]
    assert update["persona"] == "teacher"
    assert "missed the refund" in update["text"]
    assert MEMORY_HEADER not in teacher.system_prompts()[-1]
    await run("x", mode="coach", thread="s2")
    prompts = teacher.system_prompts()
    review_prompt, validation_prompt = prompts[-2], prompts[-1]
    for prompt in (review_prompt, validation_prompt):
        assert MEMORY_HEADER in prompt and "missed the refund" in prompt


async def test_memory_off_leaves_prompts_and_store_alone(make_run: Any) -> None:
    store = InMemoryStore()
    teacher = Teacher()
    teacher.session(verdict(valid=False, score=0.3, guidance="do better"), verdict(score=0.9))
    run = make_run(agent=ScriptedAgent(), models={"teacher": teacher.model}, store=store)
    state = await run("x", mode="coach")
    assert "learn" not in run.nodes
    assert state.get("persona_updates") is None
    kept = {tuple(item.namespace) for item in store.search(("atlas",))}
    assert kept <= {("atlas", "sessions"), ("atlas", "plan_reviews")}  # no memory, no history


def test_duplicates_are_compacted_and_caps_hold() -> None:
    config = load_config({"learning": {"enabled": True, "max_candidates_per_persona": 2}})
    changed, updates = update_memories(
        [], used_ids=[], session_id="a", score=0.5, base=0.7, config=config,
        candidates=[("student", "Check units!", "r"), ("student", "check  UNITS", "r")],
    )  # fmt: skip
    assert [u["action"] for u in updates] == ["created", "compacted"]
    [memory] = changed
    assert memory["seen"] == 2
    changed, updates = update_memories(
        changed, used_ids=[], session_id="b", score=0.5, base=0.7, config=config,
        candidates=[("student", "Second lesson", "r"), ("student", "Third lesson", "r")],
    )  # fmt: skip
    statuses = {m["text"]: m["status"] for m in changed}
    assert list(statuses.values()).count("candidate") == 2
    assert statuses["Check units!"] == "retired"
    assert updates[-1]["reason"].startswith("over max_candidates_per_persona")


def test_active_cap_keeps_the_best_scoring_memories() -> None:
    config = load_config({"learning": {"enabled": True, "max_active_per_persona": 1}})
    existing = [
        {"id": name, "persona": "student", "text": name, "status": "candidate", "seen": 1,
         "uses": [], "created_at": f"2026-01-0{n}"}
        for n, name in enumerate(["a", "b"], 1)
    ]  # fmt: skip
    existing[1]["uses"] = [{"session_id": "old", "score": 1.0}]
    changed, _ = update_memories(
        existing, used_ids=["a", "b"], candidates=[], session_id="s", score=0.8, base=0.7,
        config=config,
    )  # fmt: skip
    assert {m["id"]: m["status"] for m in changed} == {"a": "retired", "b": "active"}


# --------------------------------------------------------------------------- learning notes


async def test_learning_notes_come_from_the_reward_rationale(make_run: Any) -> None:
    teacher = Teacher()
    teacher.session(verdict(valid=False, score=0.3, guidance="add totals"), verdict(score=0.8))
    run = make_run(LEARNING, agent=ScriptedAgent(), models={"teacher": teacher.model})
    state = await run("x", mode="coach")
    assert state["student_learning"].startswith("Reward 0.80: teacher validation reused")
    assert "Guidance that was needed: add totals" in state["student_learning"]
    assert state["teacher_learning"].startswith("Validated 1 step(s), mean verdict score 0.80")


async def test_learning_notes_use_the_learning_model_when_set(make_run: Any) -> None:
    notes = ScriptedChatModel(
        responses=[{"student_learning": "S note", "teacher_learning": "T note"}]
    )
    run = make_run(
        LEARNING, agent=ScriptedAgent(), models={"teacher": Teacher().model, "learning": notes}
    )
    state = await run("x", mode="paired")
    assert (state["student_learning"], state["teacher_learning"]) == ("S note", "T note")
    assert "Reward: 0.9\nRationale: teacher validation" in str(
        notes.calls[0]["messages"][-1].content
    )
    assert state["usage"]["learning"]["calls"] == 1


# --------------------------------------------------------------------------- drift

DRIFT = {"runtime_safety": {"drift": {"enabled": True, "window": 4, "z_threshold": 2.0,
                                      "min_baseline": 3}}}  # fmt: skip


async def test_a_reward_far_below_the_baseline_is_flagged_for_review(make_run: Any) -> None:
    teacher = Teacher()
    run = make_run(DRIFT, agent=ScriptedAgent(), models={"teacher": teacher.model},
                   store=InMemoryStore())  # fmt: skip
    for n, score in enumerate([0.9, 0.85, 0.95]):
        teacher.session(verdict(score=score))
        state = await run("x", mode="paired", thread=f"ok{n}")
        assert state.get("review_status") is None
    teacher.session(verdict(score=0.88))  # within the spread: fine
    assert (await run("x", mode="paired", thread="close")).get("review_status") is None
    teacher.session(verdict(score=0.4))
    flagged = await run("x", mode="paired", thread="drop")
    assert flagged["review_status"] == "pending"
    assert "reward drift: score 0.40" in flagged["review_notes"]
    drift = flagged["adaptive_summary"]["drift"]
    assert drift["z_score"] <= -2.0
    assert drift["window"] == 4
    # the public Result shows the flag too
    result = Result.from_state(flagged)
    assert (result.review_status, result.review_notes) == ("pending", flagged["review_notes"])
    assert result.adaptive_summary["drift"] == drift
    assert result.fingerprint == flagged["fingerprint"]


async def test_result_carries_learning_notes_and_persona_records(make_run: Any) -> None:
    store = InMemoryStore()
    teacher = Teacher()
    run = make_run(LEARNING, agent=ScriptedAgent(), models={"teacher": teacher.model}, store=store)
    teacher.session(verdict(valid=False, score=0.2, guidance="Name the owner."), verdict())
    state = await run("x", mode="coach", thread="a")
    result = Result.from_state(state)

    assert result.student_learning and result.student_learning == state["student_learning"]
    assert result.teacher_learning == state["teacher_learning"]
    assert [u["text"] for u in result.persona_updates] == ["Name the owner."]
    assert {u["persona"] for u in result.personas_used} == {"planner", "executor", "teacher"}


async def test_drift_waits_for_min_baseline(make_run: Any) -> None:
    teacher = Teacher()
    run = make_run(DRIFT, agent=ScriptedAgent(), models={"teacher": teacher.model},
                   store=InMemoryStore())  # fmt: skip
    teacher.session(verdict(score=0.9))
    await run("x", mode="paired", thread="a")
    teacher.session(verdict(score=0.1))
    assert (await run("x", mode="paired", thread="b")).get("review_status") is None


# --------------------------------------------------------------------------- prompt rewrite

AGENT = {"type": "python", "import_path": "test_learning:echo", "name": "billing",
         "system_prompt": "You are a billing assistant. Never promise refunds."}  # fmt: skip
REWRITE = {"prompt_rewrite": {"llm": {"model": "rewriter"}, "temperature": 0.3}}
PERSONAS = {"planner": "PLANNER PERSONA", "executor": "EXECUTOR PERSONA",
            "teacher": "TEACHER PERSONA"}  # fmt: skip


def echo(request: Any) -> str:
    return "ok"


async def invoke(graph: Any, payload: dict[str, Any], thread: str) -> dict[str, Any]:
    config = {"configurable": {"thread_id": thread}}
    await graph.ainvoke(payload, config)
    return (await graph.aget_state(config)).values


def rewrite_graph(store: InMemoryStore, rewriter: ScriptedChatModel, agent: Any, teacher: Any):
    builder = create_atlas_graph(
        {"storage": {"backend": "memory"}, "agent": AGENT, **REWRITE},
        agent=agent, models={"teacher": teacher, "prompt_rewrite": rewriter},
    )  # fmt: skip
    return builder.compile(checkpointer=InMemorySaver(), store=store)


async def test_prompt_rewrite_runs_once_and_is_reused_across_runs_and_graphs() -> None:
    store = InMemoryStore()
    rewriter = ScriptedChatModel(responses=[PERSONAS])
    agent, teacher = RecordingAgent(), Teacher()
    graph = rewrite_graph(store, rewriter, agent, teacher.model)
    first = await invoke(graph, {"task": "x", "mode": "coach"}, "a")
    assert rewriter.call_count == 1
    assert "Never promise refunds" in str(rewriter.calls[0]["messages"][-1].content)
    assert {u["persona"]: u["source"] for u in first["personas_used"]} == {
        "planner": "rewrite", "executor": "rewrite", "teacher": "rewrite"
    }  # fmt: skip
    assert "PLANNER PERSONA" in agent.prompts("planning")[-1]
    assert "EXECUTOR PERSONA" in agent.prompts("execute")[-1]
    assert "billing assistant" not in agent.prompts("execute")[-1]
    assert all("TEACHER PERSONA" in prompt for prompt in teacher.system_prompts())
    assert first["usage"]["prompt_rewrite"]["calls"] == 1

    # a second run, and a second graph sharing the store (another process), reuse the cache
    await invoke(graph, {"task": "y", "mode": "paired"}, "b")
    other = rewrite_graph(store, rewriter, RecordingAgent(), Teacher().model)
    third = await invoke(other, {"task": "z", "mode": "paired"}, "c")
    assert rewriter.call_count == 1
    assert {u["source"] for u in third["personas_used"]} == {"cache"}


async def test_without_the_block_templates_wrap_the_system_prompt() -> None:
    agent = RecordingAgent()
    builder = create_atlas_graph(
        {"storage": {"backend": "memory"}, "agent": AGENT}, agent=agent,
        models={"teacher": Teacher().model},
    )  # fmt: skip
    graph = builder.compile(checkpointer=InMemorySaver(), store=InMemoryStore())
    state = await invoke(graph, {"task": "x", "mode": "paired"}, "a")
    assert {u["source"] for u in state["personas_used"]} == {"template"}
    prompt = agent.prompts("execute")[-1]
    assert prompt.startswith("You are a billing assistant. Never promise refunds.")
    assert "You are the student." in prompt


async def test_a_failed_rewrite_falls_back_to_templates() -> None:
    rewriter = ScriptedChatModel(responses=[RuntimeError("rewrite model down")])
    agent = RecordingAgent()
    graph = rewrite_graph(InMemoryStore(), rewriter, agent, Teacher().model)
    state = await invoke(graph, {"task": "x", "mode": "paired"}, "a")
    assert {u["source"] for u in state["personas_used"]} == {"template"}
    assert any("prompt rewrite failed" in note for note in state["plan_notes"])
    assert "billing assistant" in agent.prompts("execute")[-1]


def test_rewrite_cache_key_follows_prompt_and_settings() -> None:
    settings = load_config({"agent": AGENT, **REWRITE}).prompt_rewrite
    assert settings is not None
    key = rewrite_key("prompt", settings)
    assert key == rewrite_key("prompt", settings)
    assert key != rewrite_key("other prompt", settings)
    warmer = settings.model_copy(update={"temperature": 0.9})
    assert key != rewrite_key("prompt", warmer)
    other_model = settings.model_copy(
        update={"llm": settings.llm.model_copy(update={"model": "b"})}
    )
    assert key != rewrite_key("prompt", other_model)
    headers = settings.llm.model_copy(update={"additional_headers": {"Authorization": "secret"}})
    assert key == rewrite_key("prompt", settings.model_copy(update={"llm": headers}))


async def test_memories_reach_a_chat_model_students_messages(make_run: Any) -> None:
    store = InMemoryStore()
    teacher = Teacher()
    student = ScriptedChatModel(responses=["draft answer"], repeat_last=True)
    run = make_run(LEARNING, models={"teacher": teacher.model, "student": student}, store=store)
    teacher.session(verdict(valid=False, score=0.2, guidance="Quote the error code."),
                    verdict(score=0.9))  # fmt: skip
    await run("x", mode="coach", thread="a")
    teacher.session(verdict(score=0.9))
    await run("x", mode="coach", thread="b")
    system = str(student.calls[-1]["messages"][0].content)
    assert f"{MEMORY_HEADER}\n- Quote the error code." in system


def test_cached_plan_reviews_are_keyed_by_the_teacher_persona() -> None:
    from atlas_graph.storage.review_cache import review_cache_key

    state: dict[str, Any] = {"task": "x", "lane": "coach", "plan_draft": None, "plan_drafts": 1}
    with_memory = {**state, "persona_context": {"memories": {"teacher": ["be strict"]}}}
    assert review_cache_key(state) != review_cache_key(with_memory)  # type: ignore[arg-type]
    assert review_cache_key(with_memory) == review_cache_key(dict(with_memory))  # type: ignore[arg-type]


async def test_update_and_injection_switches(make_run: Any) -> None:
    store = InMemoryStore()
    agent, teacher = RecordingAgent(), Teacher()
    fail_then_pass = (verdict(valid=False, score=0.3, guidance="Name the owner."), verdict())
    writer = make_run(LEARNING, agent=agent, models={"teacher": teacher.model}, store=store)
    teacher.session(*fail_then_pass)
    fp = (await writer("x", mode="coach", thread="a"))["fingerprint"]
    assert memories(store, fp)["Name the owner."]["status"] == "candidate"

    frozen = make_run(
        {"learning": {"enabled": True, "update_enabled": False}},
        agent=agent, models={"teacher": teacher.model}, store=store,
    )  # fmt: skip
    teacher.session(*fail_then_pass)
    state = await frozen("x", mode="coach", thread="b")
    assert "- Name the owner." in agent.prompts("execute")[-1]  # used, but never changed
    assert state.get("persona_updates") is None
    assert store.search(uses_namespace(fp)) == []

    hidden = make_run(
        {"learning": {"enabled": True, "apply_to_prompts": False}},
        agent=agent, models={"teacher": teacher.model}, store=store,
    )  # fmt: skip
    teacher.session(verdict())
    state = await hidden("x", mode="coach", thread="c")
    assert MEMORY_HEADER not in agent.prompts("execute")[-1]
    assert not any("memory_id" in used for used in state["personas_used"])


async def test_concurrent_sessions_each_record_their_use(make_run: Any) -> None:
    store = InMemoryStore()
    teacher = Teacher()
    config = {"learning": {"enabled": True, "min_sessions": 5}}
    run = make_run(config, agent=ScriptedAgent(), models={"teacher": teacher.model}, store=store)
    teacher.session(verdict(valid=False, score=0.3, guidance="Log the request id."), verdict())
    fp = (await run("x", mode="coach", thread="seed"))["fingerprint"]
    teacher.session(verdict())
    await asyncio.gather(*(run("x", mode="paired", thread=f"c{n}") for n in range(4)))
    uses = store.search(uses_namespace(fp))
    assert sorted(use.value["session_id"] for use in uses) == ["c0", "c1", "c2", "c3"]
    assert memories(store, fp)["Log the request id."]["status"] == "candidate"


async def test_only_the_newest_uses_are_kept() -> None:
    from atlas_graph.nodes import learn as learning

    store = InMemoryStore()
    config = load_config({"learning": {"enabled": True, "min_sessions": 100}})
    changed, _ = update_memories(
        [], used_ids=[], candidates=[("student", "lesson", "r")], session_id="s0", score=0.9,
        base=0.7, config=config,
    )  # fmt: skip
    await learning.save_memories(store, "fp", changed, session_id="s0", score=0.9, used_ids=[])
    for n in range(1, 25):
        loaded = await learning.load_memories(store, "fp")
        changed, _ = update_memories(
            loaded, used_ids=[loaded[0]["id"]], candidates=[], session_id=f"s{n}", score=0.9,
            base=0.7, config=config,
        )  # fmt: skip
        await learning.save_memories(
            store, "fp", changed, session_id=f"s{n}", score=0.9, used_ids=[loaded[0]["id"]]
        )
    [memory] = await learning.load_memories(store, "fp")
    assert [use["session_id"] for use in memory["uses"]] == [f"s{n}" for n in range(5, 25)]
    assert "uses" not in store.search(memory_namespace("fp"))[0].value


async def test_learning_without_a_store_says_what_was_skipped(make_run: Any) -> None:
    teacher = Teacher()
    run = make_run(LEARNING, agent=ScriptedAgent(), models={"teacher": teacher.model})
    teacher.session(verdict(valid=False, score=0.2, guidance="Name the owner."), verdict())
    state = await run("x", mode="coach")

    assert "learn" in run.nodes
    assert any(
        note.startswith("learning skipped: the graph was compiled without a store")
        for note in state["plan_notes"]
    )
    assert state["student_learning"]  # the session's own notes need no store


seen_by_atlas_agent: list[dict[str, Any]] = []


def atlas_style_agent(prompt: str, metadata: dict[str, Any]) -> str:
    """An agent with the Atlas ``(prompt, metadata)`` signature."""
    seen_by_atlas_agent.append(metadata)
    return "done"


async def test_memories_reach_an_atlas_signature_agent(make_run: Any) -> None:
    seen_by_atlas_agent.clear()
    store = InMemoryStore()
    teacher = Teacher()
    agent = {"type": "python", "import_path": "test_learning", "attribute": "atlas_style_agent",
             "system_prompt": "You close tickets."}  # fmt: skip
    run = make_run({**LEARNING, "agent": agent}, models={"teacher": teacher.model}, store=store)
    teacher.session(verdict(valid=False, score=0.2, guidance="Quote the ticket id."), verdict())
    await run("x", mode="paired", thread="a")
    teacher.session(verdict())
    await run("x", mode="paired", thread="b")

    system = seen_by_atlas_agent[-1]["system_prompt"]
    assert "You close tickets." in system
    assert f"{MEMORY_HEADER}\n- Quote the ticket id." in system
