"""Adaptive nodes: triage builds the dossier and fingerprint, the probe decides the lane.

The probe node also prepares the session's personas (rewritten prompts and the learning
playbook's pamphlets),
so the lane decision and the prompt work share one superstep. Routing rules: ``probe.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime

from atlas_graph.learning import pamphlet, registry
from atlas_graph.nodes.fingerprint import fingerprint, tenant_of
from atlas_graph.nodes.personas import persona_prompts
from atlas_graph.nodes.probe import Routing, adaptive_summary, override, route
from atlas_graph.nodes.triage import build_dossier
from atlas_graph.plans import single_step_plan
from atlas_graph.redaction import scrub
from atlas_graph.services import AtlasContext, Node, Services
from atlas_graph.state import AtlasState, PersonaContext, check_input
from atlas_graph.storage import history
from atlas_graph.storage.ledger import arecord_start, session_key
from atlas_graph.telemetry.events import utc_now
from atlas_graph.usage import Usage


def make_triage_node(services: Services) -> Node:
    """Open the session: id, start time, metadata defaults, the dossier and fingerprint."""
    config = services.config
    adaptive = config.adaptive_teaching
    agent = config.agent

    async def triage(
        state: AtlasState, config: RunnableConfig, runtime: Runtime[AtlasContext]
    ) -> dict[str, Any]:
        check_input(state)
        configurable = config.get("configurable", {})
        thread_id = configurable.get("thread_id")
        # a node's namespace ends with its own "node:task" segment; the graph's is the rest
        namespace = str(configurable.get("checkpoint_ns") or "").rpartition("|")[0]
        if not thread_id:
            session_id, namespace = str(uuid.uuid4()), ""  # no checkpoints to point at
        else:
            session_id = session_key(str(thread_id), namespace)
        # config metadata joins the session's here: scrubbed before it enters state
        metadata = scrub({**services.config.metadata, **state.get("session_metadata", {})})
        dossier = await build_dossier(
            state["task"], metadata, adaptive.default_tags, adaptive.triage_adapter
        )
        fp = fingerprint(
            agent_name=agent.name if agent else "agent",
            tenant=tenant_of(metadata),
            tool_names=services.toolbox.names(),
            tags=dossier.get("tags", []),
            hint=dossier.get("fingerprint_hint"),
        )
        services.emit(
            runtime, "session_started", session_id=session_id, actor="system", task=state["task"]
        )
        services.emit(
            runtime, "triage_done", session_id=session_id, actor="system", fingerprint=fp,
            summary=dossier.get("summary"), risks=dossier.get("risks", []),
            tags=dossier.get("tags", []), builder=dossier.get("builder"),
            builder_error=dossier.get("builder_error"),
        )  # fmt: skip
        return {
            "session_id": session_id,
            "graph_namespace": namespace,
            "session_metadata": metadata,
            "started_at": utc_now(),
            "status": "running",
            "dossier": dossier,
            "fingerprint": fp,
        }

    return triage


async def _routing(
    services: Services, state: AtlasState, runtime: Runtime[AtlasContext]
) -> tuple[Routing, dict[str, Any] | None]:
    """Read the fingerprint's history and certification, then apply the routing rules."""
    adaptive = services.config.adaptive_teaching
    store = runtime.store
    fp = state.get("fingerprint")
    seen: dict[str, Any] | None = None
    certified: bool | None = None
    # the Store is read only when a rule below an override will look at the history
    consulted = adaptive.enabled and (
        adaptive.certify_first_run or services.has_model("probe", runtime)
    )
    explicit = override(services, state.get("mode"))
    if explicit is None and consulted and store is not None and fp:
        sessions, certification = await asyncio.gather(
            history.aload_sessions(store, fp), history.aload_certification(store, fp)
        )
        seen = history.summarize(
            fp, sessions, adaptive.learning_history_limit, services.config.rim.success_threshold
        )
        seen["certified"] = certification is not None
        certified = certification is not None
    routing = await route(
        services, runtime, requested=state.get("mode"), dossier=state.get("dossier", {}),
        history=seen, certified=certified,
    )  # fmt: skip
    if certified is None and adaptive.certify_first_run and routing.decision["source"] in (
        "probe", "fallback",
    ):  # fmt: skip
        routing.notes.append(
            "certification skipped: no store to know whether the fingerprint is new"
        )
    return routing, seen


async def _personas(
    services: Services, state: AtlasState, runtime: Runtime[AtlasContext]
) -> tuple[PersonaContext, list[dict[str, Any]], Usage | None, str | None, dict[str, Any]]:
    """Rewritten persona prompts and the playbook pamphlets, with what was used."""
    store = runtime.store
    prompts, used, usage, note = await persona_prompts(services, runtime, store)
    context: PersonaContext = {"prompts": prompts} if prompts else {}
    learned: dict[str, Any] = {}
    if services.learns_playbook(runtime):
        key = registry.learning_key(services.config, state)
        learned["learning_key"] = key
        if services.config.learning.apply_to_prompts and store is not None:
            entries = await registry.aload_entries(store, key)
            texts: dict[str, str] = {}
            for audience in ("student", "teacher"):
                text, ids = pamphlet.render(entries, audience)
                learned[f"applied_{audience}_learning"] = pamphlet.applied(text, ids)
                if text:
                    texts[audience] = text
            if texts:
                context["learning"] = texts
    return context, used, usage, note, learned


def make_probe_node(services: Services) -> Node:
    """Decide the supervision lane, record why, and prepare the session's personas."""

    async def probe(state: AtlasState, runtime: Runtime[AtlasContext]) -> dict[str, Any]:
        (routing, seen), (context, used, rewrite_usage, note, learned) = await asyncio.gather(
            _routing(services, state, runtime), _personas(services, state, runtime)
        )
        decision = routing.decision
        summary = adaptive_summary(routing)
        evidence = (routing.probe or {}).get("evidence", [])
        services.emit(
            runtime, "lane_decided", session_id=state.get("session_id", ""), actor="probe",
            fingerprint=state.get("fingerprint"), evidence=evidence,
            certification_run=routing.certification_run, **decision,
        )  # fmt: skip
        await arecord_start(runtime.store, state, lane=decision["lane"])  # session ledger
        update: dict[str, Any] = {
            "lane": decision["lane"],
            "lane_decision": decision,
            "adaptive_summary": summary,
            "learning_history": seen,
            "personas_used": used,
            **learned,
        }
        if context:
            update["persona_context"] = context
        usage: dict[str, Any] = {}
        if routing.usage:
            usage["probe"] = routing.usage
        if rewrite_usage:
            usage["prompt_rewrite"] = rewrite_usage
        if usage:
            update["usage"] = usage
        notes = [*routing.notes, *([note] if note else [])]
        if notes:
            update["plan_notes"] = notes
        if not services.policy(decision["lane"]).plan:
            update["plan"] = single_step_plan(state["task"])  # the task is the one step
        return update

    return probe
