"""``graph`` for LangGraph Server, by file path: the same as ``atlas_graph.server:graph``.

``langgraph.json`` names the package module; this file is for hosts and older configs that
point at ``./graphs/atlas.py:graph``. ``ATLAS_GRAPH_CONFIG`` names the config to serve
(``demo`` for the offline demo); without it the graph does not load.
"""

from __future__ import annotations

from atlas_graph.serve import served_graph

graph = served_graph()
