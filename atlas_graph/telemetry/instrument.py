"""Wrap every node of the graph once: keep its events and label its traces.

``instrument_nodes(builder, ...)`` replaces each function node of an uncompiled graph with a thin
wrapper, so no node has to know about either concern:

* **Trajectory.** The events a node emits (``services.emit``) are gathered in a list that a
  ``ContextVar`` points to for that node run only (each run, Send branches included, is its own
  task), and added to the node's update as a ``trajectory_events`` batch. Dict, ``Command`` and
  ``None`` returns are handled.
* **Sync callers.** Nodes are coroutines; each also gets a synchronous form that runs it on the
  graph's own event loop (``loop_thread.py``), so ``invoke``/``stream`` and LCEL ``batch`` work.
* **LangSmith.** While the node runs, its config metadata gains ``role``, ``session_id``,
  ``lane``, ``step_id`` and ``attempt``, so every LLM run below it carries them, and its own
  open run gets the same labels. Once the lane or fingerprint is known (after
  ``triage``/``probe``), the still-open root run is labelled too; the tracer sends those labels
  when the runs end. Without callbacks in the config, none of this happens.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.runnables.config import run_in_executor, var_child_runnable_config
from langchain_core.tracers.langchain import LangChainTracer

# the class StateGraph.add_node turns functions into; wrapping its function keeps LangGraph's
# injection of config/runtime/writer, which it reads from the (wrapped) signature
from langgraph._internal._runnable import RunnableCallable
from langgraph.graph import StateGraph
from langgraph.types import Command

from atlas_graph.loop_thread import LoopThread
from atlas_graph.telemetry.events import AtlasEvent, collect_events, stop_collecting
from atlas_graph.telemetry.trajectory import TrajectoryBatch, trajectory_entry

TRAJECTORY_KEY = "trajectory_events"

ROLE_BY_NODE: Mapping[str, str] = {
    "triage": "system",
    "probe": "probe",
    "plan": "student",
    "execute": "student",
    "synthesize": "student",
    "review": "teacher",
    "validate": "teacher",
    "guide": "teacher",
    "reward": "judge",
    "arbiter": "arbiter",
}
"""The role whose model a node calls; models built by ``Services`` also carry their own."""


def instrument_nodes(builder: StateGraph[Any, Any, Any, Any], *, event_limit: int) -> None:
    """Wrap every function node of ``builder`` (call before compiling).

    Args:
        builder: The uncompiled graph; its node specs are updated in place.
        event_limit: Most ``trajectory_events`` kept in state (0 keeps none).
    """
    loop = LoopThread(f"atlas-graph-nodes-{id(builder):x}")
    for name, spec in builder.nodes.items():
        runnable = spec.runnable
        if not isinstance(runnable, RunnableCallable):
            continue  # subgraphs and other runnables trace and stream on their own
        role = ROLE_BY_NODE.get(name)
        if runnable.func is None and runnable.afunc is not None:
            afunc = _wrap_async(runnable.afunc, role, event_limit)
            func = _on_loop(afunc, loop)  # sync callers (invoke, LCEL batch) run it there
        elif runnable.func is not None:
            # a sync node runs in a worker thread, which inherits the task's context
            func = _wrap_sync(runnable.func, role, event_limit)
            afunc = functools.wraps(func)(functools.partial(run_in_executor, None, func))
        else:
            continue
        spec.runnable = RunnableCallable(
            func, afunc, name=runnable.name, tags=runnable.tags, trace=runnable.trace,
            recurse=runnable.recurse,
        )  # fmt: skip


class _NodeRun:
    """One run of one node: gathers its events and labels its traces while it runs."""

    __slots__ = ("config", "config_token", "events", "token")

    def __init__(self, node_input: Any, role: str | None) -> None:
        self.events: list[AtlasEvent] = []
        self.token = collect_events(self.events)
        self.config = var_child_runnable_config.get()
        self.config_token = None
        if self.config is not None and self.config.get("callbacks") is not None:
            labels = _labels(node_input, role)
            # LLM runs started by the node read their metadata from this config
            self.config_token = var_child_runnable_config.set(
                {**self.config, "metadata": {**self.config.get("metadata", {}), **labels}}
            )
            _label_runs(self.config, labels, up_to_root=False)

    def close(self) -> None:
        if self.config_token is not None:
            var_child_runnable_config.reset(self.config_token)
        stop_collecting(self.token)

    def finish(self, result: Any, event_limit: int) -> Any:
        if self.config_token is not None and self.config is not None:  # set together
            _label_runs(self.config, _learned(result), up_to_root=True)
        if not self.events or event_limit <= 0:
            return result
        entries = [trajectory_entry(event) for event in self.events]
        return _with_events(result, TrajectoryBatch(append=entries, limit=event_limit))


def _wrap_async(
    node: Callable[..., Awaitable[Any]], role: str | None, event_limit: int
) -> Callable[..., Coroutine[Any, Any, Any]]:
    async def instrumented(node_input: Any, *args: Any, **kwargs: Any) -> Any:
        run = _NodeRun(node_input, role)
        try:
            result = await node(node_input, *args, **kwargs)
        finally:
            run.close()
        return run.finish(result, event_limit)

    return posing_as(instrumented, node)


def _wrap_sync(node: Callable[..., Any], role: str | None, event_limit: int) -> Callable[..., Any]:
    def instrumented(node_input: Any, *args: Any, **kwargs: Any) -> Any:
        run = _NodeRun(node_input, role)
        try:
            result = node(node_input, *args, **kwargs)
        finally:
            run.close()
        return run.finish(result, event_limit)

    return posing_as(instrumented, node)


def posing_as(wrapper: Callable[..., Any], node: Callable[..., Any]) -> Callable[..., Any]:
    """``wrapper`` with ``node``'s name, docstring and signature, but no ``__wrapped__``.

    LangGraph reads the signature to inject config, runtime and writer. At compile time it also
    follows ``__wrapped__`` and disassembles the node's bytecode in search of subgraphs: most
    of the cost of compiling this graph (about 10 ms, paid on every ``run``), and it can find
    none, because nodes reach agents and models through ``Services``. Without ``__wrapped__``
    only this small wrapper is scanned.
    """
    posed = functools.update_wrapper(wrapper, node)
    del posed.__wrapped__
    # functions take any attribute, but typeshed declares no __signature__ (inspect reads it)
    posed.__signature__ = inspect.signature(node)  # type: ignore[attr-defined]
    return posed


def _on_loop(node: Callable[..., Coroutine[Any, Any, Any]], loop: LoopThread) -> Callable[..., Any]:
    @functools.wraps(node)
    def synchronous(*args: Any, **kwargs: Any) -> Any:
        return loop.run(node(*args, **kwargs))

    return synchronous


def _labels(node_input: Any, role: str | None) -> dict[str, Any]:
    """Metadata for the LLM runs of one node run, from what the node was given."""
    labels: dict[str, Any] = {}
    if role is not None:
        labels["role"] = role
    if isinstance(node_input, Mapping):
        for key in ("session_id", "lane", "fingerprint"):
            if node_input.get(key):
                labels[key] = node_input[key]
        step = node_input.get("step")
        if isinstance(step, Mapping) and "id" in step:
            labels["step_id"] = step["id"]
            labels["attempt"] = node_input.get("attempt", 1)
    return labels


def _with_events(result: Any, batch: TrajectoryBatch) -> Any:
    """The node's return value with its events added to the update."""
    if result is None:
        return {TRAJECTORY_KEY: batch}
    if isinstance(result, dict):
        return {**result, TRAJECTORY_KEY: batch}
    if isinstance(result, Command) and result.graph is None:
        update = result.update
        if update is None:
            return dataclasses.replace(result, update={TRAJECTORY_KEY: batch})
        if isinstance(update, dict):
            return dataclasses.replace(result, update={**update, TRAJECTORY_KEY: batch})
        if isinstance(update, list | tuple):
            return dataclasses.replace(result, update=[*update, (TRAJECTORY_KEY, batch)])
    return result  # other shapes (a parent-graph Command, a list of Commands) keep no events


def _update_of(result: Any) -> Mapping[str, Any]:
    if isinstance(result, Mapping):
        return result
    if isinstance(result, Command) and isinstance(result.update, Mapping):
        return result.update
    return {}


def _learned(result: Any) -> dict[str, Any]:
    """A lane or fingerprint that this node's update makes known."""
    update = _update_of(result)
    labels: dict[str, Any] = {}
    if update.get("lane"):
        labels["lane"] = update["lane"]
    dossier = update.get("dossier")
    fingerprint = update.get("fingerprint") or (
        dossier.get("fingerprint") if isinstance(dossier, Mapping) else None
    )
    if fingerprint:
        labels["fingerprint"] = fingerprint
    return labels


def _label_runs(config: Mapping[str, Any], labels: Mapping[str, Any], *, up_to_root: bool) -> None:
    """Add ``labels`` to this node's open run (and its ancestors up to the session's root).

    The tracer sends a run's metadata and tags again when the run ends, so labels added while
    it is open reach LangSmith.
    """
    if not labels:
        return
    manager = config.get("callbacks")
    if not isinstance(manager, BaseCallbackManager) or manager.parent_run_id is None:
        return
    for handler in manager.handlers:
        if not isinstance(handler, LangChainTracer):
            continue
        run = handler.run_map.get(str(manager.parent_run_id))
        while run is not None:
            run.extra.setdefault("metadata", {}).update(labels)
            if "lane" in labels:
                tag = f"lane:{labels['lane']}"
                run.tags = [*(t for t in run.tags or [] if not t.startswith("lane:")), tag]
            parent = run.parent_run_id if up_to_root else None
            run = handler.run_map.get(str(parent)) if parent is not None else None
