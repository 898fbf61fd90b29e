"""``served_graph``: the graph LangGraph Server serves (``atlas_graph.server:graph``).

Built from the config file that ``ATLAS_GRAPH_CONFIG`` names and compiled without a
checkpointer or store: the server brings its own (PostgreSQL in a production deployment), and
the nodes reach the store through their runtime, so the session ledger, the adaptive history
and learning live in the server's store.

Without ``ATLAS_GRAPH_CONFIG`` the server refuses to start: a deployment that silently served
the offline demo would answer real traffic with a toy. ``ATLAS_GRAPH_CONFIG=demo`` serves the
demo on purpose.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from atlas_graph.config import ConfigError
from atlas_graph.demo import demo_config_path
from atlas_graph.graph import GRAPH_NAME, create_atlas_graph

CONFIG_ENV = "ATLAS_GRAPH_CONFIG"
DEMO = "demo"
"""The value of ``ATLAS_GRAPH_CONFIG`` that serves the offline demo."""


def served_graph(
    environ: Mapping[str, str] | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The graph for the config ``ATLAS_GRAPH_CONFIG`` names, compiled for a server.

    Raises:
        ConfigError: The variable is unset, or its file is not a usable config; the message
            names the variable, since the server only says that the graph failed to load.
    """
    source = (os.environ if environ is None else environ).get(CONFIG_ENV, "").strip()
    if not source:
        raise ConfigError(
            f"{CONFIG_ENV} is not set: name the config file to serve, or set {CONFIG_ENV}={DEMO} "
            "for the offline demo"
        )
    try:
        builder = create_atlas_graph(demo_config_path() if source == DEMO else source)
    except ConfigError as error:
        raise ConfigError(f"{CONFIG_ENV}: {error}") from None
    return builder.compile(name=GRAPH_NAME)
