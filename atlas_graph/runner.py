"""``run`` and ``arun``: one call that wires config, graph, persistence and the console.

``arun`` builds and compiles a graph for its one session. A host that runs many sessions opens
the graph once with ``aopen_graph`` and passes it as ``arun(..., graph=graph)``: building and
compiling cost several times a paired session's own framework time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore
from langgraph.types import Command
from pydantic import JsonValue

from atlas_graph.agents import AgentLike, agent_from_config
from atlas_graph.agents.http import HttpAgent
from atlas_graph.agents.tools import ToolLike
from atlas_graph.config import AtlasConfig, load_config
from atlas_graph.deprecation import renamed
from atlas_graph.errors import (
    AtlasError,
    AtlasRunError,
    AtlasUserError,
    SessionNotFoundError,
    SessionStateError,
    StorageFaultError,
    one_line_error,
)
from atlas_graph.graph import GRAPH_NAME, create_atlas_graph
from atlas_graph.lanes import LANES, Lane
from atlas_graph.nodes.approval import PlanDecision
from atlas_graph.redaction import langsmith_client, scrub, scrub_error
from atlas_graph.result import Result
from atlas_graph.services import AtlasContext
from atlas_graph.state import AtlasInput, AtlasOutput, AtlasState, check_input, check_thread_id
from atlas_graph.storage.claims import claims_for
from atlas_graph.storage.ledger import arecord_final_checkpoint
from atlas_graph.storage.persistence import Persistence, aopen_persistence, storage_fault
from atlas_graph.storage.threads import finished, unfinished
from atlas_graph.telemetry.events import AtlasEvent
from atlas_graph.telemetry.fanout import SessionTelemetry
from atlas_graph.telemetry.publishers import AnyPublisher

ConfigSource = AtlasConfig | Mapping[str, object] | str | Path
AtlasGraph = CompiledStateGraph[AtlasState, AtlasContext, AtlasInput, AtlasOutput]
"""A compiled Atlas graph, as ``aopen_graph`` yields it and ``arun(graph=...)`` takes it."""
ResumeValue = PlanDecision | JsonValue
"""The answer to a pending ``interrupt()``: a plan decision, or what the agent or tool asked."""
SESSION_RECURSION_LIMIT = 10_000
"""Supersteps one run may take. A session's count grows with its plan (each step's execute,
validate and guide, per retry), which is unknown when the run starts; LangGraph 1.0.1–1.0.5
default to 25, which a 12-step escalate session exceeds, so runs set it themselves."""
T = TypeVar("T")


async def arun(
    task: str | None,
    *,
    config: ConfigSource | None = None,
    mode: Lane | None = None,
    thread_id: str | None = None,
    session_metadata: Mapping[str, JsonValue] | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
    agent: AgentLike | None = None,
    tools: Sequence[ToolLike] = (),
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    stream_progress: bool | None = None,
    on_event: Callable[[AtlasEvent], None] | None = None,
    publishers: Sequence[AnyPublisher] = (),
    store: BaseStore | None = None,
    persistence: Persistence | None = None,
    resume: ResumeValue | None = None,
    graph: AtlasGraph | None = None,
) -> Result:
    """Run one supervised session, or continue an unfinished one, and return its ``Result``.

    Args:
        task: The task. ``None`` continues the unfinished session ``thread_id``.
        config: Config path, mapping or ``AtlasConfig`` (default: an empty config).
        mode: Lane for this run (``auto``, ``paired``, ``coach``, ``escalate``).
        thread_id: Session id; reuse an unfinished one to resume it. Default: a new id.
        session_metadata: Caller metadata kept with the session.
        models: Chat models by role, in place of the config's LLM settings.
        agent: The student's agent, in place of the config's ``agent`` section.
        tools: Tools the student may call besides ``agent.tools``: LangChain ``BaseTool``s
            (MCP tools from ``langchain-mcp-adapters`` too) or plain functions; each is
            offered with its own argument schema and run as ``ToolNode`` runs it.
        checkpointer: A LangGraph checkpointer; default: the one ``storage`` names.
        stream_progress: Print live progress (``None``: only when stdout is a terminal).
        on_event: Called with every event as it happens.
        publishers: ``TelemetryPublisher`` objects that receive every event of the session,
            bracketed by ``session_started`` / ``session_completed`` control events; Atlas
            SDK publishers are wrapped (``telemetry.publishers.as_publisher``).
        store: A LangGraph store for the session ledger (with ``checkpointer``).
        persistence: An open ``Persistence`` to share across runs (one pool per process);
            takes the place of ``checkpointer``, ``store`` and the config's ``storage``.
        resume: The answer to a pending interrupt, e.g. a plan approval decision
            ``{"action": "approve" | "reject" | "edit", "plan": ..., "notes": ...}``.
        graph: A graph from ``aopen_graph`` (or compiled by you with a checkpointer), reused
            across sessions; it already holds the models, agent and persistence, so those
            arguments must be left out. ``config`` then only gives ``storage.durability``.

    Raises:
        AtlasRunError: The session stopped; the message says where and how to resume.
        SessionStateError: Nothing ran: the thread is finished, or a decision was given to a
            thread that waits for none, or another runner holds the thread
            (``ThreadBusyError``, naming its pid and host).
        SessionNotFoundError: Nothing ran: no task, and no session ``thread_id`` to continue.
        ConfigError: The config is invalid.
        ModelConfigError: A model named in config cannot be built (e.g. its key is unset).
        AtlasUserError: ``mode`` is unknown, or ``graph`` came with arguments it already holds.

    The last five are ``AtlasUserError``s (``ValueError``s): the caller's input, nothing ran.
    """
    if mode is not None and mode not in LANES:
        raise AtlasUserError(
            f"unknown mode '{mode}'; expected one of {', '.join(LANES)}", mode=mode
        )
    if graph is not None:
        _check_reusable(graph, models=models, agent=agent, checkpointer=checkpointer,
                        store=store, persistence=persistence,
                        tools=list(tools) or None)  # fmt: skip
    atlas_config = load_config(config if config is not None else {})
    thread_id = check_thread_id(thread_id) if thread_id else uuid.uuid4().hex
    telemetry = _session_telemetry(thread_id, stream_progress, on_event, publishers)
    try:
        return await _arun(
            task, atlas_config, mode=mode, thread_id=thread_id, session_metadata=session_metadata,
            models=models, agent=agent, tools=tools, checkpointer=checkpointer,
            telemetry=telemetry, store=store, persistence=persistence, resume=resume, graph=graph,
        )  # fmt: skip
    except AtlasError:
        raise
    except Exception as error:  # reading or writing state before or after the run
        fault = storage_fault(error)
        if fault is None:
            raise
        raise StorageFaultError(
            f"session {thread_id}: storage failed ({fault}); run thread {thread_id} again "
            "once the storage is back",
            session_id=thread_id,
        ) from error


async def _arun(
    task: str | None,
    atlas_config: AtlasConfig,
    *,
    mode: Lane | None,
    thread_id: str,
    session_metadata: Mapping[str, JsonValue] | None,
    models: Mapping[str, BaseChatModel] | None,
    agent: AgentLike | None,
    tools: Sequence[ToolLike],
    checkpointer: BaseCheckpointSaver[Any] | None,
    telemetry: SessionTelemetry,
    store: BaseStore | None,
    persistence: Persistence | None,
    resume: ResumeValue | None,
    graph: AtlasGraph | None,
) -> Result:
    """``arun`` after its arguments are checked; storage faults leave it as they are."""
    async with AsyncExitStack() as stack:
        if graph is None:
            graph = await stack.enter_async_context(
                aopen_graph(atlas_config, models=models, agent=agent, tools=tools,
                            checkpointer=checkpointer, store=store, persistence=persistence)
            )  # fmt: skip
            kept = (
                checkpointer is not None
                or persistence is not None
                or atlas_config.storage.backend != "memory"
            )
        else:
            kept = True  # the caller's saver outlives this call
        run_config: RunnableConfig = {
            "configurable": {"thread_id": thread_id},
            "recursion_limit": SESSION_RECURSION_LIMIT,
            **_trace_labels(thread_id, mode, None),
        }
        # one runner per thread: refused here, before the state is read, if another holds it
        await stack.enter_async_context(claims_for(graph.checkpointer).aclaim(thread_id))
        tracing_client = langsmith_client()
        if tracing_client is not None:  # tracing on, through a client that scrubs
            from langchain_core.tracers.langchain import LangChainTracer

            run_config["callbacks"] = [LangChainTracer(client=tracing_client)]
        existing = await graph.aget_state(run_config)
        graph_input: AtlasInput | Command[Any] | None
        resumed = unfinished(existing)  # tasks to run, or saved results to apply
        if resumed:
            graph_input = None  # an unfinished session continues from its last checkpoint
            run_config.update(_trace_labels(thread_id, *_known_labels(existing.values)))
            if resume is not None:
                graph_input = _resume_command(existing, resume, thread_id)
        elif existing.values:
            raise SessionStateError(
                thread_id, "already finished; start a new session with another thread id"
            )
        elif task is None:
            raise SessionNotFoundError(thread_id, where="to resume")
        else:
            # scrubbed before it enters state: checkpoints, the ledger and traces never hold it
            start: AtlasInput = {
                "task": task,
                "session_metadata": scrub(dict(session_metadata or {})),
            }
            check_input(start)  # before the input checkpoint holds a task over the limit
            if mode is not None:
                start["mode"] = mode
            check_input(start)  # before the input checkpoint is written
            graph_input = start
        telemetry.start(task=task, mode=mode, resumed=resumed)
        try:
            async for stream_mode, chunk in graph.astream(
                graph_input,
                run_config,
                context=AtlasContext(),
                # events only: an "updates" stream would map every node's writes for nothing
                stream_mode=["custom"],
                durability=atlas_config.storage.durability,
            ):
                telemetry.feed(stream_mode, chunk)
        except Exception as error:
            scrub_error(error)  # its text reaches events, the console and the caller
            fault = storage_fault(error)
            # the storage may be what failed: reading where the session stopped must not fail
            stopped = None if fault else await _astate_or_none(graph, run_config)
            where = ", ".join(task.name for task in stopped.tasks) if stopped else ""
            where = where or ("its last checkpoint" if fault else "start")
            hint = (
                f"run thread {thread_id} again to continue from its last checkpoint"
                if kept
                else "nothing was kept (storage.backend is memory)"
            )
            detail = f"storage failed ({fault})" if fault else one_line_error(error)
            telemetry.failed(detail, where=where)
            telemetry.finish("failed", error=detail)
            kind = StorageFaultError if fault else AtlasRunError
            raise kind(
                f"session {thread_id} stopped in {where}: {detail}; {hint}"
                + (" once the storage is back" if fault and kept else ""),
                session_id=thread_id,
            ) from error
        except BaseException:  # cancelled or interrupted: publishers still hear the end
            telemetry.finish("failed", error="interrupted")
            raise
        snapshot = await graph.aget_state(run_config)
        checkpoint_id = snapshot.config.get("configurable", {}).get("checkpoint_id")
        if graph.store is not None and finished(snapshot):
            # finalize cannot know the id of the checkpoint its own write creates
            final = cast(AtlasState, snapshot.values)  # the state of an Atlas graph
            await arecord_final_checkpoint(graph.store, final, checkpoint_id)
        telemetry.finish(snapshot.values.get("status", "failed"))
    result = Result.from_state(snapshot.values, checkpoint_id=checkpoint_id)
    return _with_interrupt(result, snapshot)


@asynccontextmanager
async def aopen_graph(
    config: ConfigSource | None = None,
    *,
    models: Mapping[str, BaseChatModel] | None = None,
    agent: AgentLike | None = None,
    tools: Sequence[ToolLike] = (),
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    store: BaseStore | None = None,
    persistence: Persistence | None = None,
) -> AsyncIterator[AtlasGraph]:
    """The graph ``arun`` runs, compiled once with its storage, for many ``arun(graph=...)``.

    Storage the config names is opened here and closed on exit, with an agent built from the
    config's ``agent`` section (an HTTP agent's pooled client belongs to this event loop).
    Arguments are those of ``arun``; a caller's agent, saver, store or persistence stays theirs.

    Raises:
        ConfigError: The config is invalid.
        ModelConfigError: A model named in config cannot be built.
        StorageError: The storage cannot be opened.
    """
    atlas_config = load_config(config if config is not None else {})
    built_agent = _agent_from_config(atlas_config, agent)
    builder = create_atlas_graph(
        atlas_config, models=models, agent=built_agent or agent, tools=tools
    )
    async with AsyncExitStack() as stack:
        if isinstance(built_agent, HttpAgent):
            stack.push_async_callback(built_agent.aclose)
        opened = await _storage(stack, atlas_config, persistence, checkpointer, store)
        yield builder.compile(checkpointer=opened.checkpointer, store=opened.store, name=GRAPH_NAME)


async def _astate_or_none(graph: CompiledStateGraph[Any, Any, Any, Any], config: Any) -> Any:
    """The thread's state, or ``None`` when it cannot be read (the storage is what failed)."""
    try:
        return await graph.aget_state(config)
    except Exception as error:
        if storage_fault(error) is None:
            raise
        return None


def _check_reusable(graph: CompiledStateGraph[Any, Any, Any, Any], **held: Any) -> None:
    """A reused graph already has its models, agent and storage: refuse a second set."""
    given = [name for name, value in held.items() if value is not None]
    if given:
        raise AtlasUserError(
            f"arun(graph=...) takes no {', '.join(given)}: the graph was compiled with its "
            "own; pass them to aopen_graph() or create_atlas_graph() instead"
        )
    if not isinstance(graph.checkpointer, BaseCheckpointSaver):
        raise AtlasUserError(
            "arun(graph=...) needs a graph compiled with a checkpointer (it reads the "
            "session's state); use aopen_graph() or compile(checkpointer=...)"
        )


def _agent_from_config(config: AtlasConfig, agent: Any) -> Any:
    """The config's agent, built here when the caller passed none, so the run can close it.

    An agent the caller passed in is theirs to reuse and close, so it is never touched.
    """
    if agent is not None or config.agent is None:
        return None
    return agent_from_config(config.agent, config.student)


async def _storage(
    stack: AsyncExitStack,
    config: AtlasConfig,
    persistence: Persistence | None,
    checkpointer: BaseCheckpointSaver[Any] | None,
    store: BaseStore | None,
) -> Persistence:
    """The caller's persistence, the caller's saver (and store), or the config's storage."""
    if persistence is not None:
        return persistence
    if checkpointer is not None:
        return Persistence(checkpointer, store, "memory")
    return await stack.enter_async_context(aopen_persistence(config.storage))


def _resume_command(snapshot: Any, resume: Any, thread_id: str) -> Command[Any]:
    """``Command(resume=...)`` for a thread that waits on an interrupt."""
    if not snapshot.interrupts:
        raise SessionStateError(thread_id, "is not waiting for a decision; resume it without one")
    return Command(resume=resume)


def _with_interrupt(result: Result, snapshot: Any) -> Result:
    """Mark a result whose session paused on an interrupt (e.g. plan approval)."""
    if not snapshot.interrupts:
        return result
    payload = snapshot.interrupts[0].value
    waiting_for = payload if isinstance(payload, dict) else {"value": payload}
    return result.model_copy(update={"waiting_for": waiting_for})


# --------------------------------------------------------------------------- telemetry


def _session_telemetry(
    session_id: str,
    stream_progress: bool | None,
    on_event: Callable[[AtlasEvent], None] | None,
    publishers: Sequence[AnyPublisher],
) -> SessionTelemetry:
    """The console (when asked for, or on a terminal), the callback and the publishers."""
    if stream_progress is None:
        stream_progress = sys.stdout.isatty()
    renderer = None
    if stream_progress:
        from atlas_graph.telemetry.console import ConsoleRenderer

        renderer = ConsoleRenderer()
    return SessionTelemetry(session_id, renderer=renderer, on_event=on_event, publishers=publishers)


def _trace_labels(session_id: str, lane: str | None, fingerprint: str | None) -> RunnableConfig:
    """Name, tags and metadata of the session's root run in LangSmith.

    A new session knows its lane here only when the caller forces it; otherwise the graph adds
    the lane (and the fingerprint) to the still-open root run once triage and the probe have
    run (see ``instrument.py``). A resumed session's root run gets them from its checkpoint.
    """
    tags = ["atlas-graph"]
    metadata: dict[str, Any] = {"session_id": session_id}
    if lane is not None:
        tags.append(f"lane:{lane}")
        metadata["lane"] = lane
    if fingerprint is not None:
        metadata["fingerprint"] = fingerprint
    return {"run_name": GRAPH_NAME, "tags": tags, "metadata": metadata}


def _known_labels(values: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The lane and fingerprint an unfinished session already has."""
    dossier = values.get("dossier") or {}
    return values.get("lane"), values.get("fingerprint") or dossier.get("fingerprint")


def run(
    task: str | None,
    *,
    config: ConfigSource | None = None,
    mode: Lane | None = None,
    thread_id: str | None = None,
    session_metadata: Mapping[str, JsonValue] | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
    agent: AgentLike | None = None,
    tools: Sequence[ToolLike] = (),
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    stream_progress: bool | None = None,
    on_event: Callable[[AtlasEvent], None] | None = None,
    publishers: Sequence[AnyPublisher] = (),
    store: BaseStore | None = None,
    persistence: Persistence | None = None,
    resume: ResumeValue | None = None,
    graph: AtlasGraph | None = None,
) -> Result:
    """Synchronous ``arun``; works inside a running event loop (Jupyter) too.

    Takes the same arguments as ``arun``. It runs on its own event loop, so a ``persistence``
    or ``graph`` given here must not hold an async pool opened on another loop.
    """
    return run_sync(arun(
        task, config=config, mode=mode, thread_id=thread_id, session_metadata=session_metadata,
        models=models, agent=agent, tools=tools, checkpointer=checkpointer,
        stream_progress=stream_progress,
        on_event=on_event, publishers=publishers, store=store, persistence=persistence,
        resume=resume, graph=graph,
    ))  # fmt: skip


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, even inside a running loop.

    Without a running loop it gets a fresh one; inside one (a notebook) it runs on a private
    loop in a worker thread. Either way nothing it opens may outlive the call, so the
    coroutine must open its own storage rather than use a caller's async ``Persistence``.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # A loop is already running in this thread (a notebook): run on a private loop elsewhere.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


# Renamed when async functions took the ``a`` prefix; removed in the next release.
open_graph = renamed(aopen_graph, "open_graph")
