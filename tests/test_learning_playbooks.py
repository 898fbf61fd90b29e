"""Learning playbooks over scripted sessions: the life of an entry, and every config key."""

from __future__ import annotations

import json
import statistics
from typing import Any

from helpers import teacher_responder, verdict
from langchain_core.messages import BaseMessage
from langgraph.store.memory import InMemoryStore

from atlas_graph.config import load_config
from atlas_graph.learning import gates, pamphlet, registry, rubric
from atlas_graph.learning.playbook import EntryDraft
from atlas_graph.storage.review_cache import review_cache_key
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

KEY = "billing-refunds"
HELPFUL = {
    "audience": "student", "cue": {"type": "keyword", "pattern": "refund"},
    "action": {"imperative": "Call the ledger lookup before answering a refund",
               "runtime_handle": "ledger_lookup"},
    "expected_effect": "answers quote the ledger balance",
    "scope": {"category": "differentiation", "constraints": ["refund requests"]},
}  # fmt: skip
UNHELPFUL = {
    "audience": "student", "cue": {"type": "regex", "pattern": r"invoice\s+\d+"},
    "action": {"imperative": "Append a courtesy note to every invoice answer",
               "runtime_handle": "courtesy_note"},
    "expected_effect": "customers feel heard",
}  # fmt: skip
INCIDENT = {
    "audience": "teacher", "cue": {"type": "keyword", "pattern": "refund"},
    "action": {"imperative": "Check INC-4521 for Acme Corp before approving"},
    "expected_effect": "the incident is not repeated",
}  # fmt: skip


def follow_playbook(request: Any) -> str:
    """A student that uses a runtime handle only when its prompt's playbook names it."""
    prompt = request.system_prompt
    used = ["ledger_lookup"] if "`ledger_lookup`" in prompt else []
    if "`courtesy_note`" in prompt and "invoice" in request.task:
        used.append("courtesy_note")
    return f"answer for {request.task}" + "".join(f" [{handle}]" for handle in used)


def grade(text: str) -> dict[str, Any]:
    """Following the ledger entry pays; the courtesy note costs a little."""
    output = text.split("Student output:", 1)[-1]
    score = 0.5 + 0.4 * ("ledger_lookup" in output) - 0.15 * ("courtesy_note" in output)
    return verdict(score=round(score, 2))


class Learner:
    """The learning model: proposes the entries of a script, one list per session."""

    def __init__(self, script: list[list[dict[str, Any]]]) -> None:
        self.script = script
        self.model = ScriptedChatModel(responder=self.respond)

    def respond(self, messages: list[BaseMessage]) -> str:
        index = self.model.call_count - 1
        entries = self.script[index] if index < len(self.script) else []
        return json.dumps({"entries": entries, "student_learning": f"note {index}",
                           "teacher_learning": "teacher note"})  # fmt: skip


PRUNING = {"min_sessions": 6, "min_cue_hit_rate": 0.2, "min_reward_delta": 0.02,
           "min_transfer_sessions": 10}  # fmt: skip


def actions(changes: list[dict[str, Any]], entry_id: str) -> list[str]:
    return [c["action"] for c in changes if c["entry_id"] == entry_id]


async def test_twenty_sessions_show_the_whole_life_of_an_entry(make_run: Any) -> None:
    store = InMemoryStore()
    learner = Learner([[HELPFUL, INCIDENT], [UNHELPFUL], [HELPFUL]])
    teacher = ScriptedChatModel(responder=teacher_responder(validate=grade))
    run = make_run(
        {"learning": {"pruning_config": PRUNING, "usage_tracking": {"capture_examples": True,
                                                                    "max_examples_per_entry": 2}}},
        agent=ScriptedAgent(outputs=follow_playbook), store=store,
        models={"teacher": teacher, "learning": learner.model},
    )  # fmt: skip
    states = []
    for n in range(1, 21):
        kind = "order" if n % 2 else "invoice"
        task = f"Refund request for {kind} {n}"
        states.append(
            await run(task, mode="paired", thread=f"s{n}", metadata={"learning_key": KEY})
        )

    entries = {e["action"]["runtime_handle"] or "incident": e
               for e in await registry.aload_entries(store, KEY)}  # fmt: skip
    helpful, unhelpful, incident = (entries[k] for k in ("ledger_lookup", "courtesy_note",
                                                         "incident"))  # fmt: skip
    changes = await registry.aload_history(store, KEY)

    # synthesized → gated → on trial → accepted once a session applied it and scored well
    life = actions(changes, helpful["id"])
    assert life[:3] == ["synthesized", "gated", "provisional"]
    assert life[3:6] == ["cue_hit", "adopted", "accepted"]
    assert helpful["status"] == "accepted" and helpful["version"] == 2
    accepted = next(c for c in changes if c["entry_id"] == helpful["id"] and
                    c["action"] == "accepted")  # fmt: skip
    assert accepted["session_id"] == "s2" and accepted["reason"].startswith("applied in a session")
    # the incident-specific proposal never got in, and says why
    assert incident["status"] == "rejected" and actions(changes, incident["id"]) == [
        "synthesized", "rejected"]  # fmt: skip
    assert "INC-4521" in incident["reason"] and "Acme" in incident["reason"]
    # the same proposal again changes nothing
    assert actions(changes, helpful["id"]).count("synthesized") == 1

    # cue hits and adoption, every session after it was written; examples capped
    stats = helpful["stats"]
    assert stats["sessions"] == 19 and stats["cue_hits"] == 19 and stats["adoptions"] == 19
    assert stats["transfer_sessions"] == 19  # every later task is another task
    assert [e["session_id"] for e in helpful["examples"]] == ["s19", "s20"]
    # the pamphlet reached the prompts, and the session recorded its digest
    applied = states[1]["applied_student_learning"]
    assert applied["entry_count"] == 1 and applied["entry_ids"] == [helpful["id"]]
    assert states[0].get("applied_student_learning") is None
    assert states[-1]["learning_key"] == KEY

    # reward rises: the first session (no playbook) against the last ten
    sessions = await registry.aload_sessions(store, KEY)
    assert len(sessions) == 20
    rewards = [s["reward"] for s in sessions]
    assert rewards[0] == 0.5 and statistics.fmean(rewards[-10:]) >= 0.89

    # the courtesy note cost reward where it was applied: pruned as harmful, stats kept
    assert unhelpful["status"] == "pruned"
    assert unhelpful["reason"].startswith("harmful: reward delta -")
    assert actions(changes, unhelpful["id"])[-1] == "pruned"
    assert unhelpful["stats"]["sessions"] == PRUNING["min_sessions"]
    pruned_in = next(c["session_id"] for c in changes if c["action"] == "pruned")
    after = int(pruned_in.removeprefix("s"))
    assert all("courtesy_note" not in s["final_answer"] for s in states[after:])
    assert any(u["action"] == "pruned" for u in states[after - 1]["learning_updates"])


# --------------------------------------------------------------------------- gates and rubric


def draft(**changes: Any) -> EntryDraft:
    return EntryDraft.model_validate({**HELPFUL, **changes})


def test_gates_follow_the_schema_and_gate_settings() -> None:
    config = load_config({"learning": {
        "schema": {"allowed_runtime_handles": ["search_docs"], "runtime_handle_prefixes": ["mcp."],
                   "cue_types": ["regex"], "allow_missing_tool_mapping": False},
        "gates": {"max_text_length": 60, "banned_incident_tokens": ["ledger"]},
    }}).learning  # fmt: skip
    failures = gates.gate(draft(), config)["failures"]
    assert "cue type 'keyword' is not in learning.schema.cue_types" in failures
    assert "runtime handle 'ledger_lookup' is not allowed by learning.schema" in failures
    assert any(f.startswith("too specific: ledger") for f in failures)
    assert any("over max_text_length 60" in f for f in failures)
    docs = {"cue": {"type": "regex", "pattern": "docs?"}, "expected_effect": "fewer guesses"}
    mcp = draft(action={"imperative": "Search the docs first", "runtime_handle": "mcp.search"},
                **docs)  # fmt: skip
    assert gates.gate(mcp, config)["passed"]
    bare = draft(action={"imperative": "Search the docs first"}, **docs)
    assert gates.gate(bare, config)["failures"] == ["the action names no runtime handle or tool"]
    relaxed = load_config(
        {
            "learning": {
                "gates": {
                    "enforce_actionability": False,
                    "enforce_cue": False,
                    "enforce_generality": False,
                }
            }
        }
    )
    assert gates.gate(draft(action={"imperative": "maybe"}, cue={"type": "regex", "pattern": ".*"}),
                      relaxed.learning)["checked"] == ["length"]  # fmt: skip


def test_cues_must_compile_and_not_fire_on_everything() -> None:
    config = load_config({}).learning
    assert gates.cue_failures(draft(cue={"type": "regex", "pattern": "("}), config)[0].startswith(
        "the cue regex does not compile"
    )
    assert gates.cue_failures(draft(cue={"type": "regex", "pattern": "x*"}), config) == [
        "the cue regex matches every text"
    ]
    assert gates.cue_failures(draft(cue={"type": "predicate", "pattern": "nowhere:fn"}), config)
    assert not gates.cue_failures(
        draft(cue={"type": "predicate", "pattern": "test_learning_playbooks:mentions_refund"}),
        config)  # fmt: skip


def mentions_refund(context: dict[str, Any]) -> bool:
    return "refund" in context["task"].lower()


def test_proper_nouns_and_overflow_margin() -> None:
    entry = draft(expected_effect="Kubernetes pods restart cleanly after Nginx reloads")
    strict = load_config({}).learning
    assert gates.generality_failures(entry, strict) == ["too specific: Kubernetes, Nginx"]
    allowed = load_config({"learning": {"gates": {"allowed_proper_nouns": ["kubernetes"]}}})
    assert gates.generality_failures(entry, allowed.learning) == ["too specific: Nginx"]
    margin = load_config({"learning": {"gates": {"generality_overflow_margin": 2}}})
    assert gates.generality_failures(entry, margin.learning) == []


def test_atlas_length_overflow_margin_lets_an_entry_run_over_max_text_length() -> None:
    entry = draft(expected_effect="x" * 300)
    size = len(gates.entry_text(entry))
    limit = size - 10

    def failures(margin: int) -> list[str]:
        settings = {"max_text_length": limit, "allow_length_overflow_margin": margin}
        return gates.length_failures(entry, load_config({"learning": {"gates": settings}}).learning)

    assert failures(10) == []  # ten characters over, inside Atlas's margin
    assert failures(9) == [f"{size} characters, over max_text_length {limit}"]
    assert load_config({}).learning.gates.allow_length_overflow_margin == 20  # Atlas's default


def test_rubric_weights_change_the_total() -> None:
    bare = draft(action={"imperative": "Read the ledger before answering"})
    default = rubric.score(bare, load_config({}).learning)
    only_action = rubric.score(
        bare,
        load_config(
            {
                "learning": {
                    "rubric_weights": {
                        "actionability": 1,
                        "generality": 0,
                        "hookability": 0,
                        "concision": 0,
                    }
                }
            }
        ).learning,
    )
    assert default["actionability"] == 0.7 and only_action["total"] == 0.7
    assert default["total"] != only_action["total"]


# --------------------------------------------------------------------------- switches


def one_run(
    make_run: Any,
    learning: dict[str, Any],
    script: list[list[dict[str, Any]]],
    store: InMemoryStore,
    agent: Any = None,
) -> tuple[Any, Learner, ScriptedChatModel]:
    learner = Learner(script)
    teacher = ScriptedChatModel(responder=teacher_responder(validate=grade))
    run = make_run({"learning": learning}, agent=agent or ScriptedAgent(outputs=follow_playbook),
                   models={"teacher": teacher, "learning": learner.model}, store=store)  # fmt: skip
    return run, learner, teacher


async def test_without_provisional_acceptance_entries_are_accepted_at_once(make_run: Any) -> None:
    store = InMemoryStore()
    run, _, _ = one_run(make_run, {"provisional_acceptance": False,
                                   "schema": {"default_scope_category": "reinforcement"}},
                        [[{**HELPFUL, "scope": {}}]], store)  # fmt: skip
    state = await run("Refund request 1", mode="paired", metadata={"learning_key": KEY})
    [entry] = await registry.aload_entries(store, KEY)
    assert entry["status"] == "accepted" and entry["scope"]["category"] == "reinforcement"
    assert [u["action"] for u in state["learning_updates"]] == ["synthesized", "gated", "accepted"]


async def test_frozen_hidden_and_untracked_playbooks(make_run: Any) -> None:
    store = InMemoryStore()
    writer, _, _ = one_run(make_run, {"provisional_acceptance": False}, [[HELPFUL]], store)
    await writer("Refund request 1", mode="paired", thread="a", metadata={"learning_key": KEY})

    frozen, learner, _ = one_run(make_run, {"update_enabled": False}, [[UNHELPFUL]], store)
    state = await frozen("Refund request 2", mode="paired", thread="b",
                         metadata={"learning_key": KEY})  # fmt: skip
    assert learner.model.call_count == 0 and state["learning_updates"] == []
    assert "[ledger_lookup]" in state["final_answer"]  # the frozen pamphlet still applies
    [entry] = await registry.aload_entries(store, KEY)
    assert entry["stats"]["adoptions"] == 1  # and its use is still counted

    hidden, _, _ = one_run(make_run, {"apply_to_prompts": False}, [], store)
    state = await hidden("Refund request 3", mode="paired", thread="c",
                         metadata={"learning_key": KEY})  # fmt: skip
    assert state.get("applied_student_learning") is None
    assert "[ledger_lookup]" not in state["final_answer"]

    untracked, _, _ = one_run(make_run, {"usage_tracking": {"enabled": False},
                                         "session_note_enabled": False}, [], store)  # fmt: skip
    state = await untracked("Refund request 4", mode="paired", thread="d",
                            metadata={"learning_key": KEY})  # fmt: skip
    [entry] = await registry.aload_entries(store, KEY)
    assert entry["stats"]["sessions"] == 2 and state.get("student_learning") is None


async def test_synthesizer_prompt_and_history_limit(make_run: Any) -> None:
    store = InMemoryStore()
    run, learner, _ = one_run(make_run, {"prompts": {"synthesizer": "HOUSE RULES"},
                                         "history_limit": 2}, [], store)  # fmt: skip
    for n in range(4):
        await run(f"Refund request {n}", mode="paired", thread=f"h{n}",
                  metadata={"learning_key": KEY})  # fmt: skip
    messages = learner.model.calls[-1]["messages"]
    assert str(messages[0].content).startswith("HOUSE RULES")
    assert "(oldest first): [0.5, 0.5]" in str(messages[-1].content)


async def test_the_teacher_pamphlet_reaches_the_teacher_and_the_review_cache(
    make_run: Any,
) -> None:
    store = InMemoryStore()
    teacher_entry = {**HELPFUL, "audience": "teacher",
                     "action": {"imperative": "Reject answers that skip the ledger"}}  # fmt: skip
    run, _, teacher = one_run(make_run, {"provisional_acceptance": False}, [[teacher_entry]],
                              store)  # fmt: skip
    await run("Refund request 1", mode="paired", thread="a", metadata={"learning_key": KEY})
    state = await run("Refund request 2", mode="paired", thread="b",
                      metadata={"learning_key": KEY})  # fmt: skip
    system = str(teacher.calls[-1]["messages"][0].content)
    assert pamphlet.HEADER in system and "Reject answers that skip the ledger" in system
    assert state["applied_teacher_learning"]["entry_count"] == 1
    base = {"task": "x", "lane": "coach", "plan_draft": None, "plan_drafts": 1}
    changed = {**base, "applied_teacher_learning": {"digest": "abc"}}
    assert review_cache_key(base) != review_cache_key(changed)  # type: ignore[arg-type]


async def test_learning_key_follows_agent_tenant_tags_and_task_prefix() -> None:
    config = load_config({})
    state: dict[str, Any] = {"task": "Refund request for order 7", "session_metadata": {},
                             "dossier": {"tags": ["billing"]}}  # fmt: skip
    key = registry.learning_key(config, state)  # type: ignore[arg-type]
    assert key.startswith("lk-") and key == registry.learning_key(config, dict(state))  # type: ignore[arg-type]
    tenant = {**state, "session_metadata": {"tenant_id": "acme"}}
    tags = {**state, "dossier": {"tags": ["sales"]}}
    assert (
        len(
            {
                key,
                registry.learning_key(config, tenant),  # type: ignore[arg-type]
                registry.learning_key(config, tags),
            }
        )
        == 3
    )  # type: ignore[arg-type]
    pinned = {**state, "session_metadata": {"learning_key": "mine"}}
    assert registry.learning_key(config, pinned) == "mine"  # type: ignore[arg-type]


# --------------------------------------------------------------------------- inspect and export


async def test_python_api_and_command_line_show_report_and_reset(
    make_run: Any, tmp_path: Any, capsys: Any
) -> None:
    from atlas_graph.cli.main import main
    from atlas_graph.config import StorageConfig
    from atlas_graph.learning.api import (
        LearningPlotError,
        alearning_report,
        alearning_reset,
        alearning_show,
        plot_learning_curve,
    )
    from atlas_graph.storage.persistence import aopen_persistence

    path = tmp_path / "atlas.sqlite"
    config_file = tmp_path / "atlas.yaml"
    config_file.write_text(f"storage:\n  path: {path}\n")
    async with aopen_persistence(StorageConfig(path=str(path))) as opened:
        run, _, _ = one_run(make_run, {"provisional_acceptance": False}, [[HELPFUL]],
                            opened.store)  # fmt: skip
        for n in range(3):
            await run(f"Refund request {n}", mode="paired", thread=f"r{n}",
                      metadata={"learning_key": KEY})  # fmt: skip
        [shown] = await alearning_show(store=opened.store)
        assert shown["learning_key"] == KEY
        assert shown["entries"][0]["usage"]["adoption_rate"] == 1.0
        [report] = await alearning_report(store=opened.store, learning_key=KEY)
        assert [s["reward"] for s in report["sessions"]] == [0.5, 0.9, 0.9]
        assert report["entries"][0]["reward_delta"] == 0.4
        try:
            assert plot_learning_curve([report], tmp_path / "curve.png").stat().st_size > 0
        except LearningPlotError as error:
            assert "pip install 'atlas-graph[plot]'" in str(error)

    assert main(["learning", "show", "-c", str(config_file)]) == 0
    out = capsys.readouterr().out
    assert f"learning key {KEY}: 1 entries" in out and "accepted" in out
    assert main(["learning", "report", "-c", str(config_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["sessions"][2]["reward"] == 0.9
    assert main(["learning", "reset", "-c", str(config_file)]) == 2  # no --yes, no terminal
    assert main(["learning", "reset", "-c", str(config_file), "--learning-key", KEY,
                 "--yes"]) == 0  # fmt: skip
    assert f"{KEY}: " in capsys.readouterr().out
    assert await alearning_reset(config_file, learning_key=KEY) == {KEY: 0}
    assert await alearning_show(config_file) == []


async def test_export_carries_the_learning_key_and_applied_digests(make_run: Any) -> None:
    from atlas_graph.export import aiter_session_traces

    store = InMemoryStore()
    run, _, _ = one_run(make_run, {"provisional_acceptance": False}, [[HELPFUL]], store)
    for n in range(2):
        await run(f"Refund request {n}", mode="paired", thread=f"x{n}",
                  metadata={"learning_key": KEY})  # fmt: skip
    found = aiter_session_traces(store, statuses=["succeeded", "failed"])
    traces = {t["session_id"]: t async for t in found}
    first, second = traces["x0"], traces["x1"]
    assert first["learning_key"] == second["learning_key"] == KEY
    assert first["session_metadata"]["applied_student_learning"] is None
    applied = second["session_metadata"]["applied_student_learning"]
    assert set(applied) == {"digest", "char_count", "entry_count"} and applied["entry_count"] == 1
    assert second["session_metadata"]["applied_teacher_learning"] is None
