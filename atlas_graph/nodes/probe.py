"""Lane routing: overrides, certification, the capability probe, thresholds, fallback.

Rules are tried in order and the first that applies decides:

1. the run's own ``mode``;
2. ``orchestration.forced_mode``, then ``adaptive_teaching.mode_override``;
3. certification: with ``certify_first_run``, an unseen fingerprint runs ``paired``;
4. the probe: an LLM (role ``probe``) reads the dossier and the fingerprint's history and
   replies ``{mode, confidence, evidence}``; its confidence is mapped to a lane by
   ``adaptive_teaching.probe.thresholds`` (below ``coach`` → ``low_confidence_lane``,
   default ``escalate``), and its mode counts as ``mode_policy`` says (default: not at all);
   ``atlas_compatible: true`` gives Atlas's mapping (see ``probe_lane``);
5. ``adaptive_teaching.probe.fallback_mode``.

The probe fails open: no model, a missing key, an error, an unreadable reply or
``timeout_seconds`` all give the fallback lane with the reason recorded.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime
from pydantic import BaseModel, ConfigDict, Field, field_validator

from atlas_graph import prompts
from atlas_graph.config import ProbeConfig, ProbeThresholds
from atlas_graph.errors import ModelOutputError
from atlas_graph.lanes import LANES, Lane
from atlas_graph.services import AtlasContext, Services
from atlas_graph.state import LaneDecision
from atlas_graph.structured import clamp_unit
from atlas_graph.usage import Usage


class ProbeReply(BaseModel):
    """The probe's structured answer."""

    model_config = ConfigDict(extra="ignore")

    mode: str | None = Field(default=None, description="auto, paired, coach or escalate")
    confidence: float = Field(description="0 to 1: how sure the agent handles this alone")
    evidence: list[str] = Field(default_factory=list)

    @field_validator("confidence", mode="before")
    @classmethod
    def _clamp(cls, value: Any) -> float:
        return clamp_unit(value)

    @field_validator("evidence", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value or []


@dataclass
class Routing:
    """The decision plus what led to it, for state and events."""

    decision: LaneDecision
    certification_run: bool = False
    probe: dict[str, Any] | None = None
    usage: Usage | None = None
    notes: list[str] = field(default_factory=list)


def lane_for_confidence(
    confidence: float, thresholds: ProbeThresholds, low: Lane = "escalate"
) -> Lane:
    """The least supervised lane whose threshold the confidence reaches, else ``low``."""
    if confidence >= thresholds.auto:
        return "auto"
    if confidence >= thresholds.paired:
        return "paired"
    if confidence >= thresholds.coach:
        return "coach"
    return low


def probe_lane(reply: ProbeReply, settings: ProbeConfig) -> tuple[Lane, str]:
    """The lane for a probe reply under ``mode_policy`` / ``atlas_compatible``, and why.

    Atlas's probe never answers ``escalate``: with ``atlas_compatible`` the probe's mode is
    taken when it names a lane, a low confidence gives ``coach``, and ``escalate`` (from the
    reply or the settings) becomes ``coach``.
    """
    policy = "probe" if settings.atlas_compatible else settings.mode_policy
    low: Lane = "coach" if settings.atlas_compatible else settings.low_confidence_lane
    by_confidence = lane_for_confidence(reply.confidence, settings.thresholds, low)
    reason = f"probe confidence {reply.confidence:.2f} → {by_confidence} by thresholds"
    suggested = reply.mode if reply.mode in LANES else None
    lane = by_confidence
    if suggested is not None and suggested != by_confidence:
        order = list(LANES)
        if policy == "probe" or (
            policy == "stricter" and order.index(suggested) > order.index(by_confidence)
        ):
            lane = suggested
            reason = f"probe mode {suggested} taken (mode_policy {policy}); " + reason
        else:
            reason += f" (the probe suggested {reply.mode})"
    elif reply.mode and suggested is None:
        reason += f" (the probe suggested {reply.mode})"
    if settings.atlas_compatible and lane == "escalate":
        lane = "coach"
        reason += "; escalate → coach (atlas_compatible)"
    return lane, reason


def _decision(lane: Lane, source: str, reason: str, confidence: float | None) -> LaneDecision:
    return {"lane": lane, "source": source, "confidence": confidence, "reason": reason}


def override(services: Services, requested: str | None) -> LaneDecision | None:
    """Rules 1–2: an explicit lane from the run or the config.

    Raises:
        ValueError: the run asked for a lane that does not exist.
    """
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
            return _decision(lane, source, f"set by {source}", None)
    return None


async def ask_probe(
    services: Services,
    runtime: Runtime[AtlasContext] | None,
    dossier: dict[str, Any],
    history: dict[str, Any] | None,
) -> tuple[ProbeReply | None, str | None, Usage | None]:
    """Call the probe model; ``(reply, None, usage)`` or ``(None, why it failed, usage)``."""
    settings = services.config.adaptive_teaching.probe
    if not services.has_model("probe", runtime):
        return None, "no probe model (adaptive_teaching.probe.llm is not set)", None
    messages = [
        SystemMessage(prompts.PROBE),
        HumanMessage(prompts.probe_message(dossier, history)),
    ]
    try:
        runnable = services.structured("probe", ProbeReply, runtime)
        async with asyncio.timeout(settings.timeout_seconds):
            answer = await runnable.ainvoke(messages)
        reply, usage = answer.value, answer.usage
    except TimeoutError:
        return None, f"probe timed out after {settings.timeout_seconds:g}s", None
    except ModelOutputError as error:
        return None, f"probe reply unreadable: {error}", error.usage
    except GraphBubbleUp:  # an interrupt() pauses the session
        raise
    except Exception as error:  # fail open: a broken probe must never stop the session
        return None, f"probe failed: {type(error).__name__}: {error}", None
    reply.evidence = [str(item) for item in reply.evidence][: settings.evidence_limit]
    return reply, None, usage


async def route(
    services: Services,
    runtime: Runtime[AtlasContext] | None,
    *,
    requested: str | None,
    dossier: dict[str, Any],
    history: dict[str, Any] | None,
    certified: bool | None,
) -> Routing:
    """Apply the routing rules in order.

    Args:
        requested: The run's own ``mode``.
        dossier: The triage dossier.
        history: The fingerprint's summarized history (None without a store).
        certified: Whether the fingerprint was certified; None when unknown (no store), which
            counts as certified so sessions without a store are never held in certification.
    """
    adaptive = services.config.adaptive_teaching
    fallback = adaptive.probe.fallback_mode
    explicit = override(services, requested)
    if explicit is not None:
        return Routing(explicit)
    if not adaptive.enabled:
        return Routing(_decision(fallback, "fallback", "adaptive teaching is disabled", None))
    if adaptive.certify_first_run and certified is False:
        reason = "certification: first run of an unseen fingerprint"
        return Routing(_decision("paired", "certification", reason, None), certification_run=True)
    reply, failure, usage = await ask_probe(services, runtime, dossier, history)
    if reply is None:
        reason = f"{failure}; adaptive_teaching.probe.fallback_mode"
        return Routing(_decision(fallback, "fallback", reason, None), usage=usage)
    lane, reason = probe_lane(reply, adaptive.probe)
    probe = {"mode": reply.mode, "confidence": reply.confidence, "evidence": reply.evidence}
    return Routing(_decision(lane, "probe", reason, reply.confidence), probe=probe, usage=usage)


def adaptive_summary(routing: Routing) -> dict[str, Any]:
    """The export's ``adaptive_summary`` for one session."""
    decision = routing.decision
    history = []
    if routing.probe is not None and routing.probe.get("mode") not in (None, decision["lane"]):
        history.append(
            {"mode": routing.probe["mode"], "confidence": routing.probe["confidence"],
             "source": "probe suggestion"}
        )  # fmt: skip
    history.append(
        {"mode": decision["lane"], "confidence": decision["confidence"],
         "source": decision["source"]}
    )  # fmt: skip
    return {
        "adaptive_mode": decision["lane"],
        "confidence": decision["confidence"],
        "certification_run": routing.certification_run,
        "source": decision["source"],
        "reason": decision["reason"],
        "probe": routing.probe,
        "mode_history": history,
    }
