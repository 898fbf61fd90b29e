"""Scoring, statistics and the baseline lift on constructed cases with known answers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from atlas_graph.agents import AgentRequest
from atlas_graph.config import load_config
from atlas_graph.errors import AtlasUserError
from atlas_graph.evaluation.baseline import baseline_config, format_lift
from atlas_graph.evaluation.batch import aevaluate, read_tasks
from atlas_graph.evaluation.scoring import ascore_answer, make_scorer, numbers_in
from atlas_graph.evaluation.stats import (
    mcnemar_exact,
    paired_bootstrap,
    paired_difference,
    pearson,
    percentile,
    wilson,
)
from atlas_graph.testing import ScriptedChatModel

TASKS = 20


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --------------------------------------------------------------------------- scorers


async def score(spec: str, answer: str, expected: Any, **options: Any) -> bool | None:
    return await make_scorer(spec, **options).ascore(answer, expected, "task")


async def test_builtin_scorers() -> None:
    assert await score("exact", "  Paris. ", "paris")
    assert not await score("exact", "Paris, France", "paris")
    assert await score("exact", "lyon", ["Paris", "Lyon"])
    assert await score("contains", "The capital is Paris.", "paris")
    assert await score("regex", "answer: 42 apples", r"\b42\b")
    assert not await score("regex", "answer: 421", r"\b42\b")
    assert await score("numeric", "2 + 2 makes 4", 4)
    assert await score("numeric", "about 3.1416", "3.14159", tolerance=0.001)
    assert not await score("numeric", "3.2", 3.14159, tolerance=0.001)
    assert await score("numeric", "total: 1,250", 1250)
    assert not await score("numeric", "no number", 3)
    assert await score("numeric", "7", "not a number") is None
    assert numbers_in("-3 and 2.5e1") == [-3.0, 25.0]


async def test_default_scorer_and_missing_answers() -> None:
    assert await ascore_answer(None, "the result is 12", "12", "t") is True
    assert await ascore_answer(None, "blue", "Blue", "t") is True
    assert await ascore_answer(None, "anything", None, "t") is None
    assert await ascore_answer(None, "", 3, "t", answered=False) is False


def python_scorer(answer: str, expected: Any, task: str) -> dict[str, Any]:
    return {"correct": answer.strip().endswith(str(expected))}


async def test_python_scorer_and_unknown_names() -> None:
    assert await score("test_eval_lift:python_scorer", "so 9", 9)
    assert not await score("test_eval_lift:python_scorer", "9 or so", 9)
    with pytest.raises(AtlasUserError, match="unknown scorer 'fuzzy'"):
        make_scorer("fuzzy")
    with pytest.raises(AtlasUserError, match="needs a model"):
        make_scorer("judge")


async def test_judge_scorer_reads_a_verdict_and_leaves_garbage_unscored() -> None:
    judge = ScriptedChatModel(responses=[{"correct": True, "rationale": "same"}])
    assert await make_scorer("judge", models={"judge": judge}).ascore("4", "four", "2+2?")
    garbage = ScriptedChatModel(responses=["not json", "still not"])
    assert await make_scorer("judge", models={"judge": garbage}).ascore("4", "4", "t") is None
    garbage.assert_complete()


# --------------------------------------------------------------------------- statistics


def test_wilson_interval_known_values() -> None:
    interval = wilson(5, 10)
    assert interval is not None
    assert interval.estimate == 0.5
    assert interval.low == pytest.approx(0.2366, abs=1e-4)
    assert interval.high == pytest.approx(0.7634, abs=1e-4)
    edge = wilson(0, 10)
    assert edge is not None and edge.low == 0.0 and 0 < edge.high < 0.35
    assert wilson(0, 0) is None


def test_paired_difference_and_mcnemar() -> None:
    supervised = [True] * 15 + [False] * 5
    baseline = [True] * 10 + [False] * 10
    difference = paired_difference(supervised, baseline)
    assert difference is not None
    assert (difference.gained, difference.lost, difference.pairs) == (5, 0, 20)
    assert difference.difference.estimate == 0.25
    assert 0.25 in difference.difference
    assert difference.difference.low > 0
    assert mcnemar_exact(5, 0) == pytest.approx(0.0625)
    assert mcnemar_exact(0, 0) == 1.0
    bootstrap = paired_bootstrap(supervised, baseline)
    assert bootstrap is not None and 0.25 in bootstrap and bootstrap.low > 0


def test_percentiles_and_correlation() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert percentile([], 50) is None
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 1, 1], [2, 4, 6]) is None


# --------------------------------------------------------------------------- the lift


def number(task: str) -> int:
    match = re.search(r"Task (\d+)", task)
    assert match is not None
    return int(match.group(1))


class HalfRightStudent:
    """Right on its own for even task numbers (50 %); after guidance also for k % 4 == 1, which
    is half of its failures."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, request: AgentRequest) -> dict[str, Any]:
        k = number(request.task)
        self.calls.append((k, request.attempt))
        right = k % 2 == 0 or (request.attempt >= 2 and k % 4 == 1)
        answer = 2 * k if right else 2 * k + 1
        return {"content": f"The answer is {answer}",
                "usage": {"prompt_tokens": 8, "completion_tokens": 2}}  # fmt: skip


def validator(request: Any) -> dict[str, Any]:
    """A teacher that knows the answer: valid exactly when the output is right."""
    right = numbers_in(request.output)[-1] == 2 * number(request.task)
    return {"valid": right, "score": 1.0 if right else 0.0, "rationale": "checked",
            "guidance": "" if right else "Double the number exactly."}  # fmt: skip


def tasks_file(path: Path) -> Path:
    lines = ["# constructed: the answer to task k is 2k"]
    lines += [
        json.dumps(
            {
                "task": f"Task {k}: what is {k} times 2?",
                "expected_answer": str(2 * k),
                "metadata": {"k": k},
            }
        )
        for k in range(TASKS)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def lift_config() -> dict[str, Any]:
    return {
        "teacher": {"validator": "test_eval_lift:validator"},
        "orchestration": {"forced_mode": "paired", "lanes": {"paired": {"max_retries": 1}}},
        "storage": {"backend": "memory"},
    }


def test_atlas_task_lines_load_as_they_are(tmp_path: Path) -> None:
    items = read_tasks(tasks_file(tmp_path / "synthetic_runtime_tasks.jsonl"))
    assert len(items) == TASKS
    assert items[3].expected == "6" and items[3].session_metadata == {"k": 3}


def test_baseline_config_is_the_student_alone() -> None:
    alone = baseline_config(load_config(lift_config()))
    assert alone.orchestration.forced_mode == "auto"
    assert alone.orchestration.lanes["auto"].changes() == {
        "plan": False, "review": False, "single_step": True, "validate": False,
        "max_retries": 0, "reward": False,
    }  # fmt: skip
    assert not alone.learning.enabled and not alone.adaptive_teaching.enabled


async def test_half_right_student_and_a_teacher_that_fixes_half_gives_25_points(
    tmp_path: Path,
) -> None:
    student = HalfRightStudent()
    output = tmp_path / "results.jsonl"
    report = await aevaluate(
        tasks_file(tmp_path / "tasks.jsonl"), config=lift_config(), output=output,
        agent=student, baseline=True, concurrency=3,
    )  # fmt: skip
    assert report.baseline is not None and report.lift is not None
    # the student alone answers every task once, with no guidance
    alone_calls = [call for call in student.calls if call[1] == 1]
    assert len(alone_calls) == 2 * TASKS
    assert sum(line["correct"] for line in report.baseline) == TASKS // 2
    assert sum(line["correct"] for line in report.results) == TASKS // 2 + TASKS // 4
    overall = report.lift["all"]
    paired = overall["paired"]
    assert (paired["pairs"], paired["gained"], paired["lost"]) == (TASKS, TASKS // 4, 0)
    assert paired["difference"]["estimate"] == 0.25
    assert paired["difference"]["low"] <= 0.25 <= paired["difference"]["high"]
    assert overall["bootstrap"]["low"] <= 0.25 <= overall["bootstrap"]["high"]
    assert overall["non_degradation_rate"] == 1.0
    assert overall["supervised"]["accuracy"]["estimate"] == 0.75
    assert overall["baseline"]["accuracy"]["estimate"] == 0.5
    assert overall["baseline"]["completion_rate"] == 1.0
    assert overall["baseline"]["roles"] == {"student": {"tokens": 10 * TASKS, "calls": TASKS}}
    # failures retried once: 1.5 student calls per task on average
    assert overall["supervised"]["roles"]["student"]["calls"] == TASKS + TASKS // 2
    assert overall["supervised"]["wall_p95"] >= overall["supervised"]["wall_p50"] > 0
    assert list(report.lift) == ["paired", "all"]
    assert report.summary.total.correct == 15 and report.summary.total.scored == TASKS
    assert (tmp_path / "results.baseline.jsonl").exists()
    table = format_lift(report.lift)
    assert "| all | 20 | +25.0%" in table

    # a rerun finds both arms done and runs nothing
    again = await aevaluate(
        tmp_path / "tasks.jsonl", config=lift_config(), output=output, agent=student,
        baseline=True,
    )  # fmt: skip
    assert again.ran == 0
    assert again.lift == report.lift


def test_cli_baseline_writes_reports_and_keeps_the_student_alone(tmp_path: Path) -> None:
    from atlas_graph.cli import EXIT_OK, main
    from atlas_graph.demo import demo_config_path

    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        json.dumps({"task": "Add 2 and 2.", "expected_answer": "4"}) + "\n"
        + json.dumps({"task": "Add 7 and 8.", "ground_truth": 15, "mode": "coach"}) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    output = tmp_path / "r.jsonl"
    code = main([
        "eval", str(tasks), "--config", str(demo_config_path()), "--output", str(output),
        "--baseline", "--scorer", "numeric", "--json",
    ])  # fmt: skip
    assert code == EXIT_OK
    alone = [json.loads(line) for line in (tmp_path / "r.baseline.jsonl").read_text().splitlines()]
    assert [line["lane"] for line in alone] == ["auto", "auto"]  # the task's mode is not used
    assert all(line["correct"] is True and line["retries"] == 0 for line in alone)
    report = json.loads((tmp_path / "r.report.json").read_text())
    assert report["lift"]["all"]["paired"]["pairs"] == 2
    assert report["total"]["accuracy"]["estimate"] == 1.0
    assert "Supervised vs the student alone" in (tmp_path / "r.report.md").read_text()


def test_shipped_arithmetic_tasks_have_numeric_answers() -> None:
    items = read_tasks(Path(__file__).parents[1] / "configs" / "eval" / "arithmetic.jsonl")
    assert len(items) == 30
    assert all(numbers_in(str(item.expected)) for item in items)
