"""Review decisions on the session ledger: which finished sessions may become training data.

Every session starts ``pending`` (drift detection may also put one back there with a note). A
person then approves it or quarantines it; ``export`` filters on the result, and with
``runtime_safety.review.require_approval`` only approved sessions are exported by default.

Transitions: a finished session (``succeeded`` or ``failed``) can move between ``pending``,
``approved`` and ``quarantined`` in any direction; repeating the current status only updates
the note. A running session is refused, since its outcome is not known yet. A decision is
about one outcome: when a fork runs the session again, its new end record starts ``pending``.
The runner's rewrite of the end record right after a run keeps a decision made in between
(see ``ledger.arecord_final_checkpoint``).
"""

from __future__ import annotations

from typing import Any

from langgraph.store.base import BaseStore

from atlas_graph.errors import ReviewError
from atlas_graph.export import REVIEW_STATUSES
from atlas_graph.storage.ledger import NAMESPACE
from atlas_graph.telemetry.events import utc_now

FINISHED = ("succeeded", "failed")


def reviewed(record: dict[str, Any], status: str, note: str | None) -> dict[str, Any]:
    """The record with the decision applied (pure; checks the transition).

    ``note`` ``None`` keeps the current note (e.g. the drift finding that asked for review).

    Raises:
        ReviewError: Unknown status, or the session has not finished.
    """
    if status not in REVIEW_STATUSES:
        raise ReviewError(
            f"unknown review status '{status}'; use one of {', '.join(REVIEW_STATUSES)}",
            status=status,
        )
    session_id = record.get("session_id", "?")
    if record.get("status") not in FINISHED:
        raise ReviewError(
            f"session {session_id} is {record.get('status') or 'unfinished'}; review it once it "
            "has finished",
            session_id=session_id,
        )
    now = utc_now()
    previous = record.get("review_status") or "pending"
    history = [*record.get("review_history", []), {"from": previous, "to": status, "note": note,
               "at": now}]  # fmt: skip
    return {
        **record,
        "review_status": status,
        "review_notes": record.get("review_notes") if note is None else note,
        "reviewed_at": now,
        "review_history": history,
        "updated_at": now,
    }


async def aset_review_status(
    store: BaseStore, session_id: str, status: str, *, note: str | None = None
) -> dict[str, Any]:
    """Record a review decision on a session's ledger record; returns the updated record.

    Raises:
        ReviewError: No such session in this store, unknown status, or not finished.
    """
    item = await store.aget(NAMESPACE, session_id)
    if item is None:
        raise ReviewError(_unknown(session_id), session_id=session_id)
    record = reviewed(dict(item.value), status, note)
    await store.aput(NAMESPACE, session_id, record, index=False)
    return record


def set_review_status(
    store: BaseStore, session_id: str, status: str, *, note: str | None = None
) -> dict[str, Any]:
    """Synchronous ``aset_review_status`` for sync stores (``SqliteStore``, ``PostgresStore``)."""
    item = store.get(NAMESPACE, session_id)
    if item is None:
        raise ReviewError(_unknown(session_id), session_id=session_id)
    record = reviewed(dict(item.value), status, note)
    store.put(NAMESPACE, session_id, record, index=False)
    return record


async def alist_reviews(
    store: BaseStore,
    *,
    statuses: tuple[str, ...] | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Finished sessions with their review state, most recently updated first.

    ``statuses`` limits the review statuses listed (default: all).
    """
    if limit < 1:
        raise ReviewError(f"limit must be 1 or more, got {limit}", limit=limit)
    if statuses is not None:
        unknown = [status for status in statuses if status not in REVIEW_STATUSES]
        if unknown:
            raise ReviewError(
                f"unknown review status '{', '.join(unknown)}'; use one of "
                + ", ".join(REVIEW_STATUSES),
                status=", ".join(unknown),
            )
    rows: list[dict[str, Any]] = []
    # The Store returns the most recently updated first, so the newest ``limit`` of each
    # status pair contain the newest ``limit`` overall.
    for review in statuses or (None,):
        for status in FINISHED:
            store_filter: dict[str, Any] = {"status": status}
            if review is not None:
                store_filter["review_status"] = review
            items = await store.asearch(NAMESPACE, filter=store_filter, limit=limit)
            rows.extend(_row(item.value) for item in items)
    rows.sort(key=lambda row: row["updated_at"] or "", reverse=True)
    return rows[:limit]


async def areview_sessions(store: BaseStore, *, limit: int = 50) -> dict[str, list[dict[str, Any]]]:
    """Atlas's ``review sessions``: finished sessions grouped by review status, with drift.

    Every review status is a key (``pending`` first, as it is what needs a person), each
    holding at most ``limit`` of its most recently updated sessions.
    """
    order = ("pending", *(status for status in REVIEW_STATUSES if status != "pending"))
    return {status: await alist_reviews(store, statuses=(status,), limit=limit) for status in order}


def _row(record: dict[str, Any]) -> dict[str, Any]:
    summary = record.get("reward_summary") or {}
    drift = (record.get("adaptive_summary") or {}).get("drift")
    return {
        "drift": drift,
        "drift_alert": bool(drift and drift.get("alert")),
        "session_id": record.get("session_id"),
        "status": record.get("status"),
        "review_status": record.get("review_status") or "pending",
        "review_notes": record.get("review_notes"),
        "lane": record.get("lane"),
        "reward": summary.get("score"),
        "task": record.get("task", ""),
        "completed_at": record.get("completed_at"),
        "updated_at": record.get("updated_at"),
    }


def _unknown(session_id: str) -> str:
    return (
        f"no session {session_id} in the session ledger of this storage; "
        "list them with `atlas-graph review list`"
    )
