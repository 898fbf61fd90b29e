"""The console transcript: a golden file for a scripted run with a retry, and colour rules."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from helpers import CALCULATE, teacher_responder
from langchain_core.messages import BaseMessage

from atlas_graph.runner import arun
from atlas_graph.telemetry.console import ConsoleRenderer
from atlas_graph.telemetry.events import make_event
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

GOLDEN = Path(__file__).parent / "golden" / "console_retry.txt"
MEMORY: dict[str, Any] = {"storage": {"backend": "memory"}}


def normalise(transcript: str) -> str:
    """Replace what changes from run to run (clock and durations) with fixed marks."""
    transcript = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "<time>", transcript)
    return re.sub(r"\b\d+\.\d+s\b", "<N>s", transcript)


def teacher() -> ScriptedChatModel:
    """Approves plans; rejects the output 'draft', accepts everything else."""

    def respond(messages: list[BaseMessage]) -> str:
        text = str(messages[-1].content)
        rejected = text.endswith("Student output:\ndraft")
        return json.dumps({
            "approved": True, "concerns": [],
            "valid": not rejected, "score": 0.3 if rejected else 0.9,
            "rationale": "no facts yet" if rejected else "complete",
            "guidance": "Add the facts." if rejected else "",
        })  # fmt: skip

    return ScriptedChatModel(responder=respond)


async def test_golden_transcript_of_a_run_with_a_retry() -> None:
    agent = ScriptedAgent(
        plan=[
            {"id": 1, "description": "Gather facts.", "depends_on": []},
            {"id": 2, "description": "Write summary.", "depends_on": [1]},
        ],
        outputs={1: ["draft", "facts"], 2: ["summary"]},
        synthesis="final summary",
    )
    out = io.StringIO()
    renderer = ConsoleRenderer(out)
    result = await arun(
        "Summarise the incident.", config=MEMORY, mode="escalate", thread_id="golden",
        agent=agent, models={"teacher": teacher()}, on_event=renderer.handle,
        stream_progress=False,
    )  # fmt: skip
    assert result.retries == 1
    transcript = normalise(out.getvalue())
    if os.environ.get("ATLAS_GRAPH_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(transcript, encoding="utf-8")
    assert transcript == GOLDEN.read_text(encoding="utf-8")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "coloured"), [(_Terminal(), True), (io.StringIO(), False)])
def test_colour_only_on_a_terminal(stream: io.StringIO, coloured: bool) -> None:
    renderer = ConsoleRenderer(stream)
    renderer.handle(make_event(
        "validation_verdict", session_id="s", actor="teacher", step_id=1, attempt=1,
        valid=False, score=0.2, rationale="wrong", guidance="", retry=True,
    ))  # fmt: skip
    text = stream.getvalue()
    assert ("\033[31m" in text) is coloured
    assert "[step 1] validation: invalid, score 0.20 — wrong" in text


def test_tool_events_and_failure_lines() -> None:
    out = io.StringIO()
    renderer = ConsoleRenderer(out)
    address = {"session_id": "s", "step_id": 2, "attempt": 1}
    renderer.feed("custom", make_event("tool_call", actor="student", name="search",
                                       args={"q": "latency"}, **address))  # fmt: skip
    renderer.feed("custom", make_event("tool_result", actor="tool", name="search",
                                       output="3 hits", **address))  # fmt: skip
    renderer.feed("updates", {"execute": {"steps": {}}})  # node updates print nothing
    renderer.feed("custom", make_event("session_failed", session_id="s", actor="system",
                                       error="RuntimeError: boom", node="validate"))  # fmt: skip
    lines = out.getvalue().splitlines()
    assert lines[0] == '[step 2] tool call: search({"q": "latency"})'
    assert lines[1] == "[step 2] tool result: search → 3 hits"
    assert re.fullmatch(r"task failed after \d+\.\d\ds in validate: RuntimeError: boom", lines[2])
    assert len(lines) == 3


@pytest.mark.parametrize(("terminal", "prints"), [(True, True), (False, False)])
async def test_stream_progress_none_follows_the_terminal(
    monkeypatch: pytest.MonkeyPatch, terminal: bool, prints: bool
) -> None:
    out = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    await arun("Do it.", config=MEMORY, mode="auto", agent=ScriptedAgent(), stream_progress=None)
    text = out.getvalue()
    assert ("task started " in text) is prints
    assert ("\033[32m" in text) is prints  # a terminal also gets colour


def test_lines_for_the_events_of_triage_reward_tiers_memory_and_approval() -> None:
    out = io.StringIO()
    renderer = ConsoleRenderer(out)
    for event in (
        make_event("triage_done", session_id="s", actor="system", summary="a billing question",
                   risks=[{"description": "refund", "severity": "critical"}], tags=["billing"],
                   fingerprint="fp-1", builder="default", builder_error=None),
        make_event("lane_decided", session_id="s", actor="probe", lane="coach",
                   source="probe", confidence=0.62, reason="probe said so"),
        make_event("plan_approval_requested", session_id="s", actor="system"),
        make_event("reward_tier1", session_id="s", actor="judge", judge="process", score=0.8),
        make_event("arbiter_escalation", session_id="s", actor="arbiter",
                   reason="judges disagree"),
        make_event("learning_update", session_id="s", actor="system", learning_key="lk-1",
                   updates=[{"action": "accepted", "audience": "teacher", "entry_id": "pb-1"},
                            {"action": "pruned", "audience": "student", "entry_id": "pb-2"}]),
        make_event("some_future_event", session_id="s", actor="system"),  # type: ignore[arg-type]
    ):  # fmt: skip
        renderer.handle(event)
    assert out.getvalue().splitlines() == [
        "triage: a billing question | 1 risk(s), worst critical | tags billing | fingerprint fp-1",
        "lane: coach (probe said so, confidence 0.62)",
        "plan approval requested (session s)",
        "reward tier 1: process 0.80",
        "arbiter escalation: judges disagree",
        "playbook: accepted teacher entry pb-1; pruned student entry pb-2",
    ]


def failing_tool(expression: str) -> str:
    raise RuntimeError(f"calculator offline for {expression}")


async def test_lines_of_a_session_with_triage_risks_a_tool_error_and_a_playbook_update() -> None:
    """The renderer reads the events the nodes really emit, not just hand-made ones."""
    from langgraph.store.memory import InMemoryStore

    from atlas_graph.graph import create_atlas_graph

    calculate = {**CALCULATE, "implementation": "test_console:failing_tool"}
    config = {
        **MEMORY,
        "agent": {"type": "python", "tools": [calculate],
                  "import_path": "atlas_graph.examples.agents:calculator_agent"},
    }  # fmt: skip
    verdicts = iter([
        {"valid": False, "score": 0.2, "rationale": "no number", "guidance": "Say the number."},
        {"valid": True, "score": 0.9, "rationale": "fine", "guidance": ""},
    ])  # fmt: skip
    model = ScriptedChatModel(responder=teacher_responder(validate=lambda _text: next(verdicts)))
    entry = {"audience": "student", "cue": {"type": "keyword", "pattern": "multiply"},
             "action": {"imperative": "Call the calculator for every product",
                        "runtime_handle": "calculate"},
             "expected_effect": "exact numbers"}  # fmt: skip
    learner = ScriptedChatModel(responses=[{"entries": [entry]}])
    models = {"teacher": model, "learning": learner}
    graph = create_atlas_graph(config, models=models).compile(store=InMemoryStore())
    out = io.StringIO()
    renderer = ConsoleRenderer(out)
    metadata = {
        "risks": [{"description": "money", "severity": "p1"}, "typo"], "tags": ["billing"],
    }  # fmt: skip
    async for mode, chunk in graph.astream(
        {"task": "Multiply 17 by 23.", "mode": "coach", "session_metadata": metadata},
        {"configurable": {"thread_id": "console"}}, stream_mode=["custom", "updates"],
    ):  # fmt: skip
        renderer.feed(mode, chunk)
    lines = out.getvalue().splitlines()

    triage = next(line for line in lines if line.startswith("triage: "))
    assert re.fullmatch(
        r"triage: 2 risk\(s\), worst high \| tags billing \| fingerprint fp-[0-9a-f]+", triage
    )
    assert "[step 1] tool error: calculate → " in "\n".join(lines)
    assert not any(" tool result: " in line for line in lines)
    (playbook,) = [line for line in lines if line.startswith("playbook: ")]
    assert playbook.startswith("playbook: synthesized student entry pb-")
    assert playbook.endswith("; provisional student entry pb-" + playbook.split("pb-")[-1])


async def test_the_arbiter_line_shows_the_tier1_and_the_final_score() -> None:
    scores = iter([0.9, 0.5, 0.7])

    def judge(_messages: Any) -> str:
        return json.dumps({"score": next(scores), "rationale": "r", "uncertainty": 0.1})

    arbiter = ScriptedChatModel(responder=lambda _m: json.dumps({"score": 0.6, "rationale": "a"}))
    out = io.StringIO()
    renderer = ConsoleRenderer(out)
    events: list[Any] = []

    def seen(event: Any) -> None:
        events.append(event)
        renderer.handle(event)

    await arun(
        "Do it.", config=MEMORY, mode="coach", agent=ScriptedAgent(),
        models={"teacher": teacher(), "judge": ScriptedChatModel(responder=judge),
                "arbiter": arbiter},
        on_event=seen, stream_progress=False,
    )  # fmt: skip
    # the arbiter had the last word, so the reward is its event
    (reward,) = [event for event in events if event["atlas_event"] == "reward"]
    assert reward["actor"] == "arbiter"
    lines = out.getvalue().splitlines()
    (line,) = [line for line in lines if line.startswith("arbiter")]
    assert line == "arbiter: process 0.70 → 0.60 (score stdev 0.163 > variance_threshold 0.15)"
    assert "reward: 0.60 (process 0.60)" in lines


async def test_a_plan_collapsed_by_the_lane_says_so() -> None:
    agent = ScriptedAgent(
        plan=[
            {"id": 1, "description": "Gather facts.", "depends_on": []},
            {"id": 2, "description": "Write summary.", "depends_on": [1]},
        ]
    )
    out = io.StringIO()
    for lane in ("coach", "escalate"):
        await arun(
            "Summarise.", config=MEMORY, mode=lane, agent=agent, models={"teacher": teacher()},
            on_event=ConsoleRenderer(out).handle, stream_progress=False,
        )  # fmt: skip
    reviews = [line for line in out.getvalue().splitlines() if line.startswith("review: ")]
    assert reviews == ["review: approved (the 2 steps run as one)", "review: approved"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("variables", "colored"),
    [({}, True), ({"NO_COLOR": "1"}, False), ({"TERM": "dumb"}, False)],
)
def test_color_follows_no_color_and_dumb_terminals(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], colored: bool
) -> None:
    from atlas_graph.telemetry.console import ConsoleRenderer

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert ConsoleRenderer(_Terminal()).color is colored
