"""The graph that ``langgraph dev`` / LangGraph Server serve (see ``langgraph.json``).

Built from the config named by ``ATLAS_GRAPH_CONFIG`` (default: the offline demo) and compiled
without a checkpointer or store: the server brings its own.
"""

from __future__ import annotations

import os

from atlas_graph.demo import demo_config_path
from atlas_graph.graph import GRAPH_NAME, create_atlas_graph

graph = create_atlas_graph(os.environ.get("ATLAS_GRAPH_CONFIG") or demo_config_path()).compile(
    name=GRAPH_NAME
)
