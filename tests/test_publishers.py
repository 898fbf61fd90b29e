"""Telemetry publishers: every event reaches them, bracketed by control events."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from atlas_graph.cli import EXIT_OK, main
from atlas_graph.runner import AtlasRunError, arun
from atlas_graph.telemetry.events import AtlasEvent
from atlas_graph.telemetry.publishers import JsonlFilePublisher, TelemetryPublisher
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

MEMORY: dict[str, Any] = {"storage": {"backend": "memory"}}


class Recorder:
    """A publisher that remembers every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def attach(self, session_id: str) -> None:
        self.calls.append(("attach", session_id))

    def publish(self, event: Any) -> None:
        self.calls.append(("publish", event))

    def detach(self) -> None:
        self.calls.append(("detach", None))

    @property
    def published(self) -> list[Any]:
        return [payload for kind, payload in self.calls if kind == "publish"]


def teacher(*replies: dict[str, Any]) -> ScriptedChatModel:
    return ScriptedChatModel(responses=[json.dumps(reply) for reply in replies])


GOOD = {"approved": True, "concerns": [], "valid": True, "score": 0.9, "rationale": "ok",
        "guidance": ""}  # fmt: skip


async def test_publisher_receives_every_event_between_control_events() -> None:
    recorder = Recorder()
    seen: list[AtlasEvent] = []
    result = await arun(
        "Do it.", config=MEMORY, mode="paired", thread_id="pub-1", agent=ScriptedAgent(),
        models={"teacher": teacher(GOOD)}, publishers=[recorder], on_event=seen.append,
    )  # fmt: skip
    assert isinstance(recorder, TelemetryPublisher)
    assert recorder.calls[0] == ("attach", "pub-1")
    assert recorder.calls[-1] == ("detach", None)
    published = recorder.published
    assert published[0]["atlas_control"] == "session_started"
    assert published[0]["data"] == {"task": "Do it.", "mode": "paired", "resumed": False}
    assert published[-1]["atlas_control"] == "session_completed"
    assert published[-1]["data"] == {"status": result.status}
    assert published[1:-1] == seen  # the same events the callback saw, in the same order
    assert [e["atlas_event"] for e in seen][-2:] == ["final_answer", "session_finished"]
    assert {e["session_id"] for e in published} == {"pub-1"}


async def test_jsonl_publisher_writes_one_line_per_event(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "events.jsonl"
    publisher = JsonlFilePublisher(path)
    for thread in ("a", "b"):  # one publisher, two sessions, one file
        await arun("Do it.", config=MEMORY, mode="auto", thread_id=thread,
                   agent=ScriptedAgent(), publishers=[publisher])  # fmt: skip
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    kinds = [line.get("atlas_control") or line["atlas_event"] for line in lines]
    one = [
        "session_started", "session_started", "triage_done", "lane_decided", "step_attempt_started",
        "step_attempt_finished", "final_answer", "session_finished", "session_completed",
    ]  # fmt: skip
    assert kinds == one + one
    assert [line["session_id"] for line in lines] == ["a"] * len(one) + ["b"] * len(one)
    with pytest.raises(RuntimeError, match="not attached"):
        publisher.publish(lines[0])  # closed again after the last session


async def test_a_stopped_session_tells_publishers_it_failed() -> None:
    recorder = Recorder()
    with pytest.raises(AtlasRunError):
        await arun(
            "Do it.", config=MEMORY, mode="paired", thread_id="pub-2", agent=ScriptedAgent(),
            models={"teacher": ScriptedChatModel(responses=[])}, publishers=[recorder],
        )  # fmt: skip
    failed, completed = recorder.published[-2:]
    assert failed["atlas_event"] == "session_failed"
    assert failed["data"]["node"] == "validate"
    assert failed["data"]["error"].startswith("ScriptExhaustedError")
    assert completed["atlas_control"] == "session_completed"
    assert completed["data"]["status"] == "failed"
    assert recorder.calls[-1] == ("detach", None)


async def test_a_failing_publisher_is_dropped_and_the_session_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Recorder):
        def publish(self, event: Any) -> None:
            super().publish(event)
            raise OSError("disk full")

    broken, healthy = Broken(), Recorder()
    with caplog.at_level(logging.ERROR, logger="atlas_graph.telemetry.fanout"):
        result = await arun("Do it.", config=MEMORY, mode="auto", agent=ScriptedAgent(),
                            publishers=[broken, healthy])  # fmt: skip
    assert result.status == "succeeded"
    assert len(broken.published) == 1  # the first control event, then it was dropped
    assert broken.calls[-1] == ("detach", None)
    assert healthy.published[-1]["atlas_control"] == "session_completed"
    assert "disk full" in caplog.text


async def test_an_object_that_is_not_a_publisher_is_refused() -> None:
    with pytest.raises(TypeError, match="lacks attach/publish/detach"):
        await arun("Do it.", config=MEMORY, agent=ScriptedAgent(), publishers=[print])  # type: ignore[list-item]


def test_cli_events_jsonl_gets_every_demo_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "events.jsonl"
    assert main(["demo", "--no-stream", "--events-jsonl", str(path)]) == EXIT_OK
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    controls = [(line["atlas_control"], line["data"].get("mode")) for line in lines
                if "atlas_control" in line]  # fmt: skip
    lanes = ["auto", "paired", "coach", "escalate"]
    assert [mode for kind, mode in controls if kind == "session_started"] == lanes
    assert [kind for kind, _ in controls].count("session_completed") == 4
    retry = [line for line in lines if line.get("atlas_event") == "retry"]
    assert len(retry) == 1
    assert (retry[0]["step_id"], retry[0]["attempt"]) == (1, 1)
    assert "task started" not in capsys.readouterr().out  # --no-stream: no console lines


async def test_a_cancelled_session_still_completes_and_detaches_its_publishers() -> None:
    recorder = Recorder()
    session = asyncio.create_task(
        arun(
            "Do it.",
            config=MEMORY,
            mode="auto",
            agent=ScriptedAgent(latency=30),
            publishers=[recorder],
        )
    )
    for _ in range(3000):  # until the agent is busy with its (long) attempt
        if any(p.get("atlas_event") == "step_attempt_started" for p in recorder.published):
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the session never started its attempt")
    session.cancel()
    with pytest.raises(asyncio.CancelledError):
        await session
    assert recorder.published[-1]["atlas_control"] == "session_completed"
    assert recorder.published[-1]["data"] == {"status": "failed", "error": "interrupted"}
    assert recorder.calls[-1] == ("detach", None)
