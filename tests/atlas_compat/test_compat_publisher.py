"""An Atlas SDK TelemetryPublisher receives a session's steps and control events unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from atlas_graph.runner import arun
from atlas_graph.testing import ScriptedAgent

MEMORY = {"storage": {"backend": "memory"}}


class AtlasStylePublisher:
    """Written against Atlas's TelemetryPublisher: attach(step_manager), publish_control_event."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, str, dict[str, Any]]] = []
        self.controls: list[tuple[str, dict[str, Any]]] = []
        self.detached = False
        self._subscription: Any = None

    def attach(self, step_manager: Any) -> None:
        self._subscription = step_manager.subscribe(self._handle_event)

    def _handle_event(self, step: Any) -> None:
        payload = step.payload
        self.steps.append((payload.event_type, payload.name, payload.data))
        assert step.UUID == payload.UUID

    def publish_control_event(self, event_type: str, data: dict[str, Any]) -> None:
        self.controls.append((event_type, data))

    def detach(self) -> None:
        if self._subscription is not None:
            self._subscription.unsubscribe()
        self.detached = True


async def test_atlas_publisher_hears_the_session() -> None:
    publisher = AtlasStylePublisher()
    result = await arun(
        "Do it.", config=MEMORY, mode="auto", agent=ScriptedAgent(), publishers=[publisher]
    )
    assert result.status == "succeeded"
    assert [kind for kind, _ in publisher.controls] == ["session_started", "session_completed"]
    assert all(data["session_id"] == result.session_id for _, data in publisher.controls)
    assert publisher.controls[-1][1]["status"] == "succeeded"
    types = [event_type for event_type, _, _ in publisher.steps]
    assert "LANE_DECIDED" in types and "FINAL_ANSWER" in types
    lane = next(data for event_type, _, data in publisher.steps if event_type == "LANE_DECIDED")
    assert lane["lane"] == "auto"
    assert publisher.detached


async def test_something_else_is_still_refused() -> None:
    with pytest.raises(TypeError, match="not an Atlas"):
        await arun("Do it.", config=MEMORY, agent=ScriptedAgent(), publishers=[object()])  # type: ignore[list-item]
