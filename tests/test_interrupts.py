"""Human in the loop inside the student: ``interrupt()`` in the agent or in a tool pauses the
session, and ``Command(resume=...)`` (``arun(resume=...)``, ``atlas-graph resume --answer``)
continues it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import teacher_responder
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import interrupt

from atlas_graph.agents import AgentRequest, AgentResponse
from atlas_graph.cli import main
from atlas_graph.runner import arun
from atlas_graph.testing import ScriptedChatModel

QUESTION = {"question": "Which city?"}


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("LANGSMITH_TRACING", "LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING_V2"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


async def asking_agent(request: AgentRequest) -> AgentResponse:
    """Asks a person which city before answering the step."""
    if request.mode == "planning":
        return AgentResponse(content=json.dumps({"steps": [{"id": 1, "description": "x"}]}))
    answer = interrupt(QUESTION)
    return AgentResponse(content=f"Weather for {answer['city']}: sunny.")


def ask_person(topic: str) -> str:
    """A tool that asks a person."""
    reply = interrupt({"question": f"What about {topic}?"})
    return str(reply)


async def tool_calling_agent(request: AgentRequest) -> AgentResponse:
    if request.tool_rounds:
        return AgentResponse(
            content=f"The person said {request.tool_rounds[-1].results[0].content}."
        )
    return AgentResponse(
        content="", tool_calls=[{"id": "ask-1", "name": "ask_person", "args": {"topic": "tea"}}]
    )


ASK_TOOL: dict[str, Any] = {
    "name": "ask_person",
    "description": "Ask a person.",
    "parameters": {
        "type": "object",
        "properties": {"topic": {"type": "string"}},
        "required": ["topic"],
    },
    "implementation": "test_interrupts:ask_person",
}


def teacher() -> dict[str, Any]:
    return {"teacher": ScriptedChatModel(responder=teacher_responder())}


async def test_interrupt_in_the_agent_pauses_and_resume_continues() -> None:
    saver = InMemorySaver()
    paused = await arun(
        "Weather?", mode="paired", agent=asking_agent, checkpointer=saver, models=teacher(),
        thread_id="t1", stream_progress=False,
    )  # fmt: skip
    assert paused.waiting and paused.waiting_for == QUESTION
    assert paused.status != "failed"

    done = await arun(
        None, thread_id="t1", agent=asking_agent, checkpointer=saver, models=teacher(),
        resume={"city": "Lisbon"}, stream_progress=False,
    )  # fmt: skip
    assert not done.waiting
    assert done.final_answer == "Weather for Lisbon: sunny."
    attempt = done.steps[0].attempt_history[0]
    assert attempt.error is None


async def test_interrupt_in_a_tool_pauses_and_resume_continues() -> None:
    saver = InMemorySaver()
    config = {
        "storage": {"backend": "memory"},
        "agent": {"type": "python", "import_path": "test_interrupts:tool_calling_agent",
                  "tools": [ASK_TOOL]},
    }  # fmt: skip
    paused = await arun(
        "Tea?", config=config, mode="paired", checkpointer=saver, models=teacher(),
        thread_id="t2", stream_progress=False,
    )  # fmt: skip
    assert paused.waiting_for == {"question": "What about tea?"}

    done = await arun(
        None, config=config, thread_id="t2", checkpointer=saver, models=teacher(),
        resume="green, please", stream_progress=False,
    )  # fmt: skip
    assert done.final_answer == "The person said green, please."
    calls = done.steps[0].attempt_history[0].tool_calls
    assert [(c["name"], c["output"], c["is_error"]) for c in calls] == [
        ("ask_person", "green, please", False)
    ]


def test_cli_resume_answers_the_interrupt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "atlas.yaml"
    config.write_text(json.dumps({
        "agent": {"type": "python", "import_path": "test_interrupts:asking_agent"},
        "teacher": {"validator": "atlas_graph.demo:validator"},
        "storage": {"backend": "sqlite", "path": str(tmp_path / "s.sqlite")},
    }))  # fmt: skip
    code = main(["run", "Weather?", "-c", str(config), "--mode", "paired",
                 "--thread-id", "cli-1", "--no-stream"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 3 and "waits for an answer" in out, out
    assert "atlas-graph resume cli-1 --answer JSON" in out

    assert main(["resume", "cli-1", "-c", str(config), "--answer", "{bad"]) == 2
    capsys.readouterr()
    main(["resume", "cli-1", "-c", str(config), "--answer", '{"city": "Oslo"}', "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["final_answer"] == "Weather for Oslo: sunny.", result
    assert result["steps"][0]["attempt_history"][0]["error"] is None
    assert result["waiting_for"] is None
