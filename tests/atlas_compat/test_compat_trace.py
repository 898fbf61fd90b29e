"""Atlas's trace keys in every lane, with their types; reasoning capture; auto-approval.

New keys (documented in docs/guides/atlas-sdk.md): ``learning_key`` (string),
``drift`` (object or null), ``drift_alert`` (boolean), ``reward_summary`` (``{score, judges:
{identifier: score}, escalated}`` or null), ``teacher_notes`` (array of strings), and each
step's ``metadata.reasoning`` (string or null).
"""

from __future__ import annotations

from typing import Any

import pytest
from export_records import demo_config
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from atlas_graph.agents.messages import reasoning_of
from atlas_graph.demo import DEMO_TASKS
from atlas_graph.export import iter_session_traces
from atlas_graph.runner import arun
from atlas_graph.storage.history import drift
from atlas_graph.storage.persistence import Persistence

DRIFT = {"drift": {"enabled": True, "min_baseline": 1, "window": 10}}


async def lane_traces(**safety: Any) -> list[dict[str, Any]]:
    store = InMemoryStore()
    persistence = Persistence(InMemorySaver(), store, "memory")
    config = demo_config(runtime_safety={**DRIFT, **safety})
    for round_ in range(2):  # the second round has a baseline, so drift is computed
        for lane, task in DEMO_TASKS:
            result = await arun(task, config=config, mode=lane, thread_id=f"{lane}-{round_}",
                                persistence=persistence)  # fmt: skip
            assert result.status == "succeeded", lane
    return list(iter_session_traces(store, statuses=None))


def check_types(trace: dict[str, Any]) -> None:
    assert isinstance(trace["learning_key"], str)
    assert trace["drift"] is None or isinstance(trace["drift"], dict)
    assert isinstance(trace["drift_alert"], bool)
    assert trace["drift_alert"] is bool(trace["drift"] and trace["drift"]["alert"])
    summary = trace["reward_summary"]
    if summary is not None:
        assert isinstance(summary["score"], float)
        assert isinstance(summary["judges"], dict)
        assert all(isinstance(score, float) for score in summary["judges"].values())
        assert isinstance(summary["escalated"], bool)
    assert isinstance(trace["teacher_notes"], list)
    assert all(isinstance(note, str) for note in trace["teacher_notes"])
    for step in trace["steps"]:
        reasoning = step["metadata"]["reasoning"]
        assert reasoning is None or isinstance(reasoning, str)
        for attempt in step["metadata"]["attempt_history"]:
            assert "reasoning" in attempt


async def test_every_lane_exports_the_atlas_keys_with_their_types() -> None:
    traces = await lane_traces()
    lanes = {trace["execution_mode"] for trace in traces}
    assert lanes == {"auto", "paired", "coach", "escalate"}
    for trace in traces:
        check_types(trace)
    # a scored lane has a flat reward summary matching the full reward
    scored = [trace for trace in traces if trace["session_reward"]]
    assert scored
    for trace in scored:
        assert trace["reward_summary"]["score"] == trace["session_reward"]["score"]
        identifiers = [judge["identifier"] for judge in trace["session_reward"]["judges"]]
        assert sorted(trace["reward_summary"]["judges"]) == sorted(identifiers)
    # the second round's scored sessions carry the drift check
    checked = [trace for trace in scored if trace["drift"] is not None]
    assert checked
    for trace in checked:
        assert {"z_score", "mad_z_score", "uncertainty_z_score", "thresholds", "alert"} <= set(
            trace["drift"]
        )


async def test_require_approval_false_auto_approves_finished_sessions() -> None:
    traces = await lane_traces(review={"require_approval": False})
    for trace in traces:
        check_types(trace)
        if not trace["drift_alert"]:
            assert trace["review_status"] == "approved"
    default = await lane_traces()
    assert {trace["review_status"] for trace in default} == {"pending"}


async def test_agent_reasoning_reaches_the_step_metadata() -> None:
    store = InMemoryStore()

    def agent(request: Any) -> dict[str, Any]:
        return {"content": "42", "reasoning": "6 times 7"}

    await arun("What is 6 x 7?", config={"storage": {"backend": "memory"}}, mode="auto",
               agent=agent, thread_id="r", persistence=Persistence(InMemorySaver(), store,
                                                                  "memory"))  # fmt: skip
    [trace] = iter_session_traces(store, statuses=None)
    assert trace["steps"][0]["metadata"]["reasoning"] == "6 times 7"
    check_types(trace)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (AIMessage("4", additional_kwargs={"reasoning_content": "2+2"}), "2+2"),
        (AIMessage("4", additional_kwargs={"reasoning": {"summary": [{"text": "sum"}]}}), "sum"),
        (AIMessage([{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "4"}]), "hm"),
        (AIMessage([{"type": "reasoning", "summary": [{"text": "r"}]}]), "r"),
        (AIMessage("4"), None),
    ],
)
def test_reasoning_is_read_from_each_provider_form(message: AIMessage, expected: str) -> None:
    assert reasoning_of(message) == expected


def history(*scores: float, uncertainty: float = 0.1) -> list[dict[str, Any]]:
    return [{"reward": score, "uncertainty": uncertainty} for score in scores]


def test_drift_is_two_sided_and_checks_uncertainty_with_mad() -> None:
    steady = history(0.5, 0.52, 0.48, 0.5, 0.51)
    common = {"window": 10, "z_threshold": 3.0, "min_baseline": 3, "mad_threshold": 3.5}
    up = drift(0.99, steady, **common)
    assert up is not None and up["alert"] and "above" in up["reason"]
    one_sided = drift(0.99, steady, **common, two_sided=False)
    assert one_sided is not None and not one_sided["alert"]
    unsure = drift(0.5, steady, **common, uncertainty=0.9)
    assert unsure is not None and unsure["alert"] and "uncertainty drift" in unsure["reason"]
    calm = drift(0.5, steady, **common, uncertainty=0.1)
    assert calm is not None and not calm["alert"] and "reason" not in calm
    # one wild past score inflates the deviation; the MAD variant still sees the drop
    noisy = history(0.5, 0.5, 0.5, 0.5, 0.0, 0.5)
    robust = drift(0.4, noisy, **common)
    assert robust is not None and abs(robust["z_score"]) < 3.0
    assert robust["alert"] and "MAD" in robust["reason"]


async def test_a_chat_model_students_reasoning_reaches_the_trace() -> None:
    from atlas_graph.agents import ChatModelAgent
    from atlas_graph.testing import ScriptedChatModel

    model = ScriptedChatModel(
        responses=[AIMessage("42", additional_kwargs={"reasoning_content": "6 times 7 is 42"})]
    )
    store = InMemoryStore()
    await arun("What is 6 x 7?", config={"storage": {"backend": "memory"}}, mode="auto",
               agent=ChatModelAgent(model), thread_id="c",
               persistence=Persistence(InMemorySaver(), store, "memory"))  # fmt: skip
    [trace] = iter_session_traces(store, statuses=None)
    assert trace["final_answer"] == "42"
    assert trace["steps"][0]["metadata"]["reasoning"] == "6 times 7 is 42"
    assert trace["steps"][0]["metadata"]["attempt_history"][0]["reasoning"] == "6 times 7 is 42"
