"""Optional dependencies: each extra of ``pyproject.toml`` a feature needs, imported on use.

The base install runs the offline path (the demo, scripted models, SQLite and memory
storage). Real model clients and PostgreSQL come with extras; using them without the extra
installed is a one-line ``MissingExtraError`` that names the extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from atlas_graph.errors import MissingExtraError

EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "openai": ("langchain_openai", "openai"),
    "postgres": (
        "psycopg",
        "psycopg_pool",
        "langgraph.checkpoint.postgres",
        "langgraph.store.postgres",
    ),
}
"""The modules each extra brings, as features import them."""


def require_extra(extra: str, feature: str) -> tuple[ModuleType, ...]:
    """Import every module of ``extra``, or raise ``MissingExtraError`` naming it.

    Only a missing module of the extra itself is turned into that error; any other import
    failure inside an installed package (a broken build, a missing system library) is left
    as it is, since installing the extra again would not fix it.
    """
    modules = EXTRA_MODULES[extra]
    imported = []
    for name in modules:
        try:
            imported.append(importlib.import_module(name))
        except ModuleNotFoundError as error:
            missing = error.name
            if missing is None or not any(
                module == missing or module.startswith(f"{missing}.") for module in modules
            ):
                raise
            raise MissingExtraError(feature, extra=extra, module=missing) from None
    return tuple(imported)
