"""Wrap every node of the graph once: keep its events and label its traces.

``instrument_nodes(builder, ...)`` replaces each async node of an uncompiled graph with a thin
wrapper, so no node has to know about either concern:

* **Trajectory.** The events a node emits (``services.emit``) are gathered in a list that a
  ``ContextVar`` points to for that node run only (each run, Send branches included, is its own
  task), and added to the node's update as a ``trajectory_events`` batch. Dict, ``Command`` and
  ``None`` returns are handled.
* **LangSmith.** While the node runs, its config metadata gains ``role``, ``session_id``,
  ``lane``, ``step_id`` and ``attempt``, so every LLM run below it carries them. Once the lane
  or fingerprint is known (after ``triage``/``probe``), the still-open root run and node run
  are labelled too; the tracer sends those labels when the runs end. Without tracing, this
  costs one dict copy per node run.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tracers.langchain import LangChainTracer
from langgraph._internal._runnable import RunnableCallable
from langgraph.graph import StateGraph
from langgraph.types import Command

from atlas_graph.events import AtlasEvent, collect_events, stop_collecting
from atlas_graph.trajectory import TrajectoryBatch, trajectory_entry

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
    """Wrap every async function node of ``builder`` (call before compiling).

    Args:
        builder: The uncompiled graph; its node specs are updated in place.
        event_limit: Most ``trajectory_events`` kept in state (0 keeps none).
    """
    for name, spec in builder.nodes.items():
        runnable = spec.runnable
        if not isinstance(runnable, RunnableCallable) or runnable.afunc is None:
            continue  # subgraphs and other runnables trace and stream on their own
        if runnable.func is not None:
            continue  # sync functions run in an executor; events there stay stream-only
        wrapped = _wrap(name, runnable.afunc, event_limit)
        spec.runnable = RunnableCallable(
            None, wrapped, name=runnable.name, tags=runnable.tags, trace=runnable.trace,
            recurse=runnable.recurse,
        )  # fmt: skip


def _wrap(
    name: str, node: Callable[..., Awaitable[Any]], event_limit: int
) -> Callable[..., Awaitable[Any]]:
    role = ROLE_BY_NODE.get(name)

    @functools.wraps(node)
    async def instrumented(node_input: Any, *args: Any, **kwargs: Any) -> Any:
        events: list[AtlasEvent] = []
        token = collect_events(events)
        config = var_child_runnable_config.get()
        config_token = None
        if config is not None and config.get("callbacks") is not None:
            labels = _labels(node_input, role)
            config_token = var_child_runnable_config.set(
                {**config, "metadata": {**config.get("metadata", {}), **labels}}
            )
        try:
            result = await node(node_input, *args, **kwargs)
        finally:
            if config_token is not None:
                var_child_runnable_config.reset(config_token)
            stop_collecting(token)
        if config_token is not None:
            _label_open_runs(config, result)  # type: ignore[arg-type]
        if not events or event_limit <= 0:
            return result
        batch = TrajectoryBatch(append=[trajectory_entry(e) for e in events], limit=event_limit)
        return _with_events(result, batch)

    return instrumented


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


def _label_open_runs(config: Mapping[str, Any], result: Any) -> None:
    """Put a newly known lane or fingerprint on the session's root run and this node's run."""
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
            parent = run.parent_run_id
            run = handler.run_map.get(str(parent)) if parent is not None else None
