"""``create_atlas_graph``: the supervised loop as an uncompiled LangGraph ``StateGraph``.

The caller compiles it with the persistence it wants (a checkpointer and a store),
or hands it to ``langgraph dev``, or adds it to a parent graph as a subgraph.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy, Send

from atlas_graph.config import AtlasConfig, load_config
from atlas_graph.models import is_transient
from atlas_graph.nodes.adaptive import make_probe_node, make_triage_node
from atlas_graph.nodes.approval import awaiting_approval
from atlas_graph.nodes.arbiter import make_arbiter_node
from atlas_graph.nodes.finalize import make_finalize_node
from atlas_graph.nodes.learn import make_learn_node
from atlas_graph.nodes.reward import make_reward_node, route_after_reward
from atlas_graph.nodes.scheduler import make_dispatch_node, ready_sends
from atlas_graph.nodes.student import make_execute_node, make_plan_node, make_synthesize_node
from atlas_graph.nodes.teacher import (
    make_guide_node,
    make_review_node,
    make_validate_node,
)
from atlas_graph.routing import routed
from atlas_graph.services import AtlasContext, Services
from atlas_graph.state import AtlasInput, AtlasOutput, AtlasState
from atlas_graph.telemetry.instrument import instrument_nodes

GRAPH_NAME = "atlas-graph"
NODES = (
    "triage", "probe", "plan", "review", "dispatch", "execute", "validate", "guide",
    "synthesize", "reward", "arbiter", "learn", "finalize",
)  # fmt: skip


def create_atlas_graph(
    config: AtlasConfig | Mapping[str, Any] | str | Path,
    *,
    models: Mapping[str, BaseChatModel] | None = None,
    agent: Any = None,
) -> StateGraph[AtlasState, AtlasContext, AtlasInput, AtlasOutput]:
    """Build the supervised loop for one agent.

    Args:
        config: An ``AtlasConfig``, a mapping in the YAML layout, or a path to YAML.
        models: Chat models by role (``student``, ``teacher``, ``judge``, ``arbiter``,
            ``probe``, ``learning``, ``prompt_rewrite``) that take the place of the config's
            LLM settings; scripted models from ``atlas_graph.testing`` fit.
        agent: The student's agent: an object with ``async ainvoke(request)``, a chat model or
            a function. Defaults to the config's ``agent`` section.

    Returns:
        An uncompiled graph; compile it with the checkpointer and store you want.
    """
    services = Services(load_config(config), models=models, agent=agent)
    llm_retry = RetryPolicy(max_attempts=3, initial_interval=0.5, retry_on=is_transient)

    builder = StateGraph(
        AtlasState, context_schema=AtlasContext, input_schema=AtlasInput, output_schema=AtlasOutput
    )
    after_reward = services.after_reward()  # fixed per graph: learn when it has work

    # The session's routes, decided by the node that ends each stage (see routing.py);
    # plain functions of the state, so sync callers (invoke) run them too.
    def after_probe(state: AtlasState) -> str | list[Send]:
        # lanes without planning already have their one-step plan: start it
        if services.policy(state["lane"]).plan:
            return "plan"
        return ready_sends(state, services)[0]

    def after_review(state: AtlasState) -> str | list[Send]:
        if awaiting_approval(state):
            return "review"  # the review pauses for a person's decision on its second pass
        return ready_sends(state, services)[0] if state.get("plan") else "plan"

    def after_synthesize(state: AtlasState) -> str:
        return services.after_answer(state["lane"])

    builder.add_node("triage", make_triage_node(services))
    builder.add_node(
        "probe", routed(make_probe_node(services), after_probe), destinations=("plan", "execute")
    )
    builder.add_node("plan", make_plan_node(services), retry_policy=llm_retry)
    builder.add_node(
        "review", routed(make_review_node(services), after_review), retry_policy=llm_retry,
        destinations=("plan", "review", "execute"),
    )  # fmt: skip
    builder.add_node(
        "dispatch", make_dispatch_node(services), destinations=("execute", "synthesize")
    )
    builder.add_node(
        "execute", make_execute_node(services),
        destinations=("validate", "dispatch", "reward", "learn", "finalize"),
    )  # fmt: skip
    builder.add_node(
        "validate", make_validate_node(services), retry_policy=llm_retry,
        destinations=("guide", "dispatch", "reward", "learn", "finalize"),
    )  # fmt: skip
    builder.add_node(
        "guide", make_guide_node(services), retry_policy=llm_retry, destinations=("execute",)
    )
    builder.add_node(
        "synthesize", routed(make_synthesize_node(services), after_synthesize),
        retry_policy=llm_retry, destinations=("reward", "learn", "finalize"),
    )  # fmt: skip
    builder.add_node(
        "reward", routed(make_reward_node(services), route_after_reward(after_reward)),
        retry_policy=llm_retry, destinations=("arbiter", after_reward),
    )  # fmt: skip
    builder.add_node("arbiter", make_arbiter_node(services), retry_policy=llm_retry)
    builder.add_node("learn", make_learn_node(services))
    builder.add_node("finalize", make_finalize_node(services))

    builder.add_edge(START, "triage")
    builder.add_edge("triage", "probe")
    builder.add_edge("plan", "review")
    builder.add_edge("arbiter", after_reward)
    builder.add_edge("learn", "finalize")
    builder.add_edge("finalize", END)
    # events into trajectory_events and LangSmith labels, for every node (see instrument.py)
    instrument_nodes(builder, event_limit=services.config.orchestration.trajectory_event_limit)
    return builder
