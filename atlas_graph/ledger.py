"""The session ledger: one record per session in the LangGraph Store.

Records live under ``("atlas", "sessions")`` keyed by the thread id, so writing one again
(a resumed or replayed node) replaces it instead of adding a duplicate. Nodes reach the Store
through ``runtime.store``, which makes the ledger work the same under ``run()``, the CLI and
``langgraph dev``; a graph compiled without a store simply keeps no ledger.

The end record carries everything an export needs without reading checkpoints (which
``prune`` may have deleted): plain JSON copies of the answer, plan, steps, reward data,
adaptive summary, dossier, learning notes and metadata. ``review_status`` starts as
``pending`` (the trace spec's first review state) unless the session state already set it.
"""

from __future__ import annotations

import json
from typing import Any

from langgraph.store.base import BaseStore

from atlas_graph.events import utc_now
from atlas_graph.state import AtlasState

NAMESPACE = ("atlas", "sessions")
LEDGER_VERSION = 1

# State keys copied into the end record as they are.
_EXPORT_KEYS = (
    "final_answer", "plan", "steps", "reward", "reward_stats", "reward_audit",
    "adaptive_summary", "dossier", "fingerprint", "lane_decision", "learning_history",
    "student_learning", "teacher_learning", "session_metadata", "plan_approval", "plan_notes",
)  # fmt: skip


def _plain(value: Any) -> Any:
    """A JSON-only deep copy: what the Store keeps never aliases live state."""
    return json.loads(json.dumps(value, default=str))


def reward_summary(reward: dict[str, Any] | None) -> dict[str, Any] | None:
    """Score and judge count: enough for listings without the full breakdown."""
    if not reward:
        return None
    return {"score": reward.get("score"), "judges": len(reward.get("judges") or [])}


async def record_start(
    store: BaseStore | None, session_id: str, task: str, metadata: dict[str, Any]
) -> None:
    """Write the ``running`` record when a session starts (no-op without a store)."""
    if store is None:
        return
    now = utc_now()
    record = {
        "version": LEDGER_VERSION,
        "session_id": session_id,
        "task": task,
        "status": "running",
        "lane": None,
        "started_at": now,
        "updated_at": now,
        "completed_at": None,
        "review_status": "pending",
        "review_notes": None,
        "session_metadata": _plain(metadata),
    }
    await store.aput(NAMESPACE, session_id, record, index=False)


async def record_end(
    store: BaseStore | None, state: AtlasState, *, status: str, completed_at: str
) -> None:
    """Write the final record with the data an export needs (no-op without a store)."""
    if store is None:
        return
    session_id = state.get("session_id", "")
    record: dict[str, Any] = {
        "version": LEDGER_VERSION,
        "session_id": session_id,
        "task": state.get("task", ""),
        "status": status,
        "lane": state.get("lane"),
        "started_at": state.get("started_at"),
        "updated_at": utc_now(),
        "completed_at": completed_at,
        "review_status": state.get("review_status") or "pending",
        "review_notes": state.get("review_notes"),
        "reward_summary": reward_summary(state.get("reward")),
        "usage": _plain(state.get("usage", {})),
    }
    for key in _EXPORT_KEYS:
        record[key] = _plain(state.get(key))
    await store.aput(NAMESPACE, session_id, record, index=False)


async def get_record(store: BaseStore, session_id: str) -> dict[str, Any] | None:
    """The ledger record of one session, if any."""
    item = await store.aget(NAMESPACE, session_id)
    return dict(item.value) if item else None


async def list_records(store: BaseStore, *, limit: int = 50) -> list[dict[str, Any]]:
    """Ledger records, most recently updated first."""
    records: list[dict[str, Any]] = []
    offset, page = 0, 200
    while True:
        items = await store.asearch(NAMESPACE, limit=page, offset=offset)
        records.extend(dict(item.value) for item in items)
        if len(items) < page:
            break
        offset += page
    records.sort(key=lambda record: record.get("updated_at") or "", reverse=True)
    return records[:limit]


async def delete_record(store: BaseStore, session_id: str) -> None:
    """Remove one session's record."""
    await store.adelete(NAMESPACE, session_id)
