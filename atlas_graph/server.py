"""``graph`` for LangGraph Server: ``"atlas": "atlas_graph.server:graph"`` in ``langgraph.json``.

Built on import, as the server expects a module variable, from the config file
``ATLAS_GRAPH_CONFIG`` names (``demo``: the offline demo); without it the import fails with a
one-line ``ConfigError`` and the server does not start. See ``atlas_graph.serve``.
"""

from __future__ import annotations

from atlas_graph.serve import served_graph

graph = served_graph()
