"""The Ray executor: a batch's sessions spread over the worker processes of a Ray cluster.

Each worker is a Ray actor holding one event loop, one compiled graph and one connection pool
to the shared PostgreSQL storage, opened once by the worker itself; it runs at most
``concurrency`` sessions at a time. The driver (the process that called ``aevaluate``) hands
out jobs as slots free up and receives every result line as its session ends, so results are
appended, and the progress bar drawn, exactly as in a local batch.

Workers are actors rather than one Ray task per session because a task process runs one task
at a time: bounded concurrency inside a worker (sessions mostly wait on models) needs a
long-lived event loop, and a pool opened per session would cost more than the session.

A lost worker (its process or node died) fails every call it had in flight; the driver sends
each of those jobs to a surviving worker under the same thread id, at most ``max_retries``
times. LangGraph then resumes each session from its last checkpoint (with ``durability:
sync``, the one before the node that was running), so no finished node's model call repeats.
A job whose session had already ended before its worker was lost gets its result line from
that final checkpoint. A job whose tries ran out, or that outlived every worker, gets an
error line and continues from its checkpoints on a rerun.

Storage must be PostgreSQL. ``memory`` would be private to each worker, and SQLite is refused
even on one machine: several processes writing one file make SQLite answer "database is
locked" whenever two sessions commit together.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any

from langchain_core.language_models import BaseChatModel

from atlas_graph.config import AtlasConfig
from atlas_graph.errors import RayNotInstalledError, RayWorkerError, SharedStorageError, one_line
from atlas_graph.executors import Emit, Job, SessionWork
from atlas_graph.runner import AtlasGraph, aopen_graph, one_line_error
from atlas_graph.storage.persistence import resolve_backend

INSTALL_HINT = "the Ray executor needs Ray: pip install 'atlas-graph[ray]'"
READY_TIMEOUT_SECONDS = 120.0
"""How long workers may take to start and open their storage before the batch gives up."""
MAX_RETRIES = 3
"""How many times a job is sent to another worker after the one running it was lost."""
_CLOSE_TIMEOUT_SECONDS = 10.0


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise RayNotInstalledError(INSTALL_HINT) from None
    return ray


def shared_storage(config: AtlasConfig) -> AtlasConfig:
    """``config`` with the database URL resolved here, for workers that all open it.

    The URL may come from this process's ``ATLAS_GRAPH_DATABASE_URL``; workers on other nodes
    do not have that variable, so the resolved URL travels in the config they receive.

    Raises:
        RayNotInstalledError: Ray is not installed.
        SharedStorageError: The storage is SQLite or memory.
    """
    if importlib.util.find_spec("ray") is None:  # found, not imported: that takes seconds
        raise RayNotInstalledError(INSTALL_HINT)
    backend, url = resolve_backend(config.storage)
    if backend != "postgres":
        raise SharedStorageError(
            f"--ray needs PostgreSQL storage that every worker can reach (storage.database_url "
            f"or ATLAS_GRAPH_DATABASE_URL); storage.backend {backend} cannot be shared by "
            "worker processes"
        )
    storage = config.storage.model_copy(update={"backend": "postgres", "database_url": url})
    return config.model_copy(update={"storage": storage})


class SessionWorker:
    """A Ray actor: one graph and one pool in one process, shared by its sessions."""

    def __init__(
        self,
        work: SessionWork,
        config: AtlasConfig,
        models: Mapping[str, BaseChatModel] | None,
        agent: Any,
    ) -> None:
        self._work, self._config, self._models, self._agent = work, config, models, agent
        self._stack = AsyncExitStack()
        self._graph: AtlasGraph | None = None
        self._opening: asyncio.Lock | None = None

    async def _open(self) -> AtlasGraph:
        # the lock is made here: it belongs to the actor's event loop, which __init__ lacks
        self._opening = self._opening or asyncio.Lock()
        async with self._opening:
            if self._graph is None:
                self._graph = await self._stack.enter_async_context(
                    aopen_graph(self._config, models=self._models, agent=self._agent)
                )
        return self._graph

    async def ready(self) -> str:
        """Open graph and storage now, so a worker that cannot reach them fails the start."""
        import ray

        await self._open()
        return str(ray.get_runtime_context().get_node_id())

    async def run(self, job: Job) -> dict[str, Any]:
        """The job's result line."""
        return await self._work.run(await self._open(), job)

    async def close(self) -> None:
        """Close the pool (and an HTTP agent's client) before the actor is killed."""
        await self._stack.aclose()
        self._graph = None


async def run_on_ray(
    jobs: Sequence[Job],
    work: SessionWork,
    emit: Emit,
    *,
    config: AtlasConfig,
    concurrency: int,
    address: str | None = None,
    workers: int | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
    agent: Any = None,
    max_retries: int = MAX_RETRIES,
) -> None:
    """Run ``jobs`` on Ray workers, ``concurrency`` sessions each, emitting lines as they end.

    Args:
        jobs: The sessions to run, each under its fixed thread id.
        work: Runs one job on a worker's graph; pickled to every worker.
        emit: Called on this event loop with each result line.
        config: The batch's config, its storage from ``shared_storage``.
        concurrency: Sessions at a time in each worker.
        address: ``local`` starts a cluster here with one CPU per core; another value is
            given to ``ray.init`` as the address of a running cluster; ``None`` keeps this
            process's Ray connection, or lets ``ray.init()`` find or start one.
        workers: Worker processes; default one per CPU of the cluster.
        models: Chat models by role; pickled to every worker.
        agent: The student's agent; pickled to every worker.
        max_retries: Times a job goes to another worker after losing its own.

    Raises:
        RayNotInstalledError: Ray is not installed.
        StorageError: A worker cannot open the storage (re-raised from the worker).
        RayWorkerError: The cluster cannot be reached, or the workers did not start (within
            ``READY_TIMEOUT_SECONDS``).
    """
    ray = import_ray()
    if not jobs:
        return
    started = _connect(ray, address)
    actors: list[Any] = []
    try:
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        count = workers or max(1, int(cpus))
        worker = ray.remote(SessionWorker).options(
            # more workers than CPUs share them: each then asks for its fraction
            num_cpus=min(1.0, cpus / count), max_concurrency=concurrency,
            max_restarts=0, scheduling_strategy="SPREAD",
        )  # fmt: skip
        actors = [worker.remote(work, config, models, agent) for _ in range(count)]
        await _ready(ray, actors, count)
        await _dispatch(ray, actors, jobs, work, emit, concurrency, max_retries)
    finally:
        await _stop(ray, actors)
        if started:
            ray.shutdown()


def _connect(ray: Any, address: str | None) -> bool:
    """Connect this process to Ray; ``True`` when it started (and so must shut down) Ray."""
    if address is None and ray.is_initialized():
        return False
    # Ray's start-up notices would break the progress bar; workers' errors come back as lines
    options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address == "local":
        options.update(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False)
    elif address is not None:
        options["address"] = address
    if ray.is_initialized():
        ray.shutdown()  # connected elsewhere: join the cluster that was asked for
    try:
        ray.init(**options)
    except Exception as error:  # Ray raises several kinds here, all meaning "not reachable"
        where = f"at {address}" if address not in (None, "local") else "here"
        raise RayWorkerError(
            f"cannot start or join a Ray cluster {where}: {one_line(error)}"
        ) from None
    return True


async def _ready(ray: Any, actors: Sequence[Any], count: int) -> None:
    """Wait until every worker has opened its storage; its own error if one cannot."""
    try:
        await asyncio.wait_for(
            asyncio.gather(*(actor.ready.remote() for actor in actors)), READY_TIMEOUT_SECONDS
        )
    except TimeoutError:
        raise RayWorkerError(
            f"{count} Ray workers did not start in {READY_TIMEOUT_SECONDS:.0f} s; the cluster "
            f"has {ray.available_resources().get('CPU', 0):g} CPUs free (use fewer --workers)"
        ) from None
    except ray.exceptions.RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None
        raise RayWorkerError(f"a Ray worker failed to start: {one_line(error)}") from None
    except ray.exceptions.RayError as error:  # e.g. atlas-graph is missing on a node
        raise RayWorkerError(f"a Ray worker failed to start: {one_line(error)}") from None


async def _dispatch(
    ray: Any,
    actors: Sequence[Any],
    jobs: Sequence[Job],
    work: SessionWork,
    emit: Emit,
    concurrency: int,
    max_retries: int,
) -> None:
    """Feed jobs to ``concurrency`` slots per worker until every job has its line."""
    queue: asyncio.Queue[Job] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    live = set(range(len(actors)))
    running: dict[str, Job] = {}  # on a worker right now, by task key
    remaining = len(jobs)
    settled = asyncio.Event()

    def settle(line: dict[str, Any]) -> None:
        nonlocal remaining
        emit(line)
        remaining -= 1
        if remaining == 0:
            settled.set()

    def lose(index: int) -> None:
        if index in live:
            live.discard(index)
            ray.kill(actors[index], no_restart=True)  # an unreachable actor must not run on
        if not live:
            settled.set()

    async def slot(index: int) -> None:
        while index in live:
            job = await queue.get()
            if index not in live:  # lost while this slot waited: the job was not tried here
                queue.put_nowait(job)
                return
            running[job.key] = job
            try:
                line = await actors[index].run.remote(job)
            except ray.exceptions.RayActorError as error:
                del running[job.key]
                lose(index)
                if job.tries >= max_retries:
                    settle(work.lost(job, _lost_message(job, error)))
                else:
                    queue.put_nowait(Job(job.key, job.session_id, job.item, job.tries + 1))
                return
            except ray.exceptions.RayError as error:  # not the session: Ray could not run it
                del running[job.key]
                settle(work.lost(job, one_line_error(_cause(error))))
            else:
                del running[job.key]
                settle(line)

    slots = [
        asyncio.create_task(slot(index)) for index in range(len(actors)) for _ in range(concurrency)
    ]
    try:
        await settled.wait()
    finally:
        for task in slots:
            task.cancel()
        await asyncio.gather(*slots, return_exceptions=True)
    # every worker was lost: what waits or was still running continues on a rerun
    left = [*running.values(), *(queue.get_nowait() for _ in range(queue.qsize()))]
    for job in left:
        emit(work.lost(job, f"session {job.session_id}: every Ray worker was lost; run the "
                            "batch again to continue from its last checkpoint"))  # fmt: skip


def _lost_message(job: Job, error: BaseException) -> str:
    return (
        f"session {job.session_id}: its Ray worker was lost {job.tries + 1} times "
        f"({type(error).__name__}); run the batch again to continue from its last checkpoint"
    )


def _cause(error: BaseException) -> BaseException:
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error


async def _stop(ray: Any, actors: Sequence[Any]) -> None:
    """Close every live worker's storage, then end the actors (only the ones this batch made)."""
    if not actors:
        return
    closing = [actor.close.remote() for actor in actors]
    await asyncio.wait(
        [asyncio.ensure_future(_quietly(ref)) for ref in closing], timeout=_CLOSE_TIMEOUT_SECONDS
    )
    for actor in actors:
        ray.kill(actor, no_restart=True)


async def _quietly(ref: Any) -> None:
    try:
        await ref
    except Exception:  # a lost worker has nothing left to close
        return
