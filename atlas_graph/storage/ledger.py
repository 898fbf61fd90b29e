"""The session ledger: one record per session in the LangGraph Store.

Records live under ``("atlas", "sessions")`` keyed by the thread id, so writing one again
(a resumed or replayed node) replaces it instead of adding a duplicate. Nodes reach the Store
through ``runtime.store``, which makes the ledger work the same under ``run()``, the CLI and
``langgraph dev``; a graph compiled without a store simply keeps no ledger.

The ``running`` record is written by the probe, once the lane is decided, so even a live
session shows its lane (a session that stops in triage or the probe has no record until it is
resumed; its checkpoints show it). The end record (written by finalize) carries everything an export
needs without reading checkpoints (which ``prune`` may have deleted): plain JSON copies of
every session state key except the unreviewed plan draft and the persona prompts (see
``NOT_EXPORTED``). ``review_status`` starts as ``pending`` (the trace spec's first review
state) unless the session state already set it.

The id of the final checkpoint cannot be known by finalize, whose own write creates it. The
runner (``arun``, and so ``resume``/``approve`` and the CLI) therefore rewrites the end
record after the run from the final state, adding ``checkpoint_id`` and finalize's own events
(they reach ``trajectory_events`` only with finalize's write); one read keeps a review
decision made in between. A graph run elsewhere (``langgraph dev``, a parent graph) leaves
``checkpoint_id`` null and lacks those last two events; the record names ``thread_id`` and
``checkpoint_ns`` so a reader can ask the checkpointer for the thread's latest checkpoint
(until it is pruned). In a parent graph the session id is the thread id and the namespace
(``session_key``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import orjson
from langgraph.store.base import BaseStore

from atlas_graph.deprecation import renamed
from atlas_graph.state import AtlasState
from atlas_graph.telemetry.events import utc_now

NAMESPACE = ("atlas", "sessions")
LEDGER_VERSION = 1

# State keys copied into the end record as they are.
EXPORT_KEYS = (
    "final_answer", "plan", "steps", "reward", "reward_stats", "reward_audit",
    "adaptive_summary", "dossier", "fingerprint", "mode", "lane_decision", "learning_history",
    "student_learning", "teacher_learning", "session_metadata", "plan_approval", "plan_notes",
    "plan_drafts", "review", "personas_used", "learning_updates", "trajectory_events",
    "learning_key", "applied_student_learning", "applied_teacher_learning", "cost", "budget",
)  # fmt: skip
# State keys the end record leaves out: the draft before review (the record keeps the plan
# that ran) and the rewritten persona prompts and pamphlet texts (``personas_used`` and the
# ``applied_*_learning`` digests say what was used).
NOT_EXPORTED = frozenset({"plan_draft", "persona_context"})
# A person's review decision (see ``review.py``), kept when the runner rewrites the record.
REVIEW_FIELDS = ("review_status", "review_notes", "reviewed_at", "review_history")
# State keys that are fields of the record itself (``usage`` as is, ``lane`` also as the
# spec's ``execution_mode``, ``graph_namespace`` as ``checkpoint_ns``).
RECORD_FIELDS = (
    "session_id", "task", "status", "lane", "started_at", "completed_at", "review_status",
    "review_notes", "usage", "graph_namespace",
)  # fmt: skip


def _plain(value: Any) -> Any:
    """A JSON-only deep copy: what the Store keeps never aliases live state.

    NaN and Infinity (a score computed from nothing, say) become null: they are not JSON,
    and PostgreSQL refuses them. Values from outside are refused before they enter state.
    One orjson round trip per record: a copy per field with ``json`` was a tenth of a
    scripted session's CPU.
    """
    try:
        return orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))
    except (TypeError, orjson.JSONEncodeError):  # an integer beyond 64 bits, say
        return json.loads(json.dumps(value, default=str), parse_constant=_no_constant)


def _no_constant(_name: str) -> None:
    return None


def reward_summary(reward: dict[str, Any] | None) -> dict[str, Any] | None:
    """Score and judge count: enough for listings without the full breakdown."""
    if not reward:
        return None
    return {"score": reward.get("score"), "judges": len(reward.get("judges") or [])}


def session_key(thread_id: str, checkpoint_ns: str) -> str:
    """The session id of a run on ``thread_id`` whose graph has namespace ``checkpoint_ns``.

    At the root (``run()``, the CLI, ``langgraph dev``) it is the thread id. Embedded in a
    parent graph, each run of the graph has its own namespace, so the sessions that share the
    parent's thread (one per chat turn, say) keep their own ledger records.
    """
    return f"{thread_id}/{checkpoint_ns}" if checkpoint_ns else thread_id


def _address(state: AtlasState) -> dict[str, Any]:
    """Where the session's checkpoints are: the thread and the graph's namespace."""
    session_id = state.get("session_id", "")
    namespace = state.get("graph_namespace") or ""
    thread_id = session_id.removesuffix(f"/{namespace}") if namespace else session_id
    return {"thread_id": thread_id, "checkpoint_ns": namespace, "checkpoint_id": None}


async def arecord_start(store: BaseStore | None, state: AtlasState, *, lane: str | None) -> None:
    """Write the ``running`` record once the lane is decided (no-op without a store).

    ``state`` is the session after triage: id, task, metadata, start time and fingerprint.
    """
    if store is None:
        return
    session_id = state.get("session_id", "")
    record = {
        "version": LEDGER_VERSION,
        "session_id": session_id,
        **_address(state),
        "task": state.get("task", ""),
        "status": "running",
        "lane": lane,
        "execution_mode": lane,
        "fingerprint": state.get("fingerprint"),
        "started_at": state.get("started_at") or utc_now(),
        "updated_at": utc_now(),
        "completed_at": None,
        "review_status": "pending",
        "review_notes": None,
        "session_metadata": state.get("session_metadata", {}),
    }
    await store.aput(NAMESPACE, session_id, _plain(record), index=False)


async def arecord_end(
    store: BaseStore | None,
    state: AtlasState,
    *,
    status: str,
    completed_at: str,
    checkpoint_id: str | None = None,
    review: dict[str, Any] | None = None,
) -> None:
    """Write the final record with the data an export needs (no-op without a store).

    ``review`` carries a review decision already on the record (see
    ``arecord_final_checkpoint``); without it the review fields come from state.
    """
    if store is None:
        return
    session_id = state.get("session_id", "")
    record: dict[str, Any] = {
        "version": LEDGER_VERSION,
        "session_id": session_id,
        **_address(state),
        "checkpoint_id": checkpoint_id,
        "task": state.get("task", ""),
        "status": status,
        "lane": state.get("lane"),
        "execution_mode": state.get("lane"),
        "started_at": state.get("started_at"),
        "updated_at": utc_now(),
        "completed_at": completed_at,
        "review_status": state.get("review_status") or "pending",
        "review_notes": state.get("review_notes"),
        "reward_summary": reward_summary(state.get("reward")),
        "usage": state.get("usage", {}),
    }
    for key in EXPORT_KEYS:
        record[key] = state.get(key)
    if review:
        record.update(review)
    await store.aput(NAMESPACE, session_id, _plain(record), index=False)


async def arecord_final_checkpoint(
    store: BaseStore, values: AtlasState, checkpoint_id: str | None
) -> bool:
    """Rewrite a finished session's end record from its final state, with ``checkpoint_id``.

    The final state also holds finalize's own events in ``trajectory_events``. The record is
    rebuilt from ``values`` as finalize built it, except for a review decision made on this
    same outcome since finalize wrote it (same ``completed_at``), which is kept: a person may
    approve a session in that window. Unfinished states are left alone. Returns whether it
    wrote.
    """
    status = values.get("status")
    if status not in ("succeeded", "failed"):
        return False
    completed_at = values.get("completed_at") or utc_now()
    current = await aget_record(store, values.get("session_id", ""))
    review = None
    if current and current.get("reviewed_at") and current.get("completed_at") == completed_at:
        review = {key: current.get(key) for key in REVIEW_FIELDS}
    await arecord_end(
        store, values, status=status, completed_at=completed_at, checkpoint_id=checkpoint_id,
        review=review,
    )  # fmt: skip
    return True


async def arecord_reopened(store: BaseStore, session_id: str) -> bool:
    """Mark a finished session ``running`` again (a fork made its thread unfinished).

    The end data stays until the fork finishes and replaces it; ``completed_at`` and
    ``checkpoint_id`` are cleared so listings, prune and exports do not treat the live
    thread as finished. Returns whether a finished record was reopened.
    """
    record = await aget_record(store, session_id)
    if record is None or record.get("status") not in ("succeeded", "failed"):
        return False
    record.update(status="running", completed_at=None, checkpoint_id=None, updated_at=utc_now())
    await store.aput(NAMESPACE, session_id, record, index=False)
    return True


async def aget_record(store: BaseStore, session_id: str) -> dict[str, Any] | None:
    """The ledger record of one session, if any."""
    item = await store.aget(NAMESPACE, session_id)
    return dict(item.value) if item else None


async def alist_records(store: BaseStore, *, limit: int = 50) -> list[dict[str, Any]]:
    """Ledger records, most recently updated first."""
    records = [record async for record in _search(store)]
    records.sort(key=lambda record: record.get("updated_at") or "", reverse=True)
    return records[:limit]


async def afinished_records(store: BaseStore, *, page: int = 200) -> AsyncIterator[dict[str, Any]]:
    """Records of finished sessions (``succeeded`` or ``failed``), a page at a time.

    The Store filters by status, so unfinished sessions are never read.
    """
    for status in ("succeeded", "failed"):
        async for record in _search(store, filter={"status": status}, page=page):
            yield record


async def _search(
    store: BaseStore, *, filter: dict[str, Any] | None = None, page: int = 200
) -> AsyncIterator[dict[str, Any]]:
    """Every ledger record matching ``filter``, read a page at a time."""
    offset = 0
    while True:
        items = await store.asearch(NAMESPACE, filter=filter, limit=page, offset=offset)
        for item in items:
            yield dict(item.value)
        if len(items) < page:
            return
        offset += page


async def adelete_record(store: BaseStore, session_id: str) -> None:
    """Remove one session's record."""
    await store.adelete(NAMESPACE, session_id)


# Renamed when async functions took the ``a`` prefix; removed in the next release.
record_start = renamed(arecord_start, "record_start")
record_end = renamed(arecord_end, "record_end")
record_final_checkpoint = renamed(arecord_final_checkpoint, "record_final_checkpoint")
record_reopened = renamed(arecord_reopened, "record_reopened")
get_record = renamed(aget_record, "get_record")
list_records = renamed(alist_records, "list_records")
finished_records = renamed(afinished_records, "finished_records")
delete_record = renamed(adelete_record, "delete_record")
