"""Adaptive nodes: triage builds the dossier, the probe decides the lane.

Lane order: the run's own ``mode`` → ``orchestration.forced_mode`` →
``adaptive_teaching.mode_override`` → ``adaptive_teaching.probe.fallback_mode``.
"""

from __future__ import annotations

import uuid
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from atlas_graph.callables import call_maybe_async, load_object
from atlas_graph.events import utc_now
from atlas_graph.lanes import LANES
from atlas_graph.ledger import record_start
from atlas_graph.plans import single_step_plan
from atlas_graph.services import AtlasContext, Node, Services
from atlas_graph.state import AtlasState, LaneDecision


def default_dossier(task: str, metadata: dict[str, Any], default_tags: list[str]) -> dict[str, Any]:
    """A dossier from the task and caller metadata alone (no model call)."""
    first_line = task.strip().splitlines()[0] if task.strip() else ""
    tags = [*default_tags, *[str(tag) for tag in metadata.get("tags", []) or []]]
    return {
        "summary": first_line[:200],
        "risks": list(metadata.get("risks", []) or []),
        "signals": dict(metadata.get("signals", {}) or {}),
        "tags": list(dict.fromkeys(tags)),
        "fingerprint_hint": metadata.get("fingerprint"),
        "builder": "default",
    }


def make_triage_node(services: Services) -> Node:
    """Open the session: id, start time, metadata defaults and the triage dossier."""
    adaptive = services.config.adaptive_teaching

    async def triage(
        state: AtlasState, config: RunnableConfig, runtime: Runtime[AtlasContext]
    ) -> dict[str, Any]:
        configurable = config.get("configurable", {})
        session_id = str(configurable.get("thread_id") or uuid.uuid4())
        metadata = {**services.config.metadata, **state.get("session_metadata", {})}
        dossier = default_dossier(state["task"], metadata, adaptive.default_tags)
        if adaptive.triage_adapter:
            try:
                builder = load_object(adaptive.triage_adapter)
                custom = await call_maybe_async(builder, state["task"], metadata)
                if not isinstance(custom, dict):
                    raise TypeError(f"returned {type(custom).__name__}, expected dict")
                dossier = {**dossier, **custom, "builder": adaptive.triage_adapter}
            except Exception as error:
                dossier["builder_error"] = f"{adaptive.triage_adapter}: {error}"
        services.emit(
            runtime, "session_started", session_id=session_id, actor="system", task=state["task"]
        )
        await record_start(runtime.store, session_id, state["task"], metadata)  # session ledger
        return {
            "session_id": session_id,
            "session_metadata": metadata,
            "started_at": utc_now(),
            "status": "running",
            "dossier": dossier,
        }

    return triage


def decide_lane(services: Services, requested: str | None) -> LaneDecision:
    """Pick the lane from overrides, else the fallback."""
    config = services.config
    candidates = (
        (requested, "run override"),
        (config.orchestration.forced_mode, "orchestration.forced_mode"),
        (config.adaptive_teaching.mode_override, "adaptive_teaching.mode_override"),
    )
    for lane, source in candidates:
        if lane:
            if lane not in LANES:
                raise ValueError(f"unknown lane '{lane}'; expected one of {', '.join(LANES)}")
            return {
                "lane": lane,
                "source": source,
                "confidence": None,
                "reason": f"set by {source}",
            }  # type: ignore[typeddict-item]
    fallback = config.adaptive_teaching.probe.fallback_mode
    return {
        "lane": fallback,
        "source": "fallback",
        "confidence": None,
        "reason": "no override; adaptive_teaching.probe.fallback_mode",
    }


def make_probe_node(services: Services) -> Node:
    """Decide the supervision lane and record why."""

    async def probe(state: AtlasState, runtime: Runtime[AtlasContext]) -> dict[str, Any]:
        decision = decide_lane(services, state.get("mode"))
        services.emit(
            runtime, "lane_decided", session_id=state.get("session_id", ""), actor="probe",
            **decision,
        )  # fmt: skip
        update: dict[str, Any] = {"lane": decision["lane"], "lane_decision": decision}
        if not services.policy(decision["lane"]).plan:
            update["plan"] = single_step_plan(state["task"])  # the task is the one step
        return update

    return probe
