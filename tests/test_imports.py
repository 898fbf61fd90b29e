"""The package's public names load on first use, and importing the package loads nothing heavy."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import atlas_graph

# Optional or heavy parts: model clients, database drivers, savers, tracing, YAML, HTTP.
HEAVY = (
    "langchain_openai",
    "openai",
    "psycopg",
    "psycopg_pool",
    "langgraph.checkpoint.postgres",
    "langgraph.checkpoint.sqlite",
    "aiosqlite",
    "langsmith",
    "httpx",
    "yaml",
    "langgraph",
    "langchain_core",
)


def _modules_after(code: str) -> set[str]:
    """Names in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("name", atlas_graph.__all__)
def test_every_public_name_resolves(name: str) -> None:
    value = getattr(atlas_graph, name)
    assert value is not None
    assert getattr(value, "__name__", name) == name  # the object itself, not a stand-in
    namespace: dict[str, object] = {}
    exec(f"from atlas_graph import {name}", namespace)
    assert namespace[name] is value


def test_public_names_are_listed_once_and_in_dir() -> None:
    assert len(set(atlas_graph.__all__)) == len(atlas_graph.__all__)
    assert set(atlas_graph.__all__) <= set(dir(atlas_graph))


def test_unknown_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        atlas_graph.no_such_thing  # noqa: B018


def test_importing_the_package_loads_no_heavy_module() -> None:
    loaded = _modules_after("import atlas_graph")
    assert "atlas_graph" in loaded
    assert sorted(name for name in HEAVY if name in loaded) == []


def test_using_a_name_loads_only_what_it_needs() -> None:
    # Result is a pydantic model: asking for it must not bring in clients or drivers
    loaded = _modules_after("from atlas_graph import Result")
    assert "atlas_graph.result" in loaded
    absent = ("langchain_openai", "openai", "psycopg", "langgraph.checkpoint.postgres")
    assert sorted(name for name in absent if name in loaded) == []


# What a plug-in receives and returns, and the module each contract lives in.
CONTRACTS = {
    "ValidationRequest": "atlas_graph.nodes.teacher",
    "TeacherVerdict": "atlas_graph.nodes.teacher",
    "PlanReviewRequest": "atlas_graph.nodes.teacher",
    "PlanReview": "atlas_graph.nodes.teacher",
    "JudgeRequest": "atlas_graph.nodes.judges",
    "JudgeReply": "atlas_graph.nodes.judges",
    "Principle": "atlas_graph.nodes.judges",
    "TriageBuilder": "atlas_graph.nodes.triage",
    "TriageDossier": "atlas_graph.nodes.triage",
    "TriageRisk": "atlas_graph.nodes.triage",
    "Agent": "atlas_graph.agents.base",
    "AgentRequest": "atlas_graph.agents.base",
    "AgentResponse": "atlas_graph.agents.base",
    "ToolRound": "atlas_graph.agents.base",
    "ToolResult": "atlas_graph.agents.base",
}


@pytest.mark.parametrize(("name", "home"), sorted(CONTRACTS.items()))
def test_plug_in_contracts_are_exported_from_the_package(name: str, home: str) -> None:
    assert name in atlas_graph.__all__
    namespace: dict[str, object] = {}
    exec(f"from atlas_graph import {name}", namespace)
    assert namespace[name] is getattr(importlib.import_module(home), name)


def test_the_triage_dossier_type_names_every_key_triage_writes() -> None:
    from atlas_graph.nodes.triage import TriageDossier, default_dossier

    dossier = default_dossier("Restart the api.", {"risks": ["p1 outage"]}, ["ops"])
    assert set(dossier) <= set(TriageDossier.__annotations__)
