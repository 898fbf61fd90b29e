"""Session routing inside the nodes: each routing node returns ``Command(update, goto)``.

A conditional edge shows its router the state after the node's writes by copying every
channel of the graph and applying the writes to the copies: about 0.4 ms per route on
``AtlasState`` here, a tenth of a paired session's framework time. The routers of the
session loop read only keys that their node replaces outright (``lane``, ``plan``,
``plan_approval``, ``reward``) or does not write (``steps``, ``task``, ...), so the node's
update laid over the state it was given is exactly what such a router would see, at no copy.
The step loop (execute, validate, guide, dispatch) already routes this way.

``update_state`` (a fork) runs no node, so it cannot route by itself: ``route_of`` gives the
fork the node's route, and the fork writes ``Command(update, goto)`` as that node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Send

from atlas_graph.state import AtlasState
from atlas_graph.telemetry.instrument import posing_as

Route = Callable[[AtlasState], str | list[Send]]
# The attribute that carries a routed node's route; node wrappers copy a function's attributes.
_ROUTE = "atlas_route"


def routed(node: Callable[..., Awaitable[Any]], route: Route) -> Callable[..., Awaitable[Any]]:
    """``node`` that also goes where ``route`` says for the state after its update.

    The wrapper keeps the node's name and signature, so LangGraph injects the same arguments.
    """

    async def routing(state: AtlasState, *args: Any, **kwargs: Any) -> Command[Any]:
        update = await node(state, *args, **kwargs) or {}
        return Command(update=update, goto=route({**state, **update}))  # type: ignore[typeddict-item]

    wrapper = posing_as(routing, node)
    setattr(wrapper, _ROUTE, route)
    return wrapper


def route_of(graph: CompiledStateGraph[Any, Any, Any, Any], node: str) -> Route | None:
    """The route of ``node`` in ``graph`` (None when its edges are static)."""
    spec = graph.builder.nodes.get(node)
    function = getattr(spec.runnable, "afunc", None) if spec is not None else None
    return getattr(function, _ROUTE, None)
