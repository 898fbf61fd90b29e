"""Learning switches and notes, reward drift, and the prompt rewrite into personas."""

from __future__ import annotations

from typing import Any

from helpers import teacher_responder, verdict
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from atlas_graph.config import load_config
from atlas_graph.graph import create_atlas_graph
from atlas_graph.nodes.personas import rewrite_key
from atlas_graph.result import Result
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

NOTES = {"entries": [], "student_learning": "S note", "teacher_learning": "T note"}


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


# --------------------------------------------------------------------------- learning notes


async def test_without_a_learning_model_the_learn_node_stays_out(make_run: Any) -> None:
    store = InMemoryStore()
    teacher = Teacher()
    teacher.session(verdict(valid=False, score=0.3, guidance="do better"), verdict(score=0.9))
    run = make_run(agent=ScriptedAgent(), models={"teacher": teacher.model}, store=store)
    state = await run("x", mode="coach")
    assert "learn" not in run.nodes
    assert state.get("learning_updates") is None and state.get("student_learning") is None
    kept = {tuple(item.namespace) for item in store.search(("atlas",))}
    assert kept <= {("atlas", "sessions"), ("atlas", "plan_reviews")}  # no playbook, no history


async def test_learning_notes_come_from_the_learning_model(make_run: Any) -> None:
    notes = ScriptedChatModel(responses=[NOTES])
    run = make_run(
        agent=ScriptedAgent(), models={"teacher": Teacher().model, "learning": notes},
        store=InMemoryStore(),
    )  # fmt: skip
    state = await run("x", mode="paired")
    assert (state["student_learning"], state["teacher_learning"]) == ("S note", "T note")
    assert "Reward: 0.9\nRationale: teacher validation" in str(
        notes.calls[0]["messages"][-1].content
    )
    assert state["usage"]["learning"]["calls"] == 1
    result = Result.from_state(state)
    assert result.student_learning == "S note" and result.learning_key == state["learning_key"]


async def test_a_failed_synthesizer_leaves_template_notes(make_run: Any) -> None:
    notes = ScriptedChatModel(responses=[RuntimeError("learning model down")])
    teacher = Teacher()
    teacher.session(verdict(valid=False, score=0.3, guidance="add totals"), verdict(score=0.8))
    run = make_run(
        agent=ScriptedAgent(), models={"teacher": teacher.model, "learning": notes},
        store=InMemoryStore(),
    )  # fmt: skip
    state = await run("x", mode="coach")
    assert state["student_learning"].startswith("Reward 0.80: teacher validation reused")
    assert "Guidance that was needed: add totals" in state["student_learning"]
    assert any(
        note.startswith("playbook not updated: RuntimeError") for note in state["plan_notes"]
    )


async def test_learning_without_a_store_says_what_was_skipped(make_run: Any) -> None:
    run = make_run(
        agent=ScriptedAgent(),
        models={"teacher": Teacher().model, "learning": ScriptedChatModel(responses=[NOTES])},
    )
    state = await run("x", mode="paired")
    assert "learn" in run.nodes
    assert any(
        note.startswith("learning skipped: the graph was compiled without a store")
        for note in state["plan_notes"]
    )


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


def test_cached_plan_reviews_are_keyed_by_the_teacher_persona() -> None:
    from atlas_graph.storage.review_cache import review_cache_key

    state: dict[str, Any] = {"task": "x", "lane": "coach", "plan_draft": None, "plan_drafts": 1}
    with_memory = {**state, "persona_context": {"memories": {"teacher": ["be strict"]}}}
    assert review_cache_key(state) != review_cache_key(with_memory)  # type: ignore[arg-type]
    assert review_cache_key(with_memory) == review_cache_key(dict(with_memory))  # type: ignore[arg-type]
