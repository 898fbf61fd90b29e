"""Triage, fingerprints and lane routing: each rule in order, thresholds, fail-open probing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import teacher_responder, verdict
from langgraph.store.memory import InMemoryStore

from atlas_graph.config import ConfigError, load_config
from atlas_graph.nodes.fingerprint import fingerprint
from atlas_graph.nodes.triage import build_dossier, normalize_severity
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

CERTIFY = {"adaptive_teaching": {"certify_first_run": True}}


def teacher(score: float = 0.9) -> ScriptedChatModel:
    return ScriptedChatModel(responder=teacher_responder(validate=lambda _: verdict(score=score)))


def probe_model(confidence: float, mode: str = "paired", evidence: Any = None) -> ScriptedChatModel:
    reply = {"mode": mode, "confidence": confidence, "evidence": evidence or ["seen before"]}
    return ScriptedChatModel(responses=[reply], repeat_last=True)


def lane_events(run: Any) -> list[dict[str, Any]]:
    return [event["data"] for event in run.events if event["atlas_event"] == "lane_decided"]


# --------------------------------------------------------------------------- triage


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("low", "low"), ("Moderate", "moderate"), ("HIGH", "high"), ("critical", "critical"),
        ("sev0", "critical"), ("SEV-1", "high"), ("sev2", "moderate"), ("sev3", "low"),
        ("p0", "critical"), ("P1", "high"), ("p2", "moderate"), ("p3", "low"),
        ("minor", "low"), ("major", "high"), ("medium", "moderate"),
    ],
)  # fmt: skip
def test_severity_names_and_aliases_map_to_four_levels(given: str, expected: str) -> None:
    assert normalize_severity(given) == expected


def test_unknown_severity_is_an_error_listing_the_levels() -> None:
    with pytest.raises(ValueError, match=r"unknown severity 'urgent'.*low, moderate, high"):
        normalize_severity("urgent")


async def test_default_dossier_reads_task_and_metadata() -> None:
    metadata = {
        "risks": ["flaky tests", {"description": "prod db", "severity": "sev1"}],
        "signals": {"files": 3}, "tags": ["repo:x", "team:a"], "persona_hints": "careful",
        "fingerprint": "fp-custom",
    }  # fmt: skip
    dossier = await build_dossier("Fix the bug\nmore text", metadata, ["team:a", "env:dev"], None)
    assert dossier["summary"] == "Fix the bug"
    assert dossier["risks"] == [
        {"description": "flaky tests", "severity": "moderate"},
        {"description": "prod db", "severity": "high"},
    ]
    assert dossier["max_severity"] == "high"
    assert dossier["signals"] == {"files": 3}
    assert dossier["tags"] == ["team:a", "env:dev", "repo:x"]
    assert dossier["persona_hints"] == ["careful"]
    assert dossier["fingerprint_hint"] == "fp-custom"
    assert dossier["builder"] == "default"


@pytest.mark.parametrize(
    ("builder", "task", "metadata", "tag", "severity"),
    [
        ("code_dossier", "Write the auth migration", {}, "domain:code", "high"),
        ("support_dossier", "Customer asks for a refund", {"customer_tier": "gold"},
         "tier:gold", "high"),
        ("sre_dossier", "Investigate checkout latency", {"severity": "sev0", "service": "pay"},
         "service:pay", "critical"),
    ],
)  # fmt: skip
async def test_starter_builders_load_by_path_and_extend_the_dossier(
    builder: str, task: str, metadata: dict[str, Any], tag: str, severity: str
) -> None:
    dossier = await build_dossier(task, metadata, ["team:a"], f"atlas_graph.nodes.triage:{builder}")
    assert dossier["builder"] == f"atlas_graph.nodes.triage:{builder}"
    assert "team:a" in dossier["tags"] and tag in dossier["tags"]
    assert dossier["max_severity"] == severity
    assert "builder_error" not in dossier


def broken_builder(task: str, metadata: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("triage service down")


async def test_failing_adapter_falls_back_to_default_and_says_why(make_run: Any) -> None:
    run = make_run(
        {"adaptive_teaching": {"triage_adapter": "test_adaptive:broken_builder"}},
        agent=ScriptedAgent(),
    )
    state = await run("a task", mode="auto", metadata={"tags": ["x"]})
    dossier = state["dossier"]
    assert dossier["builder"] == "default"
    assert dossier["tags"] == ["x"]
    assert (
        "test_adaptive:broken_builder: RuntimeError: triage service down"
        in (dossier["builder_error"])
    )
    assert state["status"] == "succeeded"
    triage = next(e for e in run.events if e["atlas_event"] == "triage_done")
    assert triage["data"]["builder_error"] == dossier["builder_error"]


# --------------------------------------------------------------------------- fingerprint


def test_fingerprint_is_stable_and_depends_on_agent_tenant_tools_and_tags() -> None:
    base = {"agent_name": "a", "tenant": "t", "tool_names": ["x", "y"], "tags": ["p", "q"]}
    first = fingerprint(**base)
    assert first == fingerprint(
        agent_name="a", tenant="t", tool_names=["y", "x"], tags=["q", "p", "p"]
    )
    for change in ({"agent_name": "b"}, {"tenant": "u"}, {"tool_names": ["x"]}, {"tags": ["p"]}):
        assert fingerprint(**{**base, **change}) != first  # type: ignore[arg-type]
    assert fingerprint(**base, hint="fp-mine") == "fp-mine"


async def test_session_fingerprint_uses_metadata_tenant_and_hint(make_run: Any) -> None:
    run = make_run(agent=ScriptedAgent())
    first = await run("a", mode="auto", thread="1", metadata={"tenant": "acme", "tags": ["k"]})
    second = await run("b", mode="auto", thread="2", metadata={"tenant": "acme", "tags": ["k"]})
    other = await run("c", mode="auto", thread="3", metadata={"tenant": "beta", "tags": ["k"]})
    hinted = await run("d", mode="auto", thread="4", metadata={"fingerprint": "fp-x"})
    assert first["fingerprint"] == second["fingerprint"] != other["fingerprint"]
    assert hinted["fingerprint"] == "fp-x"


# --------------------------------------------------------------------------- routing rules


async def test_rule1_run_mode_beats_forced_mode(make_run: Any) -> None:
    run = make_run({"orchestration": {"forced_mode": "coach"}}, agent=ScriptedAgent())
    state = await run("x", mode="auto")
    assert state["lane"] == "auto"
    assert state["lane_decision"]["source"] == "run override"


async def test_rule2_forced_mode_beats_mode_override(make_run: Any) -> None:
    run = make_run(
        {"orchestration": {"forced_mode": "auto"},
         "adaptive_teaching": {"mode_override": "escalate"}},
        agent=ScriptedAgent(),
    )  # fmt: skip
    state = await run("x")
    assert state["lane"] == "auto"
    assert state["lane_decision"]["source"] == "orchestration.forced_mode"


@pytest.mark.parametrize("lane", ["auto", "paired", "coach", "escalate"])
async def test_rule2_mode_override_accepts_every_lane_and_beats_certification(
    make_run: Any, lane: str
) -> None:
    probe = probe_model(0.9)
    run = make_run(
        {"adaptive_teaching": {"mode_override": lane, "certify_first_run": True}},
        agent=ScriptedAgent(), models={"teacher": teacher(), "probe": probe},
        store=InMemoryStore(),
    )  # fmt: skip
    state = await run("x")
    assert state["lane"] == lane
    assert state["adaptive_summary"]["source"] == "adaptive_teaching.mode_override"
    assert state["adaptive_summary"]["certification_run"] is False
    assert probe.call_count == 0


async def test_rule3_certification_then_probe_on_the_second_run(make_run: Any) -> None:
    store = InMemoryStore()
    probe = probe_model(0.9, mode="auto")
    run = make_run(
        {**CERTIFY, "rim": {"reuse_validation_as_reward": False}},
        agent=ScriptedAgent(), models={"teacher": teacher(0.8), "probe": probe}, store=store,
    )  # fmt: skip
    first = await run("x", thread="s1")
    assert first["lane"] == "paired"
    summary = first["adaptive_summary"]
    assert summary["certification_run"] is True
    assert summary["source"] == "certification"
    assert probe.call_count == 0
    # with no judge to score, the teacher's certification verdict is the session reward
    assert first["reward"]["score"] == pytest.approx(0.8)
    assert first["reward"]["raw"]["source"] == "teacher_validation"
    stored = store.get(("atlas", "fingerprints", first["fingerprint"]), "certification")
    assert stored is not None
    assert stored.value["score"] == pytest.approx(0.8)
    assert stored.value["session_id"] == "s1"
    # the teacher's own verdict, not the reward's "reused" label
    assert stored.value["valid"] is True
    assert stored.value["rationale"] == first["steps"]["1"]["validation"]["rationale"]
    assert stored.value["reward_source"] == "teacher_validation"

    second = await run("x", thread="s2")
    assert probe.call_count == 1
    assert second["adaptive_summary"]["certification_run"] is False
    assert second["lane"] == "auto"
    assert second["lane_decision"]["source"] == "probe"
    # the probe saw the first session in the fingerprint's history
    seen = second["learning_history"]
    assert seen["certified"] is True
    assert seen["session_count"] == 1
    assert seen["sessions"] == [{"lane": "paired", "reward": 0.8, "retries": 0,
                                 "status": "succeeded"}]  # fmt: skip
    probe_prompt = str(probe.calls[0]["messages"][-1].content)
    assert '"reward": 0.8' in probe_prompt and '"lane": "paired"' in probe_prompt


async def test_certification_without_a_store_is_skipped_with_a_note(make_run: Any) -> None:
    run = make_run(CERTIFY, agent=ScriptedAgent(), models={"probe": probe_model(0.9)})
    state = await run("x")
    assert state["adaptive_summary"]["certification_run"] is False
    assert state["lane"] == "auto"
    assert state["learning_history"] is None
    assert any("certification skipped" in note for note in state["plan_notes"])


@pytest.mark.parametrize(
    ("confidence", "lane"),
    [(0.95, "auto"), (0.85, "auto"), (0.7, "paired"), (0.5, "coach"), (0.35, "coach"),
     (0.2, "escalate")],
)  # fmt: skip
async def test_rule4_probe_confidence_maps_to_a_lane_by_thresholds(
    make_run: Any, confidence: float, lane: str
) -> None:
    evidence = [f"reason {n}" for n in range(10)]
    run = make_run(
        {"adaptive_teaching": {"probe": {"evidence_limit": 3}}},
        agent=ScriptedAgent(plan=[{"id": 1, "description": "one"}]),
        models={"teacher": teacher(), "probe": probe_model(confidence, evidence=evidence)},
    )  # fmt: skip
    state = await run("x")
    assert state["lane"] == lane
    summary = state["adaptive_summary"]
    assert summary["adaptive_mode"] == lane
    assert summary["confidence"] == pytest.approx(confidence)
    assert summary["probe"] == {
        "mode": "paired", "confidence": pytest.approx(confidence),
        "evidence": ["reason 0", "reason 1", "reason 2"],
    }  # fmt: skip
    assert summary["mode_history"][-1] == {
        "mode": lane,
        "confidence": pytest.approx(confidence),
        "source": "probe",
    }
    [event] = lane_events(run)
    assert event["lane"] == lane and event["source"] == "probe"
    assert event["evidence"] == ["reason 0", "reason 1", "reason 2"]
    assert event["confidence"] == pytest.approx(confidence)
    assert state["usage"]["probe"]["calls"] == 1


async def test_configured_thresholds_are_used(make_run: Any) -> None:
    run = make_run(
        {"adaptive_teaching": {"probe": {"thresholds": {"auto": 0.5, "paired": 0.4,
                                                        "coach": 0.1}}}},
        agent=ScriptedAgent(), models={"probe": probe_model(0.55)},
    )  # fmt: skip
    assert (await run("x"))["lane"] == "auto"


@pytest.mark.parametrize(
    "thresholds",
    [{"auto": 0.5, "paired": 0.6}, {"paired": 0.2, "coach": 0.3}, {"auto": 0.1}],
)
def test_thresholds_must_be_ordered(thresholds: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match=r"adaptive_teaching\.probe\.thresholds: thresholds "
                                          r"must satisfy auto >= paired >= coach"):  # fmt: skip
        load_config({"adaptive_teaching": {"probe": {"thresholds": thresholds}}})


def test_threshold_out_of_range_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"adaptive_teaching\.probe\.thresholds\.auto"):
        load_config({"adaptive_teaching": {"probe": {"thresholds": {"auto": 1.5}}}})


async def test_rule5_fallback_without_a_probe_model(make_run: Any) -> None:
    run = make_run(
        {"adaptive_teaching": {"probe": {"fallback_mode": "coach"}}},
        agent=ScriptedAgent(), models={"teacher": teacher()},
    )  # fmt: skip
    state = await run("x")
    assert state["lane"] == "coach"
    assert state["lane_decision"]["source"] == "fallback"
    assert "adaptive_teaching.probe.llm is not set" in state["lane_decision"]["reason"]
    assert state["adaptive_summary"]["probe"] is None


async def test_disabled_adaptive_teaching_skips_certification_and_probe(make_run: Any) -> None:
    probe = probe_model(0.9)
    run = make_run(
        {"adaptive_teaching": {"enabled": False, "certify_first_run": True}},
        agent=ScriptedAgent(), models={"teacher": teacher(), "probe": probe},
        store=InMemoryStore(),
    )  # fmt: skip
    state = await run("x")
    assert state["lane"] == "paired"
    assert state["lane_decision"]["reason"] == "adaptive teaching is disabled"
    assert probe.call_count == 0


# --------------------------------------------------------------------------- fail open


async def test_probe_fails_open_on_a_missing_key(
    make_run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ATLAS_TEST_PROBE_KEY", raising=False)
    llm = {"model": "probe-model", "api_key_env": "ATLAS_TEST_PROBE_KEY"}
    run = make_run(
        {"adaptive_teaching": {"probe": {"llm": llm, "fallback_mode": "auto"}}},
        agent=ScriptedAgent(),
    )
    state = await run("x")
    assert state["lane"] == "auto"
    assert state["lane_decision"]["source"] == "fallback"
    assert "ATLAS_TEST_PROBE_KEY is not set" in state["lane_decision"]["reason"]
    assert state["status"] == "succeeded"


async def test_probe_fails_open_on_an_error(make_run: Any) -> None:
    probe = ScriptedChatModel(responses=[RuntimeError("provider exploded")])
    run = make_run(agent=ScriptedAgent(), models={"teacher": teacher(), "probe": probe})
    state = await run("x")
    assert state["lane"] == "paired"
    assert "probe failed: RuntimeError: provider exploded" in state["lane_decision"]["reason"]
    [event] = lane_events(run)
    assert event["source"] == "fallback" and "provider exploded" in event["reason"]


async def test_probe_fails_open_on_timeout(make_run: Any) -> None:
    slow = ScriptedChatModel(responses=[json.dumps({"confidence": 0.99})], latency=30)
    run = make_run(
        {"adaptive_teaching": {"probe": {"timeout_seconds": 0.05}}},
        agent=ScriptedAgent(), models={"teacher": teacher(), "probe": slow},
    )  # fmt: skip
    state = await run("x")
    assert state["lane"] == "paired"
    assert "probe timed out after 0.05s" in state["lane_decision"]["reason"]


async def test_probe_fails_open_on_an_unreadable_reply(make_run: Any) -> None:
    probe = ScriptedChatModel(responses=["I think it is fine", "Still fine"])
    run = make_run(agent=ScriptedAgent(), models={"teacher": teacher(), "probe": probe})
    state = await run("x")
    assert state["lane"] == "paired"
    assert "probe reply unreadable" in state["lane_decision"]["reason"]
    assert state["usage"]["probe"]["calls"] == 2  # the reply and its one re-ask


# --------------------------------------------------------------------------- history


async def test_history_records_lanes_rewards_retries_and_streaks(make_run: Any) -> None:
    scores = iter([0.3, 0.9, 0.9, 0.9])
    coach_teacher = ScriptedChatModel(
        responder=teacher_responder(validate=lambda _: verdict(score=next(scores)))
    )
    probe = probe_model(0.5)  # coach: one retry allowed
    run = make_run(
        {"adaptive_teaching": {"learning_history_limit": 2}},
        agent=ScriptedAgent(), models={"teacher": coach_teacher, "probe": probe},
        store=InMemoryStore(),
    )  # fmt: skip
    first = await run("x", thread="a")
    assert first["lane"] == "coach"
    assert "learn" in run.nodes
    await run("x", thread="b")
    third = await run("x", thread="c")
    seen = third["learning_history"]
    assert seen["session_count"] == 2
    assert [s["retries"] for s in seen["sessions"]] == [1, 0]
    assert seen["lanes"] == {"coach": 2}
    assert seen["success_streak"] == 2
    assert seen["reward_mean"] == pytest.approx(0.9)


async def test_learn_node_is_skipped_when_nothing_uses_history(make_run: Any) -> None:
    run = make_run(agent=ScriptedAgent(), models={"teacher": teacher()}, store=InMemoryStore())
    await run("x")
    assert run.nodes == ["triage", "probe", "execute", "validate", "reward", "finalize"]


async def test_auto_lane_without_reward_still_records_history(make_run: Any) -> None:
    store = InMemoryStore()
    run = make_run(agent=ScriptedAgent(), models={"probe": probe_model(0.99)}, store=store)
    state = await run("x")
    assert run.nodes == ["triage", "probe", "execute", "learn", "finalize"]
    items = store.search(("atlas", "fingerprints", state["fingerprint"], "sessions"))
    assert [(i.key, i.value["lane"], i.value["reward"]) for i in items] == [("t1", "auto", None)]


class CountingStore(InMemoryStore):
    """An in-memory store that counts the operations it serves."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[Any] = []

    async def abatch(self, ops: Any) -> Any:
        ops = list(ops)
        self.ops.extend(ops)
        return await super().abatch(ops)


async def test_store_is_untouched_when_no_adaptive_feature_needs_it(make_run: Any) -> None:
    store = CountingStore()
    run = make_run(agent=ScriptedAgent(), models={"teacher": teacher()}, store=store)
    await run("x")
    # only the session ledger (start and end records) is written; nothing adaptive is read
    assert [(op.namespace, type(op).__name__) for op in store.ops] == [
        (("atlas", "sessions"), "PutOp"),
        (("atlas", "sessions"), "PutOp"),
    ]


async def test_an_override_skips_the_history_read(make_run: Any) -> None:
    store = CountingStore()
    run = make_run(CERTIFY, agent=ScriptedAgent(), models={"probe": probe_model(0.9)},
                   store=store)  # fmt: skip
    state = await run("x", mode="auto")
    assert state["learning_history"] is None
    # besides the session ledger, only the learn node touched the store: one read, one write
    adaptive = [op for op in store.ops if getattr(op, "namespace", None) != ("atlas", "sessions")]
    assert [type(op).__name__ for op in adaptive] == ["SearchOp", "PutOp"]


async def test_history_keeps_the_newest_sessions_up_to_the_cap(make_run: Any) -> None:
    store = InMemoryStore()
    run = make_run(
        {"adaptive_teaching": {"learning_history_limit": 2}},
        agent=ScriptedAgent(), models={"probe": probe_model(0.99)}, store=store,
    )  # fmt: skip
    for thread in ("a", "b", "c", "d"):
        state = await run("x", thread=thread)
    items = store.search(("atlas", "fingerprints", state["fingerprint"], "sessions"))
    # the cap is the largest window any feature reads: here the drift default of 50
    assert sorted(item.key for item in items) == ["a", "b", "c", "d"]
    assert state["learning_history"]["session_count"] == 3
    assert len(state["learning_history"]["sessions"]) == 2


async def test_history_is_pruned_to_the_cap() -> None:
    from atlas_graph.storage.history import aappend_session, aload_sessions

    store = InMemoryStore()
    for n in range(5):
        entry = {"session_id": f"s{n}", "lane": "auto", "reward": None,
                 "completed_at": f"2026-01-01T00:00:0{n}"}  # fmt: skip
        await aappend_session(store, "fp", entry, cap=3)
    assert [e["session_id"] for e in await aload_sessions(store, "fp")] == ["s2", "s3", "s4"]
