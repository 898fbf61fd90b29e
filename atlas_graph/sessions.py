"""Work with stored sessions: list, inspect, time-travel, fork, resume, approve, prune.

Every function opens the storage its config names (default: the embedded SQLite file under
``.atlas_graph/``), or uses an open ``Persistence`` passed in. Sessions are LangGraph
threads: inspection reads checkpoints through the compiled graph (``aget_state``,
``aget_state_history``), a fork is ``aupdate_state`` on an earlier checkpoint, and resuming
runs the thread again from its latest checkpoint. These are the operations behind the
``atlas-graph sessions | show | history | fork | resume | approve | prune`` commands. Each is
async (``alist_sessions``, ...) and has a synchronous twin without the ``a`` (``list_sessions``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph, StateGraph
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from pydantic import JsonValue

from atlas_graph.agents import AgentLike
from atlas_graph.config import AtlasConfig, load_config
from atlas_graph.deprecation import renamed
from atlas_graph.errors import (
    AtlasRunError,
    AtlasUserError,
    SessionNotFoundError,
    SessionStateError,
)
from atlas_graph.graph import GRAPH_NAME, create_atlas_graph
from atlas_graph.nodes.approval import check_decision
from atlas_graph.result import Result
from atlas_graph.runner import AtlasGraph, ConfigSource, ResumeValue, arun, run_sync
from atlas_graph.state import AtlasState, check_thread_id, check_update
from atlas_graph.storage.claims import claims_for
from atlas_graph.storage.ledger import (
    adelete_record,
    afinished_records,
    aget_record,
    alist_records,
    arecord_reopened,
)
from atlas_graph.storage.persistence import Persistence, aopen_persistence, resolve_backend
from atlas_graph.storage.threads import finished, task_names, thread_status
from atlas_graph.telemetry.events import AtlasEvent
from atlas_graph.telemetry.publishers import AnyPublisher

# Nodes whose successors follow from graph edges, so a fork after them knows what runs next.
# (Step branches route with Command/Send, which a state update cannot replay.)
_FORKABLE_AFTER = frozenset({"triage", "probe", "plan", "review", "synthesize", "reward"})


@dataclass
class PruneReport:
    """What ``aprune_sessions`` deleted."""

    threads: list[str] = field(default_factory=list)
    ledger_records: list[str] = field(default_factory=list)


@asynccontextmanager
async def aopen_session_storage(config: ConfigSource | None = None) -> AsyncIterator[Persistence]:
    """The storage ``config`` names, opened to read, review or export stored sessions.

    No graph is built, so the config's models and agent need no keys. A SQLite file that does
    not exist yet reads as empty storage instead of being created.

    Raises:
        StorageError: The storage cannot be opened.
    """
    atlas_config = load_config(config if config is not None else {})
    if _no_sqlite_file_yet(atlas_config):
        yield Persistence(InMemorySaver(), InMemoryStore(), "memory")
        return
    async with aopen_persistence(atlas_config.storage) as opened:
        yield opened


@asynccontextmanager
async def _opened(
    config: ConfigSource | None, persistence: Persistence | None
) -> AsyncIterator[tuple[AtlasConfig, Persistence, CompiledStateGraph[Any, Any, Any, Any]]]:
    atlas_config = load_config(config if config is not None else {})
    graph_builder = create_atlas_graph(atlas_config)
    if persistence is not None:
        yield atlas_config, persistence, _compile(graph_builder, persistence)
        return
    async with aopen_session_storage(atlas_config) as opened:
        yield atlas_config, opened, _compile(graph_builder, opened)


def _no_sqlite_file_yet(config: AtlasConfig) -> bool:
    backend, _url = resolve_backend(config.storage)
    return backend == "sqlite" and not Path(config.storage.path).exists()


def _compile(
    builder: StateGraph[Any, Any, Any, Any], persistence: Persistence
) -> CompiledStateGraph[Any, Any, Any, Any]:
    return builder.compile(
        checkpointer=persistence.checkpointer, store=persistence.store, name=GRAPH_NAME
    )


def _thread(thread_id: str, checkpoint_id: str | None = None) -> RunnableConfig:
    configurable = {"thread_id": check_thread_id(thread_id)}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


def _checkpoint_id(snapshot: Any) -> str | None:
    return (snapshot.config or {}).get("configurable", {}).get("checkpoint_id")


async def _snapshot(graph: Any, thread_id: str) -> Any:
    snapshot = await graph.aget_state(_thread(thread_id))
    if not snapshot.values and _checkpoint_id(snapshot) is None:
        raise SessionNotFoundError(thread_id)
    return snapshot


def _parse_time(timestamp: str | None) -> datetime | None:
    """An ISO 8601 timestamp from state or the ledger; ``None`` when missing or malformed."""
    if not timestamp:
        return None
    try:
        return datetime.fromisoformat(timestamp)
    except ValueError:
        return None


def _age(timestamp: str | None, now: datetime) -> float | None:
    moment = _parse_time(timestamp)
    return None if moment is None else (now - moment).total_seconds()


async def alist_sessions(
    config: ConfigSource | None = None, *, limit: int = 50, persistence: Persistence | None = None
) -> list[dict[str, Any]]:
    """Sessions from the ledger, newest first: id, status, lane, reward, task and age.

    A ledger ``running`` record is shown as ``waiting`` when its thread waits for a
    decision (plan approval), as ``interrupted`` when its last tasks saved their results but
    the checkpoint after them is missing (resumable), else as ``running`` (live, or stopped
    and resumable).
    """
    now = datetime.now(UTC)
    async with _opened(config, persistence) as (_, opened, graph):
        if opened.store is None:
            return []
        rows: list[dict[str, Any]] = []
        for record in await alist_records(opened.store, limit=limit):
            status = record.get("status")
            if status == "running":
                snapshot = await graph.aget_state(_thread(record["session_id"]))
                if snapshot.interrupts:
                    status = "waiting"
                elif thread_status(snapshot) == "interrupted":
                    status = "interrupted"
            summary = record.get("reward_summary") or {}
            rows.append({
                "session_id": record["session_id"], "status": status, "lane": record.get("lane"),
                "reward": summary.get("score"), "task": record.get("task", ""),
                "review_status": record.get("review_status"),
                "started_at": record.get("started_at"), "completed_at": record.get("completed_at"),
                "age_seconds": _age(record.get("started_at"), now),
            })  # fmt: skip
        return rows


async def ashow_session(
    thread_id: str, config: ConfigSource | None = None, *, persistence: Persistence | None = None
) -> dict[str, Any]:
    """The latest state of one session: values, pending nodes, errors and interrupts.

    A finished session whose checkpoints were pruned is shown from its ledger record
    (``checkpoints_pruned`` is then true), so every session that ``alist_sessions`` lists
    can be shown.

    Raises:
        SessionNotFoundError: Neither checkpoints nor a ledger record for the thread here.
    """
    async with _opened(config, persistence) as (_, opened, graph):
        ledger = await aget_record(opened.store, thread_id) if opened.store else None
        try:
            snapshot = await _snapshot(graph, thread_id)
        except SessionNotFoundError:
            if ledger is None:
                raise
            return _from_ledger(thread_id, ledger)
    return {
        "session_id": thread_id,
        "checkpoint_id": _checkpoint_id(snapshot),
        "next": list(snapshot.next),
        "finished": finished(snapshot),
        "thread_status": thread_status(snapshot),
        "tasks": task_names(snapshot),
        "errors": [
            {"node": task.name, "error": task.error} for task in snapshot.tasks if task.error
        ],
        "interrupts": [interrupt.value for interrupt in snapshot.interrupts],
        "values": snapshot.values,
        "ledger": ledger,
        "checkpoints_pruned": False,
    }


def _from_ledger(thread_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """A session view built from the ledger alone (its checkpoints are gone)."""
    values = {key: record[key] for key in AtlasState.__annotations__ if key in record}
    return {
        "session_id": thread_id,
        "checkpoint_id": record.get("checkpoint_id"),
        "next": [],
        "finished": record.get("status") in ("succeeded", "failed"),
        "thread_status": "finished" if record.get("status") in ("succeeded", "failed") else "new",
        "tasks": [],
        "errors": [],
        "interrupts": [],
        "values": values,
        "ledger": record,
        "checkpoints_pruned": True,
    }


async def asession_history(
    thread_id: str,
    config: ConfigSource | None = None,
    *,
    limit: int | None = None,
    persistence: Persistence | None = None,
) -> list[dict[str, Any]]:
    """Checkpoints of one session, newest first, with the step and the node(s) that wrote it.

    Raises:
        SessionNotFoundError: The thread has no checkpoints here.
    """
    async with _opened(config, persistence) as (_, _opened_storage, graph):
        snapshots = [item async for item in graph.aget_state_history(_thread(thread_id))]
    if not snapshots:
        raise SessionNotFoundError(thread_id)
    rows: list[dict[str, Any]] = []
    for index, snapshot in enumerate(snapshots):
        parent = snapshots[index + 1] if index + 1 < len(snapshots) else None
        metadata = snapshot.metadata or {}
        rows.append({
            "checkpoint_id": _checkpoint_id(snapshot),
            "parent_id": _checkpoint_id(parent) if parent else None,
            "step": metadata.get("step"),
            "source": metadata.get("source"),
            "node": sorted({task.name for task in parent.tasks}) if parent else [],
            "next": list(snapshot.next),
            "created_at": snapshot.created_at,
        })  # fmt: skip
    return rows[:limit] if limit else rows


def guidance_update(text: str) -> dict[str, Any]:
    """State update that puts a person's guidance in front of the student's next plan."""
    return {
        "review": {"approved": False, "concerns": [text], "issues": [], "revised": False},
        "plan_notes": [f"forked with guidance: {text}"],
    }


async def afork_session(
    thread_id: str,
    checkpoint_id: str,
    *,
    config: ConfigSource | None = None,
    values: Mapping[str, Any] | None = None,
    guidance: str | None = None,
    persistence: Persistence | None = None,
) -> str:
    """Branch the session at ``checkpoint_id`` with changed values; returns the new checkpoint.

    The fork becomes the thread's latest checkpoint (the old branch stays in its history);
    ``aresume_session`` then runs it. ``guidance`` is shown to the student as the concern to
    address in its next plan, so fork at a checkpoint before ``plan`` runs.

    Raises:
        SessionNotFoundError: No such thread or checkpoint.
        SessionStateError: The checkpoint was written inside a step branch.
        AtlasInputError: ``values`` names keys the state does not have or identity keys
            (``session_id``), or a value is not finite JSON of its key's type.
    """
    update: dict[str, Any] = dict(values or {})
    check_update(update)  # state keys, not identity keys, finite JSON of each key's type
    if guidance:
        update = {**guidance_update(guidance), **update}
    async with (
        _opened(config, persistence) as (_, opened, graph),
        claims_for(opened.checkpointer).aclaim(thread_id),  # not while it runs or is pruned
    ):
        history = [item async for item in graph.aget_state_history(_thread(thread_id))]
        ids = [_checkpoint_id(item) for item in history]
        if checkpoint_id not in ids:
            raise SessionNotFoundError(thread_id, checkpoint_id=checkpoint_id)
        # The node that produced the checkpoint: what runs next follows from its edges.
        position = ids.index(checkpoint_id)
        names = [task.name for task in history[position + 1].tasks] if position + 1 < len(
            ids) else []  # fmt: skip
        writer = names[0] if len(names) == 1 else None
        if writer not in _FORKABLE_AFTER:
            raise SessionStateError(
                thread_id,
                f"was written by {writer or 'several nodes'} inside a step branch; fork at a "
                "checkpoint written by " + ", ".join(sorted(_FORKABLE_AFTER)),
                checkpoint_id=checkpoint_id,
            )
        branch_point = _thread(thread_id, checkpoint_id)
        branch_point["configurable"]["checkpoint_ns"] = ""
        # a node that routes the session has a conditional edge: it routes the forked values
        new_config = await graph.aupdate_state(branch_point, update, as_node=writer)
        if opened.store is not None:
            await arecord_reopened(opened.store, thread_id)  # the thread is unfinished again
    return str(new_config["configurable"]["checkpoint_id"])


async def aresume_session(
    thread_id: str,
    *,
    config: ConfigSource | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
    agent: AgentLike | None = None,
    persistence: Persistence | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    store: BaseStore | None = None,
    graph: AtlasGraph | None = None,
    stream_progress: bool | None = None,
    on_event: Callable[[AtlasEvent], None] | None = None,
    publishers: Sequence[AnyPublisher] = (),
    resume: ResumeValue | None = None,
) -> Result:
    """Continue an unfinished session from its latest checkpoint (``arun(None, ...)``).

    The keyword arguments are those of ``arun``: ``resume`` answers the ``interrupt()`` the
    session waits on (one raised by the agent, a tool or the plan approval).
    """
    return await arun(
        None, config=config, thread_id=thread_id, models=models, agent=agent,
        persistence=persistence, checkpointer=checkpointer, store=store, graph=graph,
        stream_progress=stream_progress, on_event=on_event, publishers=publishers,
        resume=resume,
    )  # fmt: skip


async def aapprove_plan(
    thread_id: str,
    *,
    action: str = "approve",
    plan: JsonValue = None,
    notes: str | None = None,
    config: ConfigSource | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
    agent: AgentLike | None = None,
    persistence: Persistence | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    store: BaseStore | None = None,
    graph: AtlasGraph | None = None,
    stream_progress: bool | None = None,
    on_event: Callable[[AtlasEvent], None] | None = None,
    publishers: Sequence[AnyPublisher] = (),
) -> Result:
    """Answer a pending plan approval and run on: approve, edit (with ``plan``) or reject.

    The other keyword arguments are those of ``arun``.

    Raises:
        ApprovalError: The decision is malformed (nothing is resumed).
        SessionStateError: The session does not wait for a decision (nothing is resumed).
        AtlasRunError: The session stopped again; it can be resumed.
    """
    decision: dict[str, Any] = {"action": action}
    if plan is not None:
        decision["plan"] = plan
    if notes:
        decision["notes"] = notes
    check_decision(decision)
    return await arun(
        None, config=config, thread_id=thread_id, models=models, agent=agent,
        persistence=persistence, checkpointer=checkpointer, store=store, graph=graph,
        stream_progress=stream_progress, on_event=on_event, publishers=publishers,
        resume=decision,
    )  # fmt: skip


async def aprune_sessions(
    older_than_days: float,
    *,
    config: ConfigSource | None = None,
    ledger: bool = False,
    unrecorded: bool = False,
    persistence: Persistence | None = None,
) -> PruneReport:
    """Delete the checkpoints of finished sessions that ended more than N days ago.

    The ledger names the candidates: records of finished sessions whose ``completed_at`` is
    past the cutoff (the Store filters by status, so running sessions are not read). Each
    candidate's latest checkpoint is checked before deleting, so a finished session forked
    back into an unfinished one is kept; so is its ledger record. A thread that is being run,
    resumed or forked is claimed (see ``storage/claims.py``) and skipped, so a fork is never
    deleted half-written. Ledger records stay (exports read them) unless
    ``ledger`` is true.

    ``unrecorded`` also scans every checkpoint for threads that have no ledger record (graphs
    compiled without a store); that reads the whole checkpoint table, so it is opt-in.
    """
    if older_than_days < 0:
        raise AtlasUserError(
            "--older-than must be zero or more days", older_than_days=older_than_days
        )
    cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
    report = PruneReport()
    async with _opened(config, persistence) as (_, opened, graph):
        if opened.store is not None:
            expired = [
                record["session_id"]
                async for record in afinished_records(opened.store)
                if _ended_before(record.get("completed_at"), cutoff)
            ]
            for thread_id in expired:
                async with claims_for(opened.checkpointer).atry_claim(thread_id) as free:
                    if not free:
                        continue  # being run, resumed or forked right now
                    deleted = await _delete_if_finished(graph, opened, thread_id, cutoff=None)
                    if deleted:
                        report.threads.append(thread_id)
                    if ledger and (deleted or await _no_checkpoints(graph, thread_id)):
                        await adelete_record(opened.store, thread_id)
                        report.ledger_records.append(thread_id)
        if unrecorded:
            recorded = set(report.threads)
            threads: dict[str, None] = {}
            async for item in opened.checkpointer.alist(None):
                threads[item.config["configurable"]["thread_id"]] = None
            for thread_id in threads:
                if thread_id in recorded:
                    continue
                if opened.store is not None and await aget_record(opened.store, thread_id):
                    continue  # the ledger decided about this one
                async with claims_for(opened.checkpointer).atry_claim(thread_id) as free:
                    if free and await _delete_if_finished(graph, opened, thread_id, cutoff=cutoff):
                        report.threads.append(thread_id)
    return report


async def _no_checkpoints(graph: Any, thread_id: str) -> bool:
    """Whether the thread has no checkpoints (pruned before): its record can go too."""
    return _checkpoint_id(await graph.aget_state(_thread(thread_id))) is None


def _ended_before(timestamp: str | None, cutoff: datetime) -> bool:
    moment = _parse_time(timestamp)
    return moment is not None and moment <= cutoff


async def _delete_if_finished(
    graph: Any, opened: Persistence, thread_id: str, *, cutoff: datetime | None
) -> bool:
    """Delete a thread whose latest checkpoint is finished (and ended before ``cutoff``)."""
    snapshot = await graph.aget_state(_thread(thread_id))
    if _checkpoint_id(snapshot) is None or not finished(snapshot):
        return False  # nothing left, or unfinished (e.g. forked after it finished)
    ended = snapshot.values.get("completed_at") or snapshot.created_at
    if cutoff is not None and not _ended_before(ended, cutoff):
        return False
    await opened.checkpointer.adelete_thread(thread_id)
    return True


# --------------------------------------------------------------------------- sync forms
# The same operations for synchronous code, like ``run`` for ``arun``: each opens its own
# storage on a private event loop (so it also works inside a notebook's running loop). They take
# the async form's arguments, but no open ``Persistence``: its async pool belongs to the loop
# that opened it.


def list_sessions(
    config: ConfigSource | None = None, *, limit: int = 50, persistence: Persistence | None = None
) -> list[dict[str, Any]]:
    """Synchronous ``alist_sessions``."""
    _no_persistence("list_sessions", persistence)
    return run_sync(alist_sessions(config, limit=limit))


def show_session(
    thread_id: str, config: ConfigSource | None = None, *, persistence: Persistence | None = None
) -> dict[str, Any]:
    """Synchronous ``ashow_session``."""
    _no_persistence("show_session", persistence)
    return run_sync(ashow_session(thread_id, config))


def session_history(
    thread_id: str,
    config: ConfigSource | None = None,
    *,
    limit: int | None = None,
    persistence: Persistence | None = None,
) -> list[dict[str, Any]]:
    """Synchronous ``asession_history``."""
    _no_persistence("session_history", persistence)
    return run_sync(asession_history(thread_id, config, limit=limit))


def fork_session(
    thread_id: str,
    checkpoint_id: str,
    *,
    config: ConfigSource | None = None,
    values: Mapping[str, Any] | None = None,
    guidance: str | None = None,
    persistence: Persistence | None = None,
) -> str:
    """Synchronous ``afork_session``."""
    _no_persistence("fork_session", persistence)
    return run_sync(
        afork_session(thread_id, checkpoint_id, config=config, values=values, guidance=guidance)
    )


def resume_session(
    thread_id: str,
    *,
    config: ConfigSource | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
    agent: AgentLike | None = None,
    persistence: Persistence | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    store: BaseStore | None = None,
    graph: AtlasGraph | None = None,
    stream_progress: bool | None = None,
    on_event: Callable[[AtlasEvent], None] | None = None,
    publishers: Sequence[AnyPublisher] = (),
    resume: ResumeValue | None = None,
) -> Result:
    """Synchronous ``aresume_session``."""
    _no_persistence("resume_session", persistence)
    return run_sync(aresume_session(
        thread_id, config=config, models=models, agent=agent, checkpointer=checkpointer,
        store=store, graph=graph, stream_progress=stream_progress, on_event=on_event,
        publishers=publishers, resume=resume,
    ))  # fmt: skip


def approve_plan(
    thread_id: str,
    *,
    action: str = "approve",
    plan: JsonValue = None,
    notes: str | None = None,
    config: ConfigSource | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
    agent: AgentLike | None = None,
    persistence: Persistence | None = None,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    store: BaseStore | None = None,
    graph: AtlasGraph | None = None,
    stream_progress: bool | None = None,
    on_event: Callable[[AtlasEvent], None] | None = None,
    publishers: Sequence[AnyPublisher] = (),
) -> Result:
    """Synchronous ``aapprove_plan``."""
    _no_persistence("approve_plan", persistence)
    return run_sync(aapprove_plan(
        thread_id, action=action, plan=plan, notes=notes, config=config, models=models,
        agent=agent, checkpointer=checkpointer, store=store, graph=graph,
        stream_progress=stream_progress, on_event=on_event, publishers=publishers,
    ))  # fmt: skip


def prune_sessions(
    older_than_days: float,
    *,
    config: ConfigSource | None = None,
    ledger: bool = False,
    unrecorded: bool = False,
    persistence: Persistence | None = None,
) -> PruneReport:
    """Synchronous ``aprune_sessions``."""
    _no_persistence("prune_sessions", persistence)
    return run_sync(
        aprune_sessions(older_than_days, config=config, ledger=ledger, unrecorded=unrecorded)
    )


def _no_persistence(name: str, persistence: Persistence | None) -> None:
    if persistence is not None:
        raise TypeError(
            f"{name} opens its own storage from config; use the async function a{name} "
            "to share an open Persistence"
        )


# --------------------------------------------------------------------------- old names
# Renamed when async functions took the ``a`` prefix; removed in the next release.

list_sessions_sync = renamed(list_sessions, "list_sessions_sync")
show_session_sync = renamed(show_session, "show_session_sync")
session_history_sync = renamed(session_history, "session_history_sync")
fork_session_sync = renamed(fork_session, "fork_session_sync")
resume_session_sync = renamed(resume_session, "resume_session_sync")
approve_plan_sync = renamed(approve_plan, "approve_plan_sync")
prune_sessions_sync = renamed(prune_sessions, "prune_sessions_sync")
open_session_storage = renamed(aopen_session_storage, "open_session_storage")

__all__ = [
    "AtlasRunError",
    "PruneReport",
    "SessionNotFoundError",
    "SessionStateError",
    "aapprove_plan",
    "afork_session",
    "alist_sessions",
    "aopen_session_storage",
    "approve_plan",
    "aprune_sessions",
    "aresume_session",
    "asession_history",
    "ashow_session",
    "fork_session",
    "list_sessions",
    "prune_sessions",
    "resume_session",
    "session_history",
    "show_session",
]
