"""Atlas triage input and output: list signals, TriageDossier objects, fingerprint_hint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from atlas_graph.nodes.triage import build_dossier
from atlas_graph.testing import ScriptedAgent

HERE = Path(__file__).parent

ATLAS_SIGNALS = [
    {"name": "open_tickets", "value": 3, "annotation": "customer has 3 open tickets"},
    {"name": "plan", "value": "enterprise", "annotation": None},
]


async def test_atlas_list_signals_run_a_session(make_run: Any) -> None:
    run = make_run(agent=ScriptedAgent())
    state = await run("a task", mode="auto", metadata={"signals": ATLAS_SIGNALS})

    assert state["status"] == "succeeded"
    dossier = state["dossier"]
    assert dossier["signals"] == {"open_tickets": 3, "plan": "enterprise"}
    assert dossier["signal_annotations"] == {"open_tickets": "customer has 3 open tickets"}
    assert "builder_error" not in dossier


async def test_unusable_signals_are_recorded_not_fatal() -> None:
    dossier = await build_dossier("t", {"signals": [["a", 1, "x"]]}, [], None)
    assert dossier["signals"] == {}
    assert "signal must be a mapping" in dossier["builder_error"]


async def test_fingerprint_hint_in_metadata_is_the_fingerprint(make_run: Any) -> None:
    run = make_run(agent=ScriptedAgent())
    state = await run("a task", mode="auto", metadata={"fingerprint_hint": "fp-atlas"})
    assert state["fingerprint"] == "fp-atlas"
    assert state["dossier"]["fingerprint_hint"] == "fp-atlas"


@pytest.fixture
def on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))


@pytest.mark.usefixtures("on_path")
async def test_atlas_triage_dossier_object_is_accepted(make_run: Any) -> None:
    run = make_run(
        {"adaptive_teaching": {"triage_adapter": "atlas_agents:atlas_triage"}},
        agent=ScriptedAgent(),
    )
    state = await run("refund the customer", mode="auto")

    dossier = state["dossier"]
    assert "builder_error" not in dossier
    assert dossier["builder"] == "atlas_agents:atlas_triage"
    assert dossier["summary"] == "billing dispute"
    assert dossier["signals"] == {"tier": "gold"}
    assert dossier["signal_annotations"] == {"tier": "paying customer"}
    assert dossier["risks"][0]["description"] == "refund owed"
    assert dossier["risks"][0]["severity"] == "high"
    assert dossier["max_severity"] == "high"
    assert dossier["persona_hints"] == ["support-lead"]
    assert "domain:support" in dossier["tags"]
    assert state["fingerprint"] == "fp-billing"
