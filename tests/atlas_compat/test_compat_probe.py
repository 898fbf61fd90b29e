"""The probe's mode and the low-confidence lane: native defaults and Atlas's mapping."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import teacher_responder

from atlas_graph.testing import ScriptedAgent, ScriptedChatModel


def probe_model(confidence: float, mode: str | None) -> ScriptedChatModel:
    reply = {"mode": mode, "confidence": confidence, "evidence": ["seen"]}
    return ScriptedChatModel(responses=[reply], repeat_last=True)


async def lane(make_run: Any, probe: dict[str, Any], confidence: float, mode: str | None) -> str:
    run = make_run(
        {"adaptive_teaching": {"probe": probe}},
        agent=ScriptedAgent(plan=[{"id": 1, "description": "one"}]),
        models={
            "teacher": ScriptedChatModel(responder=teacher_responder()),
            "probe": probe_model(confidence, mode),
        },
    )
    state = await run("x")
    assert state["lane_decision"]["source"] == "probe"
    return str(state["lane"])


@pytest.mark.parametrize(
    ("probe", "confidence", "mode", "expected"),
    [
        # default: thresholds decide, a low confidence escalates, the mode is only noted
        ({}, 0.95, "coach", "auto"),
        ({}, 0.1, "auto", "escalate"),
        ({"low_confidence_lane": "coach"}, 0.1, None, "coach"),
        # stricter: the probe's mode counts when it asks for more supervision
        ({"mode_policy": "stricter"}, 0.95, "coach", "coach"),
        ({"mode_policy": "stricter"}, 0.5, "auto", "coach"),
        # probe: the probe's mode wins when it names a lane
        ({"mode_policy": "probe"}, 0.5, "auto", "auto"),
        ({"mode_policy": "probe"}, 0.95, "bogus", "auto"),
        # Atlas: the probe's mode, coach as the floor, never escalate
        ({"atlas_compatible": True}, 0.1, None, "coach"),
        ({"atlas_compatible": True}, 0.1, "escalate", "coach"),
        ({"atlas_compatible": True}, 0.2, "paired", "paired"),
        ({"atlas_compatible": True, "low_confidence_lane": "escalate"}, 0.0, None, "coach"),
    ],
)
async def test_probe_mode_and_low_confidence_lane(
    make_run: Any, probe: dict[str, Any], confidence: float, mode: str | None, expected: str
) -> None:
    assert await lane(make_run, probe, confidence, mode) == expected
