"""The learning registry: playbook entries per learning key in the LangGraph Store.

Under ``("atlas", "learning", <learning key>)``:

- ``("entries",)``: one item per entry id, the current version of the entry with its gate,
  rubric, statistics and status;
- ``("history",)``: one item per change (synthesized, rejected, accepted, cue hit, adopted,
  promoted, pruned, …) with the entry's version and a snapshot, never rewritten;
- ``("sessions",)``: one item per session that used the key: reward, tokens, what the prompts
  carried, which cues fired and which actions were adopted (the learning curve).

The learning key follows Atlas: agent, tenant, tags and task prefix, or the session
metadata's ``learning_key``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

from langgraph.store.base import BaseStore

from atlas_graph.config import AtlasConfig
from atlas_graph.state import AtlasState
from atlas_graph.telemetry.events import utc_now

ROOT = ("atlas", "learning")
TASK_PREFIX_CHARS = 48
_PAGE = 500


def learning_key(config: AtlasConfig, state: AtlasState) -> str:
    """The session's learning key: metadata ``learning_key``, else a digest of who and what."""
    metadata = state.get("session_metadata") or {}
    if metadata.get("learning_key"):
        return str(metadata["learning_key"])
    tenant = metadata.get("tenant", metadata.get("tenant_id"))
    material = {
        "agent": config.agent.name if config.agent else "agent",
        "tenant": "" if tenant is None else str(tenant),
        "tags": sorted({str(tag) for tag in (state.get("dossier") or {}).get("tags", [])}),
        "task": " ".join(state.get("task", "").lower().split())[:TASK_PREFIX_CHARS],
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    return f"lk-{digest[:16]}"


def namespace(key: str, part: str) -> tuple[str, ...]:
    """Where one part (entries, history, sessions) of a learning key lives."""
    return (*ROOT, key, part)


async def _all(store: BaseStore, ns: tuple[str, ...]) -> list[dict[str, Any]]:
    values: list[dict[str, Any]] = []
    while True:
        page = await store.asearch(ns, limit=_PAGE, offset=len(values))
        values.extend(dict(item.value) for item in page)
        if len(page) < _PAGE:
            return values


async def aload_entries(store: BaseStore, key: str) -> list[dict[str, Any]]:
    """Every entry of ``key``, any status, oldest first."""
    entries = await _all(store, namespace(key, "entries"))
    return sorted(entries, key=lambda entry: (entry.get("created_at", ""), entry["id"]))


async def aload_history(
    store: BaseStore, key: str, entry_id: str | None = None
) -> list[dict[str, Any]]:
    """The changes of ``key`` (or of one entry), in the order they happened."""
    changes = await _all(store, namespace(key, "history"))
    if entry_id is not None:
        changes = [change for change in changes if change["entry_id"] == entry_id]
    return sorted(changes, key=lambda change: change["seq"])


async def aload_sessions(store: BaseStore, key: str) -> list[dict[str, Any]]:
    """The sessions of ``key``, oldest first."""
    sessions = await _all(store, namespace(key, "sessions"))
    return sorted(sessions, key=lambda session: session["seq"])


def change(entry: dict[str, Any], action: str, reason: str, session_id: str) -> dict[str, Any]:
    """A history record: what happened to which version of an entry, and why."""
    snapshot = {k: v for k, v in entry.items() if k not in ("examples",)}
    return {
        "entry_id": entry["id"], "version": entry.get("version", 1), "action": action,
        "status": entry.get("status"), "reason": reason, "session_id": session_id,
        "at": utc_now(), "seq": time.time_ns(), "entry": snapshot,
    }  # fmt: skip


async def awrite(
    store: BaseStore,
    key: str,
    entries: list[dict[str, Any]],
    changes: list[dict[str, Any]],
    session: dict[str, Any] | None = None,
) -> None:
    """Write changed entries, append their history, and record the session."""
    writes = [store.aput(namespace(key, "entries"), entry["id"], entry) for entry in entries]
    for index, item in enumerate(changes):
        item = {**item, "seq": item["seq"] + index}  # one ordering even within a nanosecond
        name = f"{item['seq']:020d}-{item['entry_id']}"
        writes.append(store.aput(namespace(key, "history"), name, item))
    if session is not None:
        session = {**session, "seq": time.time_ns()}
        writes.append(store.aput(namespace(key, "sessions"), session["session_id"], session))
    await asyncio.gather(*writes)


async def alearning_keys(store: BaseStore) -> list[str]:
    """Every learning key that has anything stored."""
    found = await store.alist_namespaces(prefix=ROOT, max_depth=3, limit=10_000)
    return sorted({ns[2] for ns in found if len(ns) >= 3})


async def areset(store: BaseStore, key: str) -> int:
    """Delete a learning key's entries, history and sessions; returns items deleted."""
    deleted = 0
    for part in ("entries", "history", "sessions"):
        ns = namespace(key, part)
        while items := await store.asearch(ns, limit=_PAGE):
            await asyncio.gather(*(store.adelete(ns, item.key) for item in items))
            deleted += len(items)
    return deleted
