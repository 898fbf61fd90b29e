"""Thin Atlas SDK-shaped entry points over the native API.

``atlas_graph.compat.core.run/arun`` take Atlas's arguments (``task``, ``config_path``,
``publisher``, ``session_metadata``) and return an ``AtlasResult``: Atlas's field names
(``final_answer``, ``plan``, ``step_results`` with ``evaluation``/``trace``/``metadata``)
mapped from the native ``Result``. Nothing here keeps state of its own: each call is one
``atlas_graph.runner.arun`` call.
"""

from atlas_graph.compat.core import arun, run
from atlas_graph.compat.types import (
    AtlasPlan,
    AtlasResult,
    AtlasStep,
    AtlasStepEvaluation,
    AtlasStepResult,
)

__all__ = [
    "AtlasPlan",
    "AtlasResult",
    "AtlasStep",
    "AtlasStepEvaluation",
    "AtlasStepResult",
    "arun",
    "run",
]
