"""``create_atlas_graph``: the supervised loop as an uncompiled LangGraph ``StateGraph``.

The caller compiles it with the persistence it wants (a checkpointer and a store),
or hands it to ``langgraph dev``, or adds it to a parent graph as a subgraph.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable

# what StateGraph turns a function into (tests/test_layout.py pins its parameters)
from langgraph._internal._runnable import RunnableCallable
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy

from atlas_graph.agents import AgentLike
from atlas_graph.agents.tools import ToolLike
from atlas_graph.config import AtlasConfig, load_config
from atlas_graph.models import is_transient
from atlas_graph.nodes.adaptive import make_probe_node, make_triage_node
from atlas_graph.nodes.arbiter import make_arbiter_node
from atlas_graph.nodes.finalize import make_finalize_node
from atlas_graph.nodes.learn import make_learn_node
from atlas_graph.nodes.reward import make_reward_node
from atlas_graph.nodes.scheduler import dispatch
from atlas_graph.nodes.student import make_execute_node, make_plan_node, make_synthesize_node
from atlas_graph.nodes.teacher import make_guide_node, make_review_node, make_validate_node
from atlas_graph.routes import destinations
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
    agent: AgentLike | None = None,
    tools: Sequence[ToolLike] = (),
) -> StateGraph[AtlasState, AtlasContext, AtlasInput, AtlasOutput]:
    """Build the supervised loop for one agent.

    Args:
        config: An ``AtlasConfig``, a mapping in the YAML layout, or a path to YAML.
        models: Chat models by role (``student``, ``teacher``, ``judge``, ``arbiter``,
            ``probe``, ``learning``, ``prompt_rewrite``) that take the place of the config's
            LLM settings; scripted models from ``atlas_graph.testing`` fit.
        agent: The student's agent: an object with ``async ainvoke(request)``, a chat model or
            a function. Defaults to the config's ``agent`` section.
        tools: Tools the student may call, in addition to ``agent.tools``: LangChain
            ``BaseTool``s (``@tool``, MCP tools from ``langchain-mcp-adapters``) or plain
            functions (typed, with a docstring). Each keeps its own argument schema.

    Returns:
        An uncompiled graph; compile it with the checkpointer and store you want.
    """
    services = Services(load_config(config), models=models, agent=agent, tools=tools)
    routes = services.routes
    llm = RetryPolicy(max_attempts=3, initial_interval=0.5, retry_on=is_transient)  # model calls
    builder = StateGraph(
        AtlasState, context_schema=AtlasContext, input_schema=AtlasInput, output_schema=AtlasOutput
    )
    add = builder.add_node

    # the session, stage by stage; where each stage goes next is a route of routes.py
    add("triage", make_triage_node(services))
    add("probe", make_probe_node(services))
    add("plan", make_plan_node(services), retry_policy=llm)
    add("review", make_review_node(services), retry_policy=llm)
    add("dispatch", dispatch)
    # the step loop, one branch per step (Send): execute → validate → guide → execute
    add("execute", make_execute_node(services), destinations=destinations(routes.after_execute))
    add(
        "validate",
        make_validate_node(services),
        retry_policy=llm,
        # a retry whose guidance needs no teacher call goes straight back to execute
        destinations=(*destinations(routes.after_validate), *destinations(routes.after_guide)),
    )
    add(
        "guide",
        make_guide_node(services),
        retry_policy=llm,
        destinations=destinations(routes.after_guide),
    )
    # the answer, its reward and what is learnt from it
    add("synthesize", make_synthesize_node(services), retry_policy=llm)
    add("reward", make_reward_node(services), retry_policy=llm)
    add("arbiter", make_arbiter_node(services), retry_policy=llm)
    add("learn", make_learn_node(services))
    add("finalize", make_finalize_node(services))

    # the session's routes are conditional edges: update_state (a fork, Studio) routes again
    for node, route in (
        ("probe", routes.after_probe),
        ("review", routes.after_review),
        ("dispatch", routes.after_dispatch),
        ("synthesize", routes.after_synthesize),
        ("reward", routes.after_reward),
    ):
        builder.add_conditional_edges(node, inline(route), list(destinations(route)))
    builder.add_edge(START, "triage")
    builder.add_edge("triage", "probe")
    builder.add_edge("plan", "review")
    builder.add_edge("arbiter", routes.after_arbiter())
    builder.add_edge("learn", "finalize")
    builder.add_edge("finalize", END)
    # events into trajectory_events and LangSmith labels, for every node (see instrument.py)
    instrument_nodes(builder, event_limit=services.config.orchestration.trajectory_event_limit)
    return builder


def inline(route: Callable[[Any], Any]) -> Runnable[Any, Any]:
    """``route`` as a conditional edge that runs on the event loop, as a coroutine does.

    LangGraph hands a plain function on an edge to a thread pool when the graph runs async:
    a thread hop per route, which cost a paired session about a tenth of its CPU time and
    made concurrent sessions queue for the pool. A route is a few dict lookups, so it runs
    inline; sync callers (``invoke``) call it directly. It is traced as LangGraph traces a
    conditional edge, a run named after the route.
    """

    async def aroute(state: Any) -> Any:
        return route(state)

    return RunnableCallable(route, aroute, name=getattr(route, "__name__", None), trace=True)
