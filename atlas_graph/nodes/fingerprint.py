"""Fingerprints: which sessions count as "the same kind of work" for history and memory.

Two sessions share a fingerprint when the same agent, for the same tenant, with the same tools
works on tasks with the same tags. Task text is left out on purpose: lane history and persona
memory should carry across different tasks of one workload. A caller that knows better passes
``session_metadata["fingerprint"]`` (the dossier's ``fingerprint_hint``), which is used as is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any


def fingerprint(
    *,
    agent_name: str,
    tenant: str | None,
    tool_names: Iterable[str],
    tags: Iterable[str],
    hint: Any = None,
) -> str:
    """A stable id: order of tools and tags does not matter; a hint overrides the hash."""
    if hint not in (None, ""):
        return str(hint)
    material = {
        "agent": agent_name,
        "tenant": tenant or "",
        "tools": sorted(set(tool_names)),
        "tags": sorted(set(tags)),
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    return f"fp-{digest[:16]}"


def tenant_of(metadata: dict[str, Any]) -> str | None:
    """The tenant named in session metadata (``tenant`` or ``tenant_id``)."""
    value = metadata.get("tenant", metadata.get("tenant_id"))
    return None if value is None else str(value)
