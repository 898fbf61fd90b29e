"""How the graph is assembled: node wrappers keep what LangGraph injects, nodes route the
session themselves (no conditional edges), and the reward's spread matches ``statistics``."""

from __future__ import annotations

import inspect
import statistics
from typing import Any
from uuid import UUID

import pytest
from helpers import teacher_responder
from langchain_core.callbacks import AsyncCallbackHandler

from atlas_graph.graph import NODES, create_atlas_graph
from atlas_graph.nodes.reward import reward_stats
from atlas_graph.state import RouteView
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel


class ChainNames(AsyncCallbackHandler):
    """Records the name of every chain run that starts."""

    def __init__(self) -> None:
        self.names: list[str] = []

    async def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.names.append(str(kwargs.get("name")))


def _graph() -> Any:
    teacher = ScriptedChatModel(responder=teacher_responder())
    return create_atlas_graph({}, agent=ScriptedAgent(), models={"teacher": teacher}).compile()


def test_wrapped_nodes_keep_their_signatures_for_injection() -> None:
    graph = _graph()
    parameters = {
        name: list(inspect.signature(graph.nodes[name].bound.afunc).parameters) for name in NODES
    }
    assert parameters["triage"] == ["state", "config", "runtime"]
    assert parameters["dispatch"] == ["state"]
    assert parameters["execute"] == ["task", "runtime"]
    assert parameters["probe"] == parameters["review"] == ["state", "runtime"]  # routed nodes
    # and LangGraph injects accordingly: triage asks for config and runtime, dispatch for none
    assert set(graph.nodes["triage"].bound.func_accepts) == {"config", "runtime"}
    assert graph.nodes["dispatch"].bound.func_accepts == {}


def test_nodes_route_the_session_and_the_drawing_keeps_every_route() -> None:
    builder = create_atlas_graph({}, agent=ScriptedAgent())
    # the session routes are conditional edges reading a narrow view: each copies few channels
    assert set(builder.branches) == {"probe", "review", "dispatch", "synthesize", "reward"}
    assert {spec.input_schema for specs in builder.branches.values()
            for spec in specs.values()} == {RouteView}  # fmt: skip
    edges = {(edge.source, edge.target, edge.conditional) for edge in
             builder.compile().get_graph().edges}  # fmt: skip
    for source, targets in {
        "probe": ("plan", "execute"),
        "review": ("plan", "review", "execute"),
        "synthesize": ("reward", "finalize"),
        "reward": ("arbiter", "finalize"),
    }.items():
        for target in targets:
            assert (source, target, True) in edges, (source, target)


@pytest.mark.parametrize("lane", ["paired", "coach"])
async def test_each_session_route_is_one_traced_conditional_edge(lane: str) -> None:
    handler = ChainNames()
    state = await _graph().ainvoke({"task": "x", "mode": lane}, config={"callbacks": [handler]})
    assert state["status"] == "succeeded"
    visited = ["triage", "probe", "after_probe", "execute", "validate", "reward", "after_reward",
               "finalize"]  # fmt: skip
    if lane == "coach":
        visited[3:3] = ["plan", "review", "after_review"]
    runs = [name for name in handler.names if name in NODES or name.startswith("after_")]
    assert runs == visited


@pytest.mark.parametrize(
    "scores", [[0.7], [0.0], [1.0], [0.2, 0.9], [0.5, 0.5, 0.5], [0.1, 0.4, 0.8, 0.3]]
)
def test_reward_spread_matches_statistics(scores: list[float]) -> None:
    stats = reward_stats(0.5, [{"score": s, "uncertainty": s / 2} for s in scores])
    assert stats["score_stddev"] == statistics.pstdev(scores)
    assert stats["uncertainty_stddev"] == statistics.pstdev([s / 2 for s in scores])
    assert stats["sample_count"] == len(scores)


def test_reward_spread_of_no_samples_is_none() -> None:
    stats = reward_stats(None, [])
    assert stats["score_stddev"] is None and stats["uncertainty_stddev"] is None
