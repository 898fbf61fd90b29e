"""Teacher plan reviews reused across sessions, kept in the LangGraph Store.

Only the teacher's verdict is cached, never the node's output: each session still turns the
verdict into its own plan, routes its own steps, counts no tokens for a reused verdict and
emits its own ``review_verdict`` event (marked ``cached``). A node cache (``CachePolicy``)
cannot give that, because it replays the node's writes, routing included, from the session
that filled it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from langgraph.store.base import BaseStore

from atlas_graph.state import AtlasState

NAMESPACE = ("atlas", "plan_reviews")


def review_cache_key(state: AtlasState) -> str:
    """Reviews are reused for the same task, lane, draft, redraft count, persona and playbook.

    The pamphlet digests are named on their own so a playbook change is a new key even for a
    caller that builds the persona context differently.
    """
    material = json.dumps(
        [
            state.get("task"),
            state.get("lane"),
            state.get("plan_draft"),
            state.get("plan_drafts"),
            state.get("persona_context"),
            (state.get("applied_student_learning") or {}).get("digest"),
            (state.get("applied_teacher_learning") or {}).get("digest"),
        ],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()


async def acached_review(store: BaseStore | None, key: str, ttl_seconds: int) -> Any:
    """The verdict stored under ``key`` if it is younger than ``ttl_seconds``, else None."""
    if store is None or ttl_seconds <= 0:
        return None
    item = await store.aget(NAMESPACE, key, refresh_ttl=False)
    if item is None:
        return None
    age = (datetime.now(UTC) - _aware(item.updated_at)).total_seconds()
    return item.value.get("verdict") if age <= ttl_seconds else None


async def aremember_review(
    store: BaseStore | None, key: str, ttl_seconds: int, verdict: dict[str, Any]
) -> None:
    """Keep a fresh teacher verdict for later sessions (a no-op without a store).

    A store that supports TTL (SQLite, PostgreSQL) gets the entry's lifetime, so its TTL
    sweeper deletes expired reviews; others keep them, and ``acached_review`` ignores them.
    """
    if store is None or ttl_seconds <= 0:
        return
    try:  # ``supports_ttl`` is not reliable: AsyncSqliteStore says False and supports it
        await store.aput(NAMESPACE, key, {"verdict": verdict}, ttl=ttl_seconds / 60)
    except NotImplementedError:
        await store.aput(NAMESPACE, key, {"verdict": verdict})


def _aware(moment: datetime) -> datetime:
    # stores return naive UTC timestamps on some backends
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
