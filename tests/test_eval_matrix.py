"""The runtime matrix on scripted students and teachers whose right and wrong answers are known.

The student reads its model name from its config (``metadata["llm_config"]``): ``strong``
answers every task right; ``weak`` only even tasks, and after guidance also tasks k % 4 == 1.
The ``strict`` teacher checks the answer and gives guidance; the ``lenient`` one passes
everything. So per pair: strong 100 % with either teacher, weak/strict 75 %, weak/lenient 50 %.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from atlas_graph.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from atlas_graph.config import load_config
from atlas_graph.errors import MatrixError
from atlas_graph.evaluation.matrix import (
    MatrixPair,
    arun_matrix,
    best_pair,
    cross,
    pair_config,
    pair_output,
    read_matrix,
    summarize_pair,
)
from atlas_graph.testing import ScriptedChatModel

TASKS = 8
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def number(text: str) -> int:
    found = re.findall(r"Task (\d+)", text)
    assert found
    return int(found[0])


def student(prompt: str, metadata: dict[str, Any]) -> dict[str, Any]:
    k = number(metadata["task_payload"])
    model = metadata["llm_config"]["model"]
    right = model == "strong" or k % 2 == 0 or (metadata["attempt"] >= 2 and k % 4 == 1)
    return {"content": f"The answer is {2 * k if right else 2 * k + 1}",
            "usage": {"prompt_tokens": 8, "completion_tokens": 2}}  # fmt: skip


def right(text: str) -> bool:
    return int(re.findall(r"The answer is (\d+)", text)[-1]) == 2 * number(text)


def strict(messages: list[BaseMessage]) -> dict[str, Any]:
    ok = right("\n".join(str(message.content) for message in messages))
    return {"valid": ok, "score": 1.0 if ok else 0.2, "rationale": "checked",
            "guidance": "" if ok else "Double the number exactly."}  # fmt: skip


def lenient(messages: list[BaseMessage]) -> dict[str, Any]:
    return {"valid": True, "score": 0.9, "rationale": "fine", "guidance": ""}


def validator(request: Any) -> dict[str, Any]:
    """The command line's teacher (no models can be handed in there): as ``strict``."""
    ok = right(f"{request.task}\n{request.output}")
    return {"valid": ok, "score": 1.0 if ok else 0.2, "rationale": "checked",
            "guidance": "" if ok else "Double the number exactly."}  # fmt: skip


def matrix_config(**teacher: Any) -> dict[str, Any]:
    return {
        "agent": {"type": "python", "import_path": "test_eval_matrix", "attribute": "student",
                  "llm": {"model": "base", "api_key_env": None}},
        "teacher": {"llm": {"model": "base", "api_key_env": None}, **teacher},
        "orchestration": {"forced_mode": "paired", "lanes": {"paired": {"max_retries": 1}}},
        "storage": {"backend": "memory"},
        # the lenient teacher costs ten times as much: ties between teachers go to strict
        "pricing": {"strict": {"input": 1.0, "output": 1.0},
                    "lenient": {"input": 10.0, "output": 10.0}},
    }  # fmt: skip


def tasks_file(path: Path) -> Path:
    lines = [json.dumps({"task": f"Task {k}: what is {k} times 2?", "expected_answer": str(2 * k)})
             for k in range(TASKS)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class Teachers:
    """Hands each pair a scripted teacher named after the pair's teacher model."""

    def __init__(self) -> None:
        self.made: dict[str, ScriptedChatModel] = {}

    def __call__(self, pair: MatrixPair) -> dict[str, Any]:
        assert pair.teacher is not None
        responder = strict if pair.teacher == "strict" else lenient
        model = ScriptedChatModel(responder=responder, model_name=pair.teacher)
        self.made[pair.label] = model
        return {"teacher": model}


class Stages:
    """A MatrixProgress that records what it is told."""

    def __init__(self) -> None:
        self.stages: list[str] = []
        self.starts: list[tuple[int, int]] = []
        self.updates = 0

    def stage(self, label: str) -> None:
        self.stages.append(label)

    def start(self, total: int, skipped: int) -> None:
        self.starts.append((total, skipped))

    def update(self, result: Any) -> None:
        self.updates += 1

    def close(self) -> None:
        pass


async def test_per_pair_accuracy_best_pair_repeats_and_resume(tmp_path: Path) -> None:
    tasks = tasks_file(tmp_path / "tasks.jsonl")
    output = tmp_path / "r.jsonl"
    teachers, progress = Teachers(), Stages()
    pairs = cross(["strong", "weak"], ["strict", "lenient"])
    report = await arun_matrix(
        tasks, pairs, config=matrix_config(), output=output, repeats=2, models=teachers,
        progress=progress, concurrency=3,
    )  # fmt: skip
    by_label = {pair.pair.label: pair for pair in report.pairs}
    accuracy = {label: pair.accuracy["estimate"] for label, pair in by_label.items()
                if pair.accuracy is not None}  # fmt: skip
    assert accuracy == {"strong / strict": 1.0, "strong / lenient": 1.0,
                        "weak / strict": 0.75, "weak / lenient": 0.5}  # fmt: skip
    weak = by_label["weak / strict"]
    assert (weak.repeats, weak.sessions, weak.scored, weak.correct) == (2, 2 * TASKS, 16, 12)
    assert weak.repeat_accuracy == (0.75, 0.75)
    assert weak.accuracy is not None and weak.accuracy["low"] < 0.75 < weak.accuracy["high"]
    assert weak.reward_spread == 0.0 and weak.lanes == {"paired": 2 * TASKS}
    assert weak.completion_rate == 1.0 and weak.wall_p95 is not None
    # four retries per repeat: weak/strict validates 12 attempts of 8 tasks each time
    assert len(teachers.made["weak / strict"].calls) == 2 * 12
    assert len(teachers.made["weak / lenient"].calls) == 2 * TASKS
    costs = [by_label[label].cost_per_session for label in ("strong / strict", "strong / lenient")]
    assert costs[0] is not None and costs[1] is not None and costs[0] < costs[1]
    assert report.best is by_label["strong / strict"]
    assert (report.tasks, report.repeats, report.ran, report.skipped) == (TASKS, 2, 64, 0)
    assert progress.stages[:2] == ["pair 1/4 strong / strict, repeat 1/2",
                                   "pair 1/4 strong / strict, repeat 2/2"]  # fmt: skip
    assert len(progress.stages) == 8 and progress.updates == 64
    assert report.as_dict()["best"] == {"student": "strong", "teacher": "strict",
                                        "label": "strong / strict"}  # fmt: skip

    # one results file per pair holds both repeats; repeat 2 has its own ids
    lines = [json.loads(line) for line in pair_output(output, pairs[2]).read_text().splitlines()]
    assert pair_output(output, pairs[2]).name == "r.weak--strict.jsonl"
    assert len(lines) == 2 * TASKS
    assert sum(line["id"].endswith("#r2") for line in lines) == TASKS

    # a second run finds every task of every repeat done
    again = await arun_matrix(
        tasks, pairs, config=matrix_config(), output=output, repeats=2, models=Teachers()
    )
    assert (again.ran, again.skipped) == (0, 64)
    assert [pair.accuracy for pair in again.pairs] == [pair.accuracy for pair in report.pairs]
    # a third repeat runs only the new sessions
    more = await arun_matrix(
        tasks, pairs, config=matrix_config(), output=output, repeats=3, models=Teachers()
    )
    assert (more.ran, more.skipped) == (4 * TASKS, 64)
    assert more.pairs[2].sessions == 3 * TASKS


def test_best_pair_falls_back_to_reward_then_to_the_cheaper_pair() -> None:
    def lines(reward: float, tokens: int) -> list[dict[str, Any]]:
        return [{"id": str(k), "status": "succeeded", "reward": reward, "tokens": tokens,
                 "final_answer": "x", "correct": None} for k in range(3)]  # fmt: skip

    a = summarize_pair(MatrixPair("a", "t"), [lines(0.8, 30)])
    b = summarize_pair(MatrixPair("b", "t"), [lines(0.9, 50)])
    c = summarize_pair(MatrixPair("c", "t"), [lines(0.9, 40)])
    assert a.accuracy is None
    assert best_pair([a, b, c]) is c
    assert best_pair([]) is None


def test_pair_config_renames_models_and_keeps_the_rest() -> None:
    base = load_config(matrix_config())
    config = pair_config(base, MatrixPair("gpt-4.1-mini", None))
    assert config.agent is not None and config.agent.llm is not None  # type: ignore[union-attr]
    assert config.agent.llm.model == "gpt-4.1-mini"  # type: ignore[union-attr]
    assert config.agent.llm.api_key_env is None  # type: ignore[union-attr]
    assert config.teacher.llm is not None and config.teacher.llm.model == "base"
    no_teacher = load_config({"storage": {"backend": "memory"}})
    with pytest.raises(MatrixError, match=r"teacher model 'x' needs a teacher\.llm block"):
        pair_config(no_teacher, MatrixPair(None, "x"))
    assert pair_config(no_teacher, MatrixPair(None, "x"), supplied={"teacher"}) == no_teacher


def test_matrix_files(tmp_path: Path) -> None:
    crossed = tmp_path / "m.yaml"
    crossed.write_text("students: [a, b]\nteachers: [x]\n")
    assert read_matrix(crossed) == [MatrixPair("a", "x"), MatrixPair("b", "x")]
    listed = tmp_path / "m.json"
    listed.write_text(
        json.dumps({"pairs": [{"student": "a/b:1", "teacher": "x"}, {"teacher": "y"}]})
    )
    pairs = read_matrix(listed)
    assert pairs == [MatrixPair("a/b:1", "x"), MatrixPair(None, "y")]
    assert pairs[0].slug == "a-b-1--x" and pairs[1].label == "config / y"
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [a]\n")
    with pytest.raises(MatrixError, match="must hold students"):
        read_matrix(bad)
    twice = tmp_path / "twice.yaml"
    twice.write_text("pairs: [{student: a, teacher: x}, {student: a, teacher: x}]\n")
    with pytest.raises(MatrixError, match="would share the results file"):
        read_matrix(twice)


# --------------------------------------------------------------------------- the command line


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "atlas.json"  # JSON is YAML
    path.write_text(json.dumps(matrix_config(validator="test_eval_matrix:validator")))
    return path


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > len(PNG_SIGNATURE), path


def test_cli_matrix_writes_reports_charts_and_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks, config = tasks_file(tmp_path / "tasks.jsonl"), write_config(tmp_path)
    code = main([
        "eval", str(tasks), "-c", str(config), "-o", str(tmp_path / "r.jsonl"),
        "--student-model", "strong,weak", "--teacher-model", "t1", "--repeats", "2",
        "--plot", str(tmp_path / "charts"), "--json",
    ])  # fmt: skip
    assert code == EXIT_FAILED  # the weak student fails some tasks
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["best"]["label"] == "strong / t1"
    assert [pair["accuracy"]["estimate"] for pair in summary["pairs"]] == [1.0, 0.75]
    assert [pair["sessions"] for pair in summary["pairs"]] == [2 * TASKS, 2 * TASKS]
    assert "eval: pair 2/2 weak / t1, repeat 2/2" in captured.err
    assert "plots: " in captured.err
    assert json.loads((tmp_path / "r.report.json").read_text()) == summary
    markdown = (tmp_path / "r.report.md").read_text()
    assert "# Runtime matrix" in markdown and "Best pair: strong / t1" in markdown
    for name in ("matrix.png", "rewards.strong--t1.png", "rewards.weak--t1.png"):
        assert_png(tmp_path / "charts" / name)
    assert (tmp_path / "r.weak--t1.jsonl").exists()

    matrix = tmp_path / "pairs.yaml"
    matrix.write_text("pairs:\n  - {student: strong, teacher: t1}\n")
    code = main(["eval", str(tasks), "-c", str(config), "-o", str(tmp_path / "r.jsonl"),
                 "--matrix", str(matrix), "--repeats", "2"])  # fmt: skip
    assert code == EXIT_OK
    out = capsys.readouterr().out
    assert "0 ran, 16 skipped" in out and "| strong * | t1 |" in out


def test_cli_matrix_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tasks, config = tasks_file(tmp_path / "tasks.jsonl"), write_config(tmp_path)
    args = ["eval", str(tasks), "-c", str(config), "-o", str(tmp_path / "r.jsonl")]
    assert main([*args, "--student-model", "a", "--baseline"]) == EXIT_USAGE
    assert "--baseline runs one pair" in capsys.readouterr().err
    assert main([*args, "--student-model", "a", "--matrix", "m.yaml"]) == EXIT_USAGE
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"storage": {"backend": "memory"}}))
    code = main(["eval", str(tasks), "-c", str(bare), "-o", "r.jsonl", "--teacher-model", "x"])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "atlas-graph: teacher model 'x' needs a teacher.llm block in the config"
    assert not (tmp_path / "r.config--x.jsonl").exists()


def test_cli_plot_of_a_plain_batch_with_a_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks, config = tasks_file(tmp_path / "tasks.jsonl"), write_config(tmp_path)
    code = main(["eval", str(tasks), "-c", str(config), "-o", str(tmp_path / "r.jsonl"),
                 "--baseline", "--plot", str(tmp_path / "charts")])  # fmt: skip
    assert code == EXIT_FAILED  # the config's student is the weak one
    out = capsys.readouterr().out
    assert (
        f"plots: {tmp_path / 'charts' / 'rewards.png'}, {tmp_path / 'charts' / 'lift.png'}" in out
    )
    assert_png(tmp_path / "charts" / "lift.png")
    assert_png(tmp_path / "charts" / "rewards.png")
