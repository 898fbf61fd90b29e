"""Probe evaluation: how often the capability probe picks the lane a dataset expects.

A dataset line is ``{"task": ..., "learning_history": {...}, "expected_mode": ...,
"metadata": {...}}``, the shape of Atlas's probe datasets, which load as they are (``#`` and
blank lines are skipped). ``expected_mode`` may be absent: such lines count in the decision
distribution and the latency but not in the accuracy. Atlas's modes ``auto``, ``paired`` and
``coach`` are the lanes of the same name.

Each line goes through the probe the graph's probe node uses (``nodes/probe.route``): the
dossier is built by triage's code from the task and the line's metadata, and the line's
learning history is what the probe reads as the fingerprint's history. Atlas's aggregated
history (``entries``, ``scores``, streaks) is turned into the summary our history store gives
the probe (``history_from_atlas``). Overrides of the config (``forced_mode``,
``mode_override``) and certification are switched off, so every line reaches the probe. Like
the graph, the probe fails open: an error or an unreadable reply gives the fallback lane, and
the report counts those lines.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from atlas_graph.config import AtlasConfig, load_config
from atlas_graph.errors import AtlasUserError, DatasetError
from atlas_graph.evaluation.batch import EvalProgress, amap_progress, read_jsonl
from atlas_graph.evaluation.markdown import interval, percent, seconds
from atlas_graph.evaluation.stats import percentile, wilson
from atlas_graph.lanes import LANES, Lane
from atlas_graph.nodes.fingerprint import fingerprint, tenant_of
from atlas_graph.nodes.probe import route
from atlas_graph.nodes.triage import build_dossier
from atlas_graph.redaction import scrub
from atlas_graph.runner import ConfigSource, run_sync
from atlas_graph.services import Services

SESSION_METADATA_KEYS = ("metadata", "session_metadata")


@dataclass(frozen=True)
class ProbeSample:
    """One line of a probe dataset, validated."""

    id: str
    line: int
    task: str
    history: dict[str, Any] | None = None
    expected: Lane | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def lane_of_mode(mode: Any) -> Lane | None:
    """The lane an Atlas mode name stands for (``auto``, ``paired``, ``coach``), any case."""
    if not isinstance(mode, str):
        return None
    name = mode.strip().lower()
    return next((lane for lane in LANES if lane == name), None)


def parse_probe_line(data: Any, line: int, where: str = "dataset") -> ProbeSample:
    """Validate one decoded dataset line.

    Raises:
        DatasetError: The line is not a probe sample; the message says what to fix.
    """
    if not isinstance(data, dict):
        raise DatasetError(where, line, 'expected a JSON object like {"task": "...", ...}')
    task = data.get("task")
    if not isinstance(task, str) or not task.strip():
        raise DatasetError(where, line, '"task" must be a non-empty string')
    expected = data.get("expected_mode")
    lane = lane_of_mode(expected)
    if expected is not None and lane is None:
        raise DatasetError(
            where, line, f'"expected_mode" must be one of {", ".join(LANES)}, got {expected!r}'
        )
    history = data.get("learning_history")
    if history is not None and not isinstance(history, dict):
        raise DatasetError(where, line, '"learning_history" must be a JSON object or null')
    metadata: dict[str, Any] = {}
    for key in SESSION_METADATA_KEYS:
        value = data.get(key)
        if value is not None and not isinstance(value, dict):
            raise DatasetError(where, line, f'"{key}" must be a JSON object')
        metadata.update(value or {})
    given = data.get("id")
    identity = str(given) if isinstance(given, str | int) and not isinstance(given, bool) else ""
    return ProbeSample(
        id=identity or f"line-{line}", line=line, task=task, history=history or None,
        expected=lane, metadata=metadata,
    )  # fmt: skip


def read_probe_dataset(path: str | Path) -> list[ProbeSample]:
    """Every sample of a probe dataset, checked before the probe is asked anything.

    Raises:
        DatasetError: The file is missing or empty, or a line is not a sample.
    """
    where = str(Path(path))
    samples = [
        parse_probe_line(data, number, where)
        for number, data in read_jsonl(path, kind="probe dataset", error=DatasetError)
    ]
    if not samples:
        raise DatasetError(where, None, f"{where} has no samples; write one JSON object a line")
    return samples


def history_from_atlas(history: Mapping[str, Any] | None, limit: int = 10) -> dict[str, Any] | None:
    """A learning history as the probe reads it: the summary of ``storage.history``.

    Our own summary (it has ``sessions``) passes unchanged. Atlas's aggregate (``entries``
    with rewards, ``scores``, ``average_score`` and score streaks) maps onto the same keys;
    what our summary has no place for (learning notes) is left out, as the probe never sees
    it. An empty history is no history.
    """
    if not history:
        return None
    if "sessions" in history:
        return dict(history)
    entries = [entry for entry in history.get("entries") or [] if isinstance(entry, Mapping)]
    recent = entries[-limit:]
    lanes_seen = [
        lane_of_mode(entry.get("mode") or entry.get("execution_mode")) for entry in recent
    ]
    rewards_seen = [_score(entry.get("reward")) for entry in recent]
    sessions = [
        {"lane": lane, "reward": reward, "retries": None, "status": None}
        for lane, reward in zip(lanes_seen, rewards_seen, strict=True)
    ]
    rewards = [reward for reward in rewards_seen if reward is not None]
    mean = history.get("average_score")
    if mean is None and rewards:
        mean = sum(rewards) / len(rewards)
    lanes: dict[str, int] = {}
    for lane in lanes_seen:
        if lane is not None:
            lanes[lane] = lanes.get(lane, 0) + 1
    return {
        "fingerprint": history.get("learning_key"),
        "session_count": int(history.get("total_count") or history.get("count") or len(entries)),
        "sessions": sessions,
        "reward_mean": None if mean is None else round(float(mean), 4),
        "lanes": lanes,
        "success_streak": int(history.get("recent_high_score_streak") or 0),
        "failure_streak": int(history.get("recent_low_score_streak") or 0),
    }


def _score(reward: Any) -> float | None:
    """A reward given as a number or as ``{"score": ...}``."""
    if isinstance(reward, Mapping):
        reward = reward.get("score")
    if isinstance(reward, int | float) and not isinstance(reward, bool):
        return float(reward)
    return None


def probe_config(config: AtlasConfig) -> AtlasConfig:
    """``config`` with every routing rule before the probe off: no override, no certification."""
    adaptive = config.adaptive_teaching.model_copy(
        update={"enabled": True, "certify_first_run": False, "mode_override": None}
    )
    orchestration = config.orchestration.model_copy(update={"forced_mode": None})
    return config.model_copy(update={"adaptive_teaching": adaptive, "orchestration": orchestration})


@dataclass(frozen=True)
class ProbeOutcome:
    """What the probe decided for one sample."""

    id: str
    line: int
    expected: Lane | None
    chosen: Lane
    source: str
    confidence: float | None
    suggested: str | None
    reason: str
    latency_seconds: float

    @property
    def fail_open(self) -> bool:
        """The probe could not decide (error, unreadable reply, timeout): the fallback lane."""
        return self.source == "fallback"

    @property
    def correct(self) -> bool | None:
        """Whether the chosen lane is the expected one; None without an expected mode."""
        return None if self.expected is None else self.chosen == self.expected

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "line": self.line, "expected": self.expected, "chosen": self.chosen,
            "correct": self.correct, "source": self.source, "fail_open": self.fail_open,
            "confidence": self.confidence, "suggested": self.suggested, "reason": self.reason,
            "latency_seconds": round(self.latency_seconds, 6),
        }  # fmt: skip


# --------------------------------------------------------------------------- statistics


def confusion_matrix(pairs: Iterable[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """Counts of ``(expected, chosen)`` pairs: ``matrix[expected][chosen]``, every lane a key."""
    matrix: dict[str, dict[str, int]] = {
        expected: {chosen: 0 for chosen in LANES} for expected in LANES
    }
    for expected, chosen in pairs:
        matrix[expected][chosen] += 1
    return matrix


def lane_scores(matrix: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, Any]]:
    """Per lane: support (expected count), chosen count, precision and recall (None on 0/0)."""
    scores: dict[str, dict[str, Any]] = {}
    for lane in LANES:
        hits = matrix[lane][lane]
        support = sum(matrix[lane].values())
        chosen = sum(row[lane] for row in matrix.values())
        scores[lane] = {
            "support": support,
            "chosen": chosen,
            "precision": hits / chosen if chosen else None,
            "recall": hits / support if support else None,
        }
    return scores


def summarize_probe(outcomes: Sequence[ProbeOutcome]) -> dict[str, Any]:
    """Accuracy (Wilson 95 %), confusion matrix, per-lane scores, decisions, latency, fail-open.

    ``accuracy`` counts every scored sample with the lane it got, the fallback included, as a
    session would run; ``answered_accuracy`` only the samples the probe itself decided.
    """
    scored = [o for o in outcomes if o.expected is not None]
    answered = [o for o in scored if not o.fail_open]
    accuracy = wilson(sum(1 for o in scored if o.correct), len(scored))
    answered_accuracy = wilson(sum(1 for o in answered if o.correct), len(answered))
    matrix = confusion_matrix((o.expected, o.chosen) for o in scored if o.expected is not None)
    latencies = [o.latency_seconds for o in outcomes]
    return {
        "samples": len(outcomes),
        "scored": len(scored),
        "correct": sum(1 for o in scored if o.correct),
        "accuracy": accuracy.as_dict() if accuracy else None,
        "answered_accuracy": answered_accuracy.as_dict() if answered_accuracy else None,
        "fail_open": sum(1 for o in outcomes if o.fail_open),
        "decisions": {lane: sum(1 for o in outcomes if o.chosen == lane) for lane in LANES},
        "confusion": matrix,
        "lanes": lane_scores(matrix),
        "latency_p50": percentile(latencies, 50),
        "latency_p95": percentile(latencies, 95),
    }


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class ProbeEvalReport:
    """Every sample's outcome in dataset order, and their summary."""

    outcomes: list[ProbeOutcome]
    summary: dict[str, Any]
    model: str

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON: the probe model, the summary and one record per sample."""
        return {
            "model": self.model,
            "summary": self.summary,
            "samples": [outcome.as_dict() for outcome in self.outcomes],
        }


async def aprobe_sample(services: Services, sample: ProbeSample) -> ProbeOutcome:
    """Ask the probe about one sample, as the probe node would for a session of its task."""
    config = services.config
    adaptive = config.adaptive_teaching
    metadata = scrub({**config.metadata, **sample.metadata})
    dossier = await build_dossier(
        sample.task, metadata, adaptive.default_tags, adaptive.triage_adapter
    )
    history = history_from_atlas(sample.history, adaptive.learning_history_limit)
    if history is not None and not history.get("fingerprint"):
        agent = config.agent
        history["fingerprint"] = fingerprint(
            agent_name=agent.name if agent else "agent", tenant=tenant_of(metadata),
            tool_names=services.toolbox.names(), tags=dossier.get("tags", []),
            hint=dossier.get("fingerprint_hint"),
        )  # fmt: skip
    started = time.perf_counter()
    routing = await route(
        services, None, requested=None, dossier=dossier, history=history, certified=None
    )
    elapsed = time.perf_counter() - started
    decision = routing.decision
    return ProbeOutcome(
        id=sample.id, line=sample.line, expected=sample.expected, chosen=decision["lane"],
        source=decision["source"], confidence=decision["confidence"],
        suggested=(routing.probe or {}).get("mode"), reason=decision["reason"],
        latency_seconds=elapsed,
    )  # fmt: skip


def _samples_from(
    data: str | Path | Iterable[ProbeSample | Mapping[str, Any]],
) -> list[ProbeSample]:
    if isinstance(data, str | Path):
        return read_probe_dataset(data)
    samples = [
        item if isinstance(item, ProbeSample) else parse_probe_line(dict(item), number)
        for number, item in enumerate(data, 1)
    ]
    if not samples:
        raise DatasetError("dataset", None, "the dataset has no samples")
    return samples


async def aevaluate_probe(
    data: str | Path | Iterable[ProbeSample | Mapping[str, Any]],
    *,
    config: ConfigSource | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
    concurrency: int = 4,
    progress: EvalProgress | None = None,
) -> ProbeEvalReport:
    """Run the capability probe over a dataset and compare its lanes with the expected ones.

    Args:
        data: A JSONL dataset (Atlas's probe datasets load as they are), or sample mappings
            / ``ProbeSample`` objects.
        config: Config path, mapping or ``AtlasConfig``; its probe model and settings are used.
        models: Chat models by role; ``probe`` replaces the config's probe model.
        concurrency: Probe calls in flight at once (at least 1).
        progress: Told when the run starts, after each sample and at the end.

    Raises:
        DatasetError: A line of the dataset is unusable; nothing was asked.
        AtlasUserError: ``concurrency`` is below 1, or there is no probe model.
        ModelConfigError: The probe model cannot be built (a missing key, say).
        ConfigError: The config is invalid.
    """
    samples = _samples_from(data)
    atlas_config = probe_config(load_config(config if config is not None else {}))
    services = Services(atlas_config, models=models)
    if not services.has_model("probe"):
        raise AtlasUserError(
            "no probe model to evaluate: set adaptive_teaching.probe.llm in the config "
            "(or pass models={'probe': ...})"
        )
    model = services.model("probe")  # a missing key fails here, not once per sample
    outcomes = await amap_progress(
        samples, lambda sample: aprobe_sample(services, sample), concurrency=concurrency,
        progress=progress, status=lambda out: "fallback" if out.fail_open else "succeeded",
    )  # fmt: skip
    label = getattr(model, "model_name", None) or getattr(model, "model", None)
    return ProbeEvalReport(outcomes, summarize_probe(outcomes), str(label or type(model).__name__))


def evaluate_probe(
    data: str | Path | Iterable[ProbeSample | Mapping[str, Any]],
    *,
    config: ConfigSource | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
    concurrency: int = 4,
    progress: EvalProgress | None = None,
) -> ProbeEvalReport:
    """Synchronous ``aevaluate_probe`` (works in a notebook too); takes the same arguments."""
    return run_sync(aevaluate_probe(
        data, config=config, models=models, concurrency=concurrency, progress=progress
    ))  # fmt: skip


# --------------------------------------------------------------------------- the report


def format_probe_report(report: ProbeEvalReport) -> str:
    """The report as Markdown: headline numbers, the confusion matrix, per-lane scores."""
    summary = report.summary
    lines = [
        "# Probe evaluation",
        "",
        f"Probe model: `{report.model}`",
        "",
        "| samples | scored | accuracy [95% CI] | answered accuracy [95% CI] | fail-open | "
        "p50 latency | p95 latency |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {summary['samples']} | {summary['scored']} | {interval(summary['accuracy'])} | "
        f"{interval(summary['answered_accuracy'])} | {summary['fail_open']} | "
        f"{seconds(summary['latency_p50'], 3)} | {seconds(summary['latency_p95'], 3)} |",
        "",
        "## Confusion matrix (rows expected, columns chosen)",
        "",
        "| expected \\ chosen | " + " | ".join(LANES) + " |",
        "| --- |" + " --- |" * len(LANES),
    ]
    for expected in LANES:
        row = summary["confusion"][expected]
        lines.append(f"| {expected} | " + " | ".join(str(row[lane]) for lane in LANES) + " |")
    lines += [
        "",
        "## Lanes",
        "",
        "Over the scored samples; every sample's lane: "
        + ", ".join(f"{lane} {count}" for lane, count in summary["decisions"].items())
        + ".",
        "",
        "| lane | expected | chosen | precision | recall |",
        "| --- | --- | --- | --- | --- |",
    ]
    for lane, scores in summary["lanes"].items():
        lines.append(
            f"| {lane} | {scores['support']} | {scores['chosen']} | "
            f"{percent(scores['precision'])} | {percent(scores['recall'])} |"
        )
    return "\n".join(lines)
