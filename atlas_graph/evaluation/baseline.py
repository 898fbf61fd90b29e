"""The student alone, and what supervision buys over it.

The baseline of a task is the same agent answering it once with nothing around it: the session
runs in the ``auto`` lane (forced) with no plan, no review, no validation, no retry, no reward,
no probe and no learning. It keeps the same executor prompt, tools and step timeout as the
supervised run, so the comparison differs only in supervision, and it is still a checkpointed
session whose tokens and time are counted the same way.

``lift`` pairs supervised and baseline result lines by task id and reports, per lane of the
supervised session and overall: accuracy of each (Wilson interval), the paired difference
(McNemar-style interval, exact p, and a seeded paired bootstrap), completion, the
non-degradation rate (of the tasks the student alone got right, the share supervision kept
right), tokens and model calls per role, cost and p50/p95 wall time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from atlas_graph.config import AtlasConfig, LaneOverride
from atlas_graph.evaluation.markdown import interval, percent, seconds, table
from atlas_graph.evaluation.stats import (
    paired_bootstrap,
    paired_difference,
    percentile,
    wilson,
)
from atlas_graph.lanes import LANES

FINISHED = frozenset({"succeeded", "failed"})
ALL = "all"
NO_LANE = "-"


def baseline_config(config: AtlasConfig) -> AtlasConfig:
    """``config`` turned into the student alone: one unsupervised attempt per task."""
    alone = LaneOverride(
        plan=False, review=False, single_step=True, validate=False, max_retries=0, reward=False
    )
    orchestration = config.orchestration.model_copy(
        update={"forced_mode": "auto", "lanes": {**config.orchestration.lanes, "auto": alone}}
    )
    return config.model_copy(
        update={
            "orchestration": orchestration,
            "rim": config.rim.model_copy(update={"reward_auto_lane": False}),
            "adaptive_teaching": config.adaptive_teaching.model_copy(update={"enabled": False}),
            "learning": config.learning.model_copy(update={"enabled": False}),
            "prompt_rewrite": None,
        }
    )


def completed(line: Mapping[str, Any]) -> bool:
    """A session completed when it ran to the end and produced an answer."""
    return line.get("status") in FINISHED and bool(str(line.get("final_answer") or "").strip())


def arm_summary(lines: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Accuracy, completion, tokens and calls per role, cost and wall time of result lines."""
    scored = [line for line in lines if line.get("correct") is not None]
    correct = sum(1 for line in scored if line.get("correct") is True)
    accuracy = wilson(correct, len(scored))
    done = sum(1 for line in lines if completed(line))
    roles: dict[str, dict[str, int]] = {}
    for line in lines:
        for role, usage in (line.get("usage") or {}).items():
            entry = roles.setdefault(role, {"tokens": 0, "calls": 0})
            entry["tokens"] += int(usage.get("total_tokens", 0))
            entry["calls"] += int(usage.get("calls", 0))
    costs = [float(line["cost"]) for line in lines if line.get("cost") is not None]
    walls = [float(line.get("wall_seconds") or 0.0) for line in lines]
    return {
        "sessions": len(lines),
        "scored": len(scored),
        "correct": correct,
        "accuracy": accuracy.as_dict() if accuracy else None,
        "completion_rate": done / len(lines) if lines else None,
        "tokens": sum(int(line.get("tokens") or 0) for line in lines),
        "roles": dict(sorted(roles.items())),
        "cost": round(sum(costs), 8) if costs else None,
        "wall_p50": percentile(walls, 50),
        "wall_p95": percentile(walls, 95),
    }


def compare(
    supervised: Sequence[Mapping[str, Any]], baseline: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """One group's comparison: both arms, the paired difference and non-degradation."""
    by_id = {line["id"]: line for line in baseline}
    pairs = [
        (bool(line["correct"]), bool(by_id[line["id"]]["correct"]))
        for line in supervised
        if line["id"] in by_id
        and line.get("correct") is not None
        and by_id[line["id"]].get("correct") is not None
    ]
    with_teacher = [pair[0] for pair in pairs]
    alone = [pair[1] for pair in pairs]
    difference = paired_difference(with_teacher, alone)
    bootstrap = paired_bootstrap(with_teacher, alone)
    alone_right = sum(alone)
    lost = difference.lost if difference else 0
    return {
        "supervised": arm_summary(supervised),
        "baseline": arm_summary([by_id[line["id"]] for line in supervised if line["id"] in by_id]),
        "paired": difference.as_dict() if difference else None,
        "bootstrap": bootstrap.as_dict() if bootstrap else None,
        "baseline_correct": alone_right,
        "degraded": lost,
        "non_degradation_rate": (alone_right - lost) / alone_right if alone_right else None,
    }


def lift(
    supervised: Iterable[Mapping[str, Any]], baseline: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """Comparisons per lane of the supervised sessions (``LANES`` order) and ``all``."""
    supervised = list(supervised)
    baseline = list(baseline)
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for line in supervised:
        groups.setdefault(line.get("lane") or NO_LANE, []).append(line)
    order = [*LANES, NO_LANE]
    lanes = sorted(groups, key=lambda lane: order.index(lane) if lane in order else len(order))
    report = {lane: compare(groups[lane], baseline) for lane in lanes}
    report[ALL] = compare(supervised, baseline)
    return report


def format_lift(report: Mapping[str, Mapping[str, Any]]) -> str:
    """The lift as a Markdown table: one row per lane and arm, then the differences."""
    header = ("lane", "arm", "n", "accuracy [95% CI]", "completion", "tokens", "calls",
              "cost $", "p50", "p95")  # fmt: skip
    rows = []
    for lane, group in report.items():
        for arm in ("baseline", "supervised"):
            data = group[arm]
            calls = sum(role["calls"] for role in data["roles"].values())
            cost = "-" if data["cost"] is None else f"{data['cost']:.4f}"
            rows.append((
                lane, arm, str(data["sessions"]), interval(data["accuracy"]),
                percent(data["completion_rate"]), str(data["tokens"]), str(calls), cost,
                seconds(data["wall_p50"]), seconds(data["wall_p95"]),
            ))  # fmt: skip
    lines = table(header, rows)
    lines += [
        "",
        "| lane | pairs | lift [95% CI] | bootstrap [95% CI] | McNemar p | gained | lost | "
        "non-degradation |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for lane, group in report.items():
        paired = group["paired"]
        if paired is None:
            lines.append(f"| {lane} | 0 | - | - | - | - | - | - |")
            continue
        lines.append(
            f"| {lane} | {paired['pairs']} | {interval(paired['difference'], signed=True)} | "
            f"{interval(group['bootstrap'], signed=True)} | {paired['mcnemar_p']:.3g} | "
            f"{paired['gained']} | {paired['lost']} | {percent(group['non_degradation_rate'])} |"
        )
    return "\n".join(lines)
