"""The step scheduler's join point: every stepwise branch comes back here when its step ends.

``dispatch`` changes nothing itself; its route (``Routes.after_dispatch``) sends every step
whose dependencies have finished to its own execute → validate → guide branch (``Send``),
bounded by ``orchestration.max_parallel_steps``, and moves on to synthesis once every step has
finished. A plan thus costs its critical path rather than the sum of its steps.
"""

from __future__ import annotations

from atlas_graph.state import AtlasState


async def dispatch(state: AtlasState) -> AtlasState:
    """No update: where the session goes next is all this node decides (see routes.py)."""
    return {}
