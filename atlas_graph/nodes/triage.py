"""The triage dossier: what the probe reads before choosing a lane.

A dossier is plain JSON: ``summary``, ``risks`` (``{description, severity}`` with severities
``low | moderate | high | critical``), ``signals``, ``tags``, ``persona_hints`` and
``fingerprint_hint``. The default builder reads the task and the caller's metadata; a custom
builder (``adaptive_teaching.triage_adapter: module:callable``, a ``TriageBuilder``) takes
``(task, metadata)`` and returns a dict merged over the default (a ``TriageDossier``), or
Atlas's ``TriageDossier`` object (list ``signals``, ``persona_references``, ``metadata``),
which is translated. Atlas's list form of ``session_metadata.signals`` and its
``fingerprint_hint`` key work as well. The
starter builders below (code, support, SRE) show the shape and can be used by path, e.g.
``atlas_graph.nodes.triage:code_dossier``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable
from typing import Any, Literal, Protocol

from langgraph.errors import GraphBubbleUp
from typing_extensions import TypedDict

from atlas_graph.callables import call_maybe_async, load_object

Severity = Literal["low", "moderate", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "moderate", "high", "critical")


class TriageRisk(TypedDict):
    """One risk of a dossier. A builder may also give a bare string (a moderate risk), a
    ticket alias as severity (``sev1``, ``p2``, ``major``) or ``summary`` for the description."""

    description: str
    severity: Severity


class TriageDossier(TypedDict, total=False):
    """What a triage builder returns, every key optional, merged over the default dossier.

    The dossier the probe reads has every key but ``builder_error`` (there only when the
    builder failed); ``max_severity`` and ``builder`` are set by triage. Other keys a builder
    returns are kept as they are.
    """

    summary: str
    risks: list[TriageRisk | str]
    max_severity: Severity | None
    signals: dict[str, Any]
    signal_annotations: dict[str, str]
    tags: list[str]
    persona_hints: list[str]
    fingerprint_hint: str | None
    builder: str
    builder_error: str


class TriageBuilder(Protocol):
    """A custom dossier builder (``adaptive_teaching.triage_adapter``): sync or async, called
    with the task and the session metadata."""

    def __call__(
        self, task: str, metadata: dict[str, Any], /
    ) -> TriageDossier | Awaitable[TriageDossier]: ...


# Incident and ticket vocabularies people already use, mapped onto the four levels.
SEVERITY_ALIASES: dict[str, Severity] = {
    "sev0": "critical", "p0": "critical", "blocker": "critical",
    "sev1": "high", "p1": "high", "major": "high",
    "sev2": "moderate", "p2": "moderate", "medium": "moderate",
    "sev3": "low", "p3": "low", "minor": "low",
}  # fmt: skip


def normalize_severity(value: Any) -> Severity:
    """A severity name or alias as one of the four levels.

    Raises:
        ValueError: the value is not a known severity or alias.
    """
    text = re.sub(r"[\s_-]+", "", str(value).strip().lower())
    if text in SEVERITIES:
        return text
    if text in SEVERITY_ALIASES:
        return SEVERITY_ALIASES[text]
    known = ", ".join([*SEVERITIES, *SEVERITY_ALIASES])
    raise ValueError(f"unknown severity {value!r}; expected one of {known}")


def normalize_risks(risks: Any) -> list[dict[str, Any]]:
    """Risks as ``{description, severity}`` dicts; a bare string is a moderate risk."""
    if risks is None:
        return []
    if isinstance(risks, str | dict):
        risks = [risks]
    normalized = []
    for risk in risks:
        if isinstance(risk, str):
            normalized.append({"description": risk, "severity": "moderate"})
            continue
        if not isinstance(risk, dict):
            raise ValueError(f"a risk must be a string or a mapping, got {type(risk).__name__}")
        description = risk.get("description") or risk.get("summary") or risk.get("name") or ""
        normalized.append(
            {
                **risk,
                "description": str(description),
                "severity": normalize_severity(risk.get("severity", "moderate")),
            }
        )
    return normalized


def highest_severity(risks: list[dict[str, Any]]) -> Severity | None:
    """The worst severity among normalized risks, or None when there are none."""
    levels = [SEVERITIES.index(risk["severity"]) for risk in risks]
    return SEVERITIES[max(levels)] if levels else None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def normalize_signals(signals: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Signals as ``{name: value}`` plus ``{name: annotation}``.

    Atlas sends a list of ``{name, value, annotation}``; atlas-graph's own form is a mapping.
    Both load, so an Atlas caller's ``session_metadata.signals`` works as it is.

    Raises:
        ValueError: a list item is not a mapping with a ``name``.
    """
    if signals is None:
        return {}, {}
    if isinstance(signals, dict):
        return dict(signals), {}
    values: dict[str, Any] = {}
    annotations: dict[str, str] = {}
    for item in signals:
        item = _plain(item)
        if not isinstance(item, dict) or not item.get("name"):
            raise ValueError(f"a signal must be a mapping with a 'name', got {item!r}")
        name = str(item["name"])
        values[name] = item.get("value")
        if item.get("annotation"):
            annotations[name] = str(item["annotation"])
    return values, annotations


def _plain(value: Any) -> Any:
    """A pydantic model or dataclass (Atlas's ``TriageDossier`` and its parts) as plain data."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def from_atlas_dossier(value: Any) -> dict[str, Any]:
    """An adapter's reply as a dossier dict; Atlas's ``TriageDossier`` shape is translated.

    Atlas's object (or its dict) has ``signals`` as a list, ``persona_references`` and a
    ``metadata`` mapping that may hold ``fingerprint_hint``; these become the native keys.

    Raises:
        TypeError: the reply is not a mapping, a pydantic model or a dataclass.
    """
    data = _plain(value)
    if not isinstance(data, dict):
        raise TypeError(f"returned {type(value).__name__}, expected dict")
    data = dict(data)
    if isinstance(data.get("signals"), list):
        data["signals"], annotations = normalize_signals(data["signals"])
        if annotations:
            data["signal_annotations"] = annotations
    if "persona_references" in data and "persona_hints" not in data:
        data["persona_hints"] = [
            str(ref.get("persona_id") or ref.get("name") or ref)
            if isinstance(ref, dict)
            else str(ref)
            for ref in data.pop("persona_references") or []
        ]
    extra = data.get("metadata")
    if (
        isinstance(extra, dict)
        and extra.get("fingerprint_hint")
        and not data.get("fingerprint_hint")
    ):
        data["fingerprint_hint"] = extra["fingerprint_hint"]
    return {
        key: value for key, value in data.items() if value is not None or key == "fingerprint_hint"
    }


def default_dossier(task: str, metadata: dict[str, Any], default_tags: list[str]) -> dict[str, Any]:
    """A dossier from the task and caller metadata alone (no model call)."""
    first_line = task.strip().splitlines()[0] if task.strip() else ""
    tags = [*default_tags, *_as_list(metadata.get("tags"))]
    risks = normalize_risks(metadata.get("risks"))
    signals, annotations = normalize_signals(metadata.get("signals"))
    dossier = {
        "summary": str(metadata.get("summary") or first_line[:200]),
        "risks": risks,
        "max_severity": highest_severity(risks),
        "signals": signals,
        "tags": list(dict.fromkeys(tag.strip() for tag in tags if tag.strip())),
        "persona_hints": _as_list(metadata.get("persona_hints")),
        # Atlas's key first, then the native one
        "fingerprint_hint": metadata.get("fingerprint_hint") or metadata.get("fingerprint"),
        "builder": "default",
    }
    if annotations:
        dossier["signal_annotations"] = annotations
    return dossier


async def build_dossier(
    task: str, metadata: dict[str, Any], default_tags: list[str], adapter: str | None
) -> dict[str, Any]:
    """The default dossier, overlaid by the adapter's; a failing adapter is recorded, not fatal.

    A risky task should not be blocked by a broken triage plugin, so any error in the adapter
    (import, call or shape) leaves the default dossier with ``builder_error`` naming it.
    """
    try:
        dossier = default_dossier(task, metadata, default_tags)
    except ValueError as error:  # unusable risks or signals in the caller's metadata
        dossier = default_dossier(task, {**metadata, "risks": None, "signals": None}, default_tags)
        dossier["builder_error"] = f"session_metadata: {error}"
    if not adapter:
        return dossier
    try:
        custom = from_atlas_dossier(await call_maybe_async(load_object(adapter), task, metadata))
        merged = {**dossier, **custom, "builder": adapter}
        merged["risks"] = normalize_risks(merged.get("risks"))
        merged["max_severity"] = highest_severity(merged["risks"])
        merged["tags"] = list(dict.fromkeys([*dossier["tags"], *_as_list(custom.get("tags"))]))
        return merged
    except GraphBubbleUp:  # an interrupt() pauses the session
        raise
    except Exception as error:
        dossier["builder_error"] = f"{adapter}: {type(error).__name__}: {error}"
        return dossier


def _keyword_risks(task: str, rules: dict[str, tuple[str, Severity]]) -> list[dict[str, Any]]:
    lowered = task.lower()
    return [
        {"description": description, "severity": severity, "keyword": keyword}
        for keyword, (description, severity) in rules.items()
        if keyword in lowered
    ]


def _starter(
    task: str, metadata: dict[str, Any], domain: str, rules: dict[str, tuple[str, Severity]]
) -> dict[str, Any]:
    risks = [*normalize_risks(metadata.get("risks")), *_keyword_risks(task, rules)]
    return {
        "risks": risks,
        "tags": [f"domain:{domain}"],
        "signals": {**normalize_signals(metadata.get("signals"))[0], "length": len(task)},
        "persona_hints": [domain],
    }


_CODE_RULES: dict[str, tuple[str, Severity]] = {
    "migration": ("schema or data migration", "high"),
    "delete": ("destructive change", "high"),
    "security": ("security-sensitive code", "critical"),
    "auth": ("authentication or authorization code", "high"),
    "refactor": ("behaviour may change in a refactor", "moderate"),
    "test": ("test changes may hide regressions", "low"),
}
_SUPPORT_RULES: dict[str, tuple[str, Severity]] = {
    "refund": ("money moves on the customer's account", "high"),
    "cancel": ("the customer may churn", "moderate"),
    "legal": ("legal exposure", "critical"),
    "angry": ("an upset customer", "moderate"),
    "password": ("account access", "high"),
}
_SRE_RULES: dict[str, tuple[str, Severity]] = {
    "outage": ("user-facing outage", "critical"),
    "production": ("production change", "high"),
    "rollback": ("a rollback under pressure", "high"),
    "latency": ("degraded latency", "moderate"),
    "certificate": ("certificate expiry or mismatch", "high"),
    "disk": ("capacity pressure", "moderate"),
}


def code_dossier(task: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """Starter builder for coding tasks: flags migrations, deletions, security and auth."""
    return _starter(task, metadata, "code", _CODE_RULES)


def support_dossier(task: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """Starter builder for customer support: flags refunds, legal, access and churn."""
    dossier = _starter(task, metadata, "support", _SUPPORT_RULES)
    if metadata.get("customer_tier"):
        dossier["tags"].append(f"tier:{metadata['customer_tier']}")
    return dossier


def sre_dossier(task: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """Starter builder for incident response: an incident severity becomes a risk."""
    dossier = _starter(task, metadata, "sre", _SRE_RULES)
    if metadata.get("severity") is not None:
        severity = normalize_severity(metadata["severity"])
        dossier["risks"].append({"description": "declared incident severity", "severity": severity})
    if metadata.get("service"):
        dossier["tags"].append(f"service:{metadata['service']}")
    return dossier
