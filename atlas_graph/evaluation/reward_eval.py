"""Reward evaluation: replay recorded trajectories through the judges and the arbiter.

A trajectory line is a finished session: Atlas's ``SessionTrajectory`` payloads (the reward
dataset loads as it is, ``#`` and blank lines skipped) or the session traces of
``atlas-graph export``. Each one is turned into the state the graph's reward node reads and
scored by the same code: the reward node's judges sample it, and when one of them disagrees
with itself or is unsure, the arbiter node settles it. Reusing the teacher's verdicts as the
reward is switched off, so every trajectory is judged.

The report gives, per judge, the mean and spread of its scores; how far the judges are from
one another (mean pairwise difference, and the share of trajectories whose judges' spread is
within ``rim.variance_threshold``, the spread the config tolerates within one judge); how often
the arbiter was called and how much it moved the reward; and, when the file records a reward
(Atlas's ``session_metadata.reward_summary.score``, our export's ``session_reward.score``),
Pearson and Spearman correlation with it.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean, pstdev
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langgraph.runtime import Runtime

from atlas_graph.config import AtlasConfig, load_config
from atlas_graph.errors import AtlasError, AtlasUserError, DatasetError, one_line, one_line_error
from atlas_graph.evaluation.batch import EvalProgress, amap_progress, read_jsonl
from atlas_graph.evaluation.markdown import decimal, interval, percent
from atlas_graph.evaluation.probe_eval import lane_of_mode
from atlas_graph.evaluation.stats import mean, pearson, percentile, spearman, stdev, wilson
from atlas_graph.lanes import Lane
from atlas_graph.nodes.arbiter import make_arbiter_node
from atlas_graph.nodes.reward import SESSION, active_judges, make_reward_node
from atlas_graph.runner import ConfigSource, run_sync
from atlas_graph.services import AtlasContext, Services
from atlas_graph.state import AtlasState

DEFAULT_LANE: Lane = "coach"
"""The lane of a trajectory that names none: a supervised session, as judges usually see."""

_STATUSES = {"ok": "succeeded", "success": "succeeded", "succeeded": "succeeded",
             "failed": "failed", "error": "failed", "skipped": "skipped"}  # fmt: skip


@dataclass(frozen=True)
class Trajectory:
    """One recorded session, in the shape the reward node reads."""

    id: str
    line: int
    task: str
    final_answer: str
    lane: Lane
    plan_steps: list[dict[str, Any]]
    steps: dict[str, dict[str, Any]]
    session_metadata: dict[str, Any] = field(default_factory=dict)
    baseline: float | None = None

    def state(self) -> AtlasState:
        """The graph state the reward node scores: the finished session, without verdicts."""
        mode = "stepwise" if len(self.plan_steps) > 1 else "single_shot"
        return cast(
            AtlasState,
            {
                "task": self.task, "lane": self.lane, "final_answer": self.final_answer,
                "session_id": self.id, "session_metadata": self.session_metadata,
                "plan": {"steps": self.plan_steps, "execution_mode": mode},
                "steps": {key: dict(record) for key, record in self.steps.items()},
            },
        )  # fmt: skip


def baseline_score(data: Mapping[str, Any]) -> float | None:
    """The reward the file recorded for this session, if any.

    Our export has ``session_reward`` (and its flat ``reward_summary``); Atlas's trajectories
    keep the reward summary in ``session_metadata``.
    """
    metadata = data.get("session_metadata")
    candidates = [data.get("session_reward"), data.get("reward_summary")]
    if isinstance(metadata, Mapping):
        candidates.append(metadata.get("reward_summary"))
    for candidate in candidates:
        if isinstance(candidate, Mapping):
            score = candidate.get("score")
            if isinstance(score, int | float) and not isinstance(score, bool):
                return float(score)
    return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _step_record(raw: Mapping[str, Any], where: str, line: int) -> tuple[dict[str, Any], Any]:
    """One step of either shape: its plan entry and its record (keyed later by step id)."""
    spec = raw.get("step") if isinstance(raw.get("step"), Mapping) else {}
    assert isinstance(spec, Mapping)
    step_id = raw.get("step_id", spec.get("id"))
    if isinstance(step_id, bool) or not isinstance(step_id, int | str) or not str(step_id).strip():
        raise DatasetError(where, line, 'every step needs an id ("step_id" or "step": {"id"})')
    try:
        number = int(step_id)
    except ValueError:
        raise DatasetError(where, line, f"step id {step_id!r} is not a whole number") from None
    description = str(raw.get("description") or spec.get("description") or "")
    depends = raw.get("depends_on", spec.get("depends_on")) or []
    plan_entry = {"id": number, "description": description,
                  "depends_on": [int(item) for item in depends if str(item).isdigit()]}  # fmt: skip
    metadata = raw.get("metadata") if isinstance(raw.get("metadata"), Mapping) else {}
    assert isinstance(metadata, Mapping)
    history = [
        dict(item) for item in metadata.get("attempt_history") or [] if isinstance(item, Mapping)
    ]
    count = raw.get("attempts")
    count = count if isinstance(count, int) and count > 0 else max(len(history), 1)
    attempts = history[:count] + [{"attempt": index + 1} for index in range(len(history), count)]
    output = _text(raw.get("output") or "")
    attempts[-1] = {"output": output, **attempts[-1]}
    context = raw.get("context") if isinstance(raw.get("context"), Mapping) else {}
    assert isinstance(context, Mapping)
    prior = raw.get("prior_results") or context.get("prior_results") or {}
    runtime = raw.get("runtime") if isinstance(raw.get("runtime"), Mapping) else {}
    assert isinstance(runtime, Mapping)
    status = str(raw.get("status") or runtime.get("status") or "succeeded").lower()
    record = {
        "step_id": number,
        "status": _STATUSES.get(status, status),
        "attempts": attempts,
        "output": output,
        "guidance": [str(item) for item in raw.get("guidance") or []],
        "prior_results": {str(k): _text(v) for k, v in prior.items()}
        if isinstance(prior, Mapping)
        else {},
    }
    return plan_entry, record


def parse_trajectory(data: Any, line: int, where: str = "trajectories") -> Trajectory:
    """Validate one decoded trajectory line, of Atlas's shape or our export's.

    Raises:
        DatasetError: The line is not a usable trajectory; the message says what to fix.
    """
    if not isinstance(data, dict):
        raise DatasetError(
            where, line, 'expected a JSON object like {"task": ..., "final_answer": ...}'
        )
    task = data.get("task")
    if not isinstance(task, str) or not task.strip():
        raise DatasetError(where, line, '"task" must be a non-empty string')
    answer = data.get("final_answer")
    if answer is not None and not isinstance(answer, str):
        raise DatasetError(where, line, '"final_answer" must be a string')
    summary = (
        data.get("adaptive_summary") if isinstance(data.get("adaptive_summary"), Mapping) else {}
    )
    assert isinstance(summary, Mapping)
    mode = data.get("execution_mode") or summary.get("adaptive_mode")
    lane = lane_of_mode(mode)
    if mode is not None and lane is None:
        raise DatasetError(
            where, line, f'"execution_mode" must be auto, paired, coach or escalate, got {mode!r}'
        )
    steps = data.get("steps") or []
    if not isinstance(steps, list) or not all(isinstance(item, Mapping) for item in steps):
        raise DatasetError(where, line, '"steps" must be a list of step objects')
    plan = data.get("plan") or {}
    if not isinstance(plan, Mapping) or not isinstance(plan.get("steps") or [], list):
        raise DatasetError(where, line, '"plan" must be an object with a "steps" list')
    records: dict[str, dict[str, Any]] = {}
    described: dict[int, dict[str, Any]] = {}
    for raw in steps:
        entry, record = _step_record(raw, where, line)
        records[str(entry["id"])] = record
        described[entry["id"]] = entry
    plan_steps: list[dict[str, Any]] = []
    for spec in plan.get("steps") or []:
        if not isinstance(spec, Mapping) or "id" not in spec:
            raise DatasetError(where, line, 'every plan step needs an "id"')
        entry, _ = _step_record({"step": spec, "output": ""}, where, line)
        plan_steps.append(entry)
    planned = {spec["id"] for spec in plan_steps}
    plan_steps += [entry for number, entry in described.items() if number not in planned]
    metadata = (
        data.get("session_metadata") if isinstance(data.get("session_metadata"), Mapping) else {}
    )
    assert isinstance(metadata, Mapping)
    given = data.get("id") or metadata.get("session_id")
    return Trajectory(
        id=str(given) if given else f"line-{line}", line=line, task=task,
        final_answer=answer or "", lane=lane or DEFAULT_LANE, plan_steps=plan_steps,
        steps=records, session_metadata=dict(metadata), baseline=baseline_score(data),
    )  # fmt: skip


def read_trajectories(path: str | Path) -> list[Trajectory]:
    """Every trajectory of a JSONL file, checked before any judge is asked.

    Raises:
        DatasetError: The file is missing or empty, or a line is not a trajectory.
    """
    where = str(Path(path))
    trajectories = [
        parse_trajectory(data, number, where)
        for number, data in read_jsonl(path, kind="trajectory file", error=DatasetError)
    ]
    if not trajectories:
        raise DatasetError(
            where, None, f"{where} has no trajectories; write one JSON object a line"
        )
    return trajectories


def reward_config(config: AtlasConfig) -> AtlasConfig:
    """``config`` with the judges always asked: teacher verdicts are not reused as the reward."""
    return config.model_copy(
        update={"rim": config.rim.model_copy(update={"reuse_validation_as_reward": False})}
    )


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class JudgeResult:
    """One judge's word on one trajectory: tier 1, and the arbiter's when it was called."""

    tier1: float
    score: float
    stddev: float
    escalated: bool
    invalid_samples: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "tier1": self.tier1, "score": self.score, "stddev": self.stddev,
            "escalated": self.escalated, "invalid_samples": self.invalid_samples,
        }  # fmt: skip


@dataclass(frozen=True)
class RewardOutcome:
    """What the reward system made of one trajectory (``error`` when it could not score it)."""

    id: str
    line: int
    baseline: float | None
    tier1: float | None = None
    score: float | None = None
    judges: dict[str, JudgeResult] = field(default_factory=dict)
    latency_seconds: float = 0.0
    error: str | None = None

    @property
    def escalated(self) -> bool:
        """Whether any judge went to the arbiter."""
        return any(judge.escalated for judge in self.judges.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "line": self.line, "baseline": self.baseline, "tier1": self.tier1,
            "score": self.score, "escalated": self.escalated,
            "judges": {name: judge.as_dict() for name, judge in self.judges.items()},
            "latency_seconds": round(self.latency_seconds, 6), "error": self.error,
        }  # fmt: skip


def judge_results(reward: Mapping[str, Any]) -> dict[str, JudgeResult]:
    """Per judge, its session-level result; with step-only judging, its mean over the steps."""
    entries = [e for e in reward.get("judges") or [] if e.get("kind") != "validation"]
    session = [e for e in entries if e.get("subject") == SESSION]
    chosen = session or entries
    results: dict[str, JudgeResult] = {}
    for name in dict.fromkeys(str(e["identifier"]) for e in chosen):
        mine = [e for e in chosen if e["identifier"] == name]
        results[name] = JudgeResult(
            tier1=fmean(float(e.get("tier1_score", e["score"])) for e in mine),
            score=fmean(float(e["score"]) for e in mine),
            stddev=fmean(float(e.get("stddev") or 0.0) for e in mine),
            escalated=any(bool(e.get("escalated")) for e in mine),
            invalid_samples=sum(len(e.get("invalid_samples") or []) for e in mine),
        )
    return results


# --------------------------------------------------------------------------- statistics


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Count, mean, sample standard deviation, min and max (None where undefined)."""
    return {
        "n": len(values), "mean": mean(values), "stdev": stdev(values),
        "min": min(values) if values else None, "max": max(values) if values else None,
    }  # fmt: skip


def judge_agreement(rows: Sequence[Mapping[str, float]], threshold: float) -> dict[str, Any]:
    """How close the judges are on each trajectory that two or more of them scored.

    ``mean_abs_diff``/``max_abs_diff`` are over every pair of judges on every trajectory;
    ``within_threshold`` is the share of trajectories whose judges' population standard
    deviation is at most ``threshold`` (the rule that escalates one judge's samples).
    """
    compared = [list(row.values()) for row in rows if len(row) >= 2]
    diffs = [abs(a - b) for scores in compared for a, b in itertools.combinations(scores, 2)]
    agreeing = sum(1 for scores in compared if pstdev(scores) <= threshold)
    return {
        "trajectories": len(compared),
        "pairs": len(diffs),
        "mean_abs_diff": mean(diffs),
        "max_abs_diff": max(diffs) if diffs else None,
        "threshold": threshold,
        "within_threshold": agreeing / len(compared) if compared else None,
    }


def arbiter_effect(pairs: Sequence[tuple[float, float]], tolerance: float = 1e-9) -> dict[str, Any]:
    """What the arbiter did to escalated rewards, from ``(tier1, final)`` pairs."""
    changes = [final - tier1 for tier1, final in pairs]
    moved = [change for change in changes if abs(change) > tolerance]
    return {
        "escalated": len(pairs),
        "changed": len(moved),
        "mean_change": mean(changes),
        "mean_abs_change": mean([abs(change) for change in changes]),
        "max_abs_change": max((abs(change) for change in changes), default=None),
    }


def baseline_correlation(scores: Sequence[float], baselines: Sequence[float]) -> dict[str, Any]:
    """How the rewards follow the recorded ones: Pearson, Spearman, mean absolute difference."""
    diffs = [abs(s - b) for s, b in zip(scores, baselines, strict=True)]
    return {
        "pairs": len(diffs),
        "pearson": pearson(scores, baselines),
        "spearman": spearman(scores, baselines),
        "mean_abs_diff": mean(diffs),
    }


def summarize_reward(outcomes: Sequence[RewardOutcome], threshold: float) -> dict[str, Any]:
    """Per-judge spread, judge agreement, escalations, the arbiter's effect and the baseline."""
    scored = [o for o in outcomes if o.score is not None]
    names = list(dict.fromkeys(name for o in scored for name in o.judges))
    judges = {
        name: {
            **spread([o.judges[name].tier1 for o in scored if name in o.judges]),
            "sample_stdev_mean": mean([o.judges[name].stddev for o in scored if name in o.judges]),
            "escalated": sum(1 for o in scored if name in o.judges and o.judges[name].escalated),
            "invalid_samples": sum(
                o.judges[name].invalid_samples for o in scored if name in o.judges
            ),
        }
        for name in names
    }
    escalated = [o for o in scored if o.escalated]
    rate = wilson(len(escalated), len(scored))
    with_baseline = [o for o in scored if o.baseline is not None]
    latencies = [o.latency_seconds for o in outcomes if o.error is None]
    return {
        "trajectories": len(outcomes),
        "scored": len(scored),
        "errors": sum(1 for o in outcomes if o.error is not None),
        "reward": spread([o.score for o in scored if o.score is not None]),
        "judges": judges,
        "agreement": judge_agreement(
            [{name: j.tier1 for name, j in o.judges.items()} for o in scored], threshold
        ),
        "escalation": {
            "count": len(escalated),
            "rate": rate.as_dict() if rate else None,
        },
        "arbiter": arbiter_effect(
            [(o.tier1, o.score) for o in escalated if o.tier1 is not None and o.score is not None]
        ),
        "baseline": baseline_correlation(
            [o.score for o in with_baseline if o.score is not None],
            [o.baseline for o in with_baseline if o.baseline is not None],
        ),
        "latency_p50": percentile(latencies, 50),
        "latency_p95": percentile(latencies, 95),
    }


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class RewardEvalReport:
    """Every trajectory's outcome in file order, their summary and the judges' models."""

    outcomes: list[RewardOutcome]
    summary: dict[str, Any]
    judges: list[str]

    @property
    def errors(self) -> int:
        """Trajectories the reward system could not score (a model call failed)."""
        return int(self.summary["errors"])

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON: judges, summary and one record per trajectory."""
        return {
            "judges": self.judges,
            "summary": self.summary,
            "trajectories": [outcome.as_dict() for outcome in self.outcomes],
        }


class RewardReplay:
    """The reward and arbiter nodes of one config, run on recorded trajectories."""

    def __init__(self, services: Services) -> None:
        self.reward = make_reward_node(services)
        self.arbiter = make_arbiter_node(services)
        self.runtime: Runtime[AtlasContext] = Runtime(context=AtlasContext())

    async def ascore(self, trajectory: Trajectory) -> RewardOutcome:
        """Judge one trajectory, arbitrate it when a judge escalated, and time both."""
        state = trajectory.state()
        started = time.perf_counter()
        try:
            tier1 = await self.reward(state, self.runtime)
            final = tier1
            reward = tier1.get("reward")
            if reward and reward["raw"]["pending_arbiter"]:
                steps = {
                    key: {**state["steps"].get(key, {}), **update}
                    for key, update in tier1.get("steps", {}).items()
                }
                merged = cast(AtlasState, {**state, **tier1, "steps": {**state["steps"], **steps}})
                final = await self.arbiter(merged, self.runtime)
        except AtlasUserError:
            raise  # a config problem (no model, a missing key) concerns every trajectory
        except Exception as error:  # one failing call is one unscored trajectory, not the run
            message = one_line(error) if isinstance(error, AtlasError) else one_line_error(error)
            return RewardOutcome(trajectory.id, trajectory.line, trajectory.baseline, error=message)
        elapsed = time.perf_counter() - started
        first, last = tier1.get("reward"), final.get("reward")
        if not first or not last:
            why = "; ".join(tier1.get("plan_notes") or []) or "no reward"
            return RewardOutcome(trajectory.id, trajectory.line, trajectory.baseline, error=why)
        return RewardOutcome(
            id=trajectory.id, line=trajectory.line, baseline=trajectory.baseline,
            tier1=float(first["score"]), score=float(last["score"]),
            judges=judge_results(last), latency_seconds=elapsed,
        )  # fmt: skip


def _trajectories_from(
    data: str | Path | Iterable[Trajectory | Mapping[str, Any]],
) -> list[Trajectory]:
    if isinstance(data, str | Path):
        return read_trajectories(data)
    items = [
        item if isinstance(item, Trajectory) else parse_trajectory(dict(item), number)
        for number, item in enumerate(data, 1)
    ]
    if not items:
        raise DatasetError("trajectories", None, "no trajectories to score")
    return items


async def aevaluate_reward(
    data: str | Path | Iterable[Trajectory | Mapping[str, Any]],
    *,
    config: ConfigSource | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
    concurrency: int = 4,
    progress: EvalProgress | None = None,
) -> RewardEvalReport:
    """Score recorded trajectories with the config's judges and arbiter, and summarize.

    Args:
        data: A JSONL file of trajectories (Atlas's reward dataset or ``atlas-graph export``
            output), or trajectory mappings / ``Trajectory`` objects.
        config: Config path, mapping or ``AtlasConfig``; its ``rim`` section is used.
        models: Chat models by role (``judge``, ``arbiter``) over the config's.
        concurrency: Trajectories scored at once (at least 1); each one's judge calls are
            bounded by ``rim.parallel_workers`` as in a session.
        progress: Told when the run starts, after each trajectory and at the end.

    Raises:
        DatasetError: A line of the file is unusable; nothing was scored.
        AtlasUserError: ``concurrency`` is below 1, or the config has no judge.
        ModelConfigError: A judge model cannot be built (a missing key, say).
        ConfigError: The config is invalid.
    """
    trajectories = _trajectories_from(data)
    atlas_config = reward_config(load_config(config if config is not None else {}))
    services = Services(atlas_config, models=models)
    judges = active_judges(atlas_config.rim, has_model=services.has_model("judge"))
    if not judges:
        raise AtlasUserError(
            "no reward judge to evaluate: configure rim.judges, rim.active_judges or "
            "rim.small_model (or pass models={'judge': ...})"
        )
    replay = RewardReplay(services)
    outcomes = await amap_progress(
        trajectories, replay.ascore, concurrency=concurrency, progress=progress,
        status=lambda out: "error" if out.error else "succeeded",
    )  # fmt: skip
    summary = summarize_reward(outcomes, atlas_config.rim.variance_threshold)
    return RewardEvalReport(outcomes, summary, [judge.identifier for judge in judges])


def evaluate_reward(
    data: str | Path | Iterable[Trajectory | Mapping[str, Any]],
    *,
    config: ConfigSource | None = None,
    models: Mapping[str, BaseChatModel] | None = None,
    concurrency: int = 4,
    progress: EvalProgress | None = None,
) -> RewardEvalReport:
    """Synchronous ``aevaluate_reward`` (works in a notebook too); takes the same arguments."""
    return run_sync(aevaluate_reward(
        data, config=config, models=models, concurrency=concurrency, progress=progress
    ))  # fmt: skip


# --------------------------------------------------------------------------- the report


def format_reward_report(report: RewardEvalReport) -> str:
    """The report as Markdown: headline numbers, one row per judge, agreement and baseline."""
    s = report.summary
    reward, agreement, arbiter, base = s["reward"], s["agreement"], s["arbiter"], s["baseline"]
    escalation = interval(s["escalation"]["rate"])
    lines = [
        "# Reward evaluation",
        "",
        f"Judges: {', '.join(f'`{name}`' for name in report.judges)}",
        "",
        "| trajectories | scored | errors | mean reward | stdev | escalation [95% CI] | "
        "p50 latency | p95 latency |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {s['trajectories']} | {s['scored']} | {s['errors']} | {decimal(reward['mean'])} | "
        f"{decimal(reward['stdev'])} | {escalation} | {decimal(s['latency_p50'])}s | "
        f"{decimal(s['latency_p95'])}s |",
        "",
        "## Judges (tier-1 scores)",
        "",
        "| judge | n | mean | stdev | min | max | mean sample stdev | escalated | "
        "invalid samples |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, judge in s["judges"].items():
        lines.append(
            f"| {name} | {judge['n']} | {decimal(judge['mean'])} | {decimal(judge['stdev'])} | "
            f"{decimal(judge['min'])} | {decimal(judge['max'])} | "
            f"{decimal(judge['sample_stdev_mean'])} | {judge['escalated']} | "
            f"{judge['invalid_samples']} |"
        )
    lines += [
        "",
        "## Agreement, arbiter, baseline",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| judge pairs compared | {agreement['pairs']} over {agreement['trajectories']} "
        "trajectories |",
        f"| mean / max pairwise difference | {decimal(agreement['mean_abs_diff'])} / "
        f"{decimal(agreement['max_abs_diff'])} |",
        f"| judges within variance_threshold {agreement['threshold']} | "
        f"{percent(agreement['within_threshold'])} |",
        f"| escalated to the arbiter | {arbiter['escalated']} |",
        f"| arbiter changed the reward | {arbiter['changed']} |",
        f"| mean change / mean absolute change | {decimal(arbiter['mean_change'])} / "
        f"{decimal(arbiter['mean_abs_change'])} |",
        f"| pairs with a recorded reward | {base['pairs']} |",
        f"| Pearson / Spearman with it | {decimal(base['pearson'])} / "
        f"{decimal(base['spearman'])} |",
        f"| mean absolute difference from it | {decimal(base['mean_abs_diff'])} |",
    ]
    return "\n".join(lines)
