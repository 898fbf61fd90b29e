"""The reward harness (``evaluate_reward`` and ``atlas-graph eval-reward``) on recorded work."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from atlas_graph import AtlasUserError, DatasetError, aevaluate_reward, evaluate_reward
from atlas_graph.cli import EXIT_OK, EXIT_USAGE, main
from atlas_graph.demo import demo_config_path
from atlas_graph.evaluation.reward_eval import (
    arbiter_effect,
    baseline_correlation,
    judge_agreement,
    read_trajectories,
)
from atlas_graph.evaluation.stats import spearman
from atlas_graph.testing import ScriptedChatModel


def atlas_trajectory(task: str, answer: str, baseline: float | None) -> dict[str, Any]:
    """One line shaped like Atlas's ``reward_eval_trajectories.jsonl``."""
    spec = {"id": 1, "description": "Review the logs", "tool": None, "tool_params": None,
            "depends_on": []}  # fmt: skip
    metadata: dict[str, Any] = {"learning_key": "persona:sre"}
    if baseline is not None:
        metadata |= {"triage_dossier": {"summary": task}, "reward_summary": {"score": baseline}}
    return {
        "task": task, "final_answer": answer,
        "plan": {"steps": [spec], "execution_mode": "stepwise"},
        "steps": [{
            "step": spec, "trace": "read the logs", "output": answer, "attempts": 2,
            "guidance": ["Cite the log line."], "status": "ok", "validation": {"valid": True},
            "prior_results": None,
            "metadata": {"attempt_timings": {"student_ms": 900},
                         "attempt_history": [{"attempt": 1, "status": "retry"}]},
        }],
        "execution_mode": "paired", "teacher_intervened": True,
        "adaptive_summary": {"adaptive_mode": "paired", "mode_history": []},
        "session_metadata": metadata, "focus_prompt": "Reward focus: clarity.",
        "trajectory_type": "cold_start", "capture_metadata": {}, "task_metadata": {},
    }  # fmt: skip


TRAJECTORIES = [
    atlas_trajectory("alpha outage", "rolled back", 0.8),
    atlas_trajectory("beta outage", "restarted", 0.5),
    atlas_trajectory("gamma outage", "waited", None),
]
# tier-1 samples of each judge, by task word: process samples in turn, helpfulness steady
SAMPLES = {
    ("alpha", "process"): [0.8, 0.8], ("alpha", "helpfulness"): [0.7, 0.7],
    ("beta", "process"): [0.9, 0.3], ("beta", "helpfulness"): [0.6, 0.6],
    ("gamma", "process"): [0.2, 0.2], ("gamma", "helpfulness"): [0.9, 0.9],
}  # fmt: skip
TWO_JUDGES = {
    "rim": {
        "judges": [{"identifier": "process", "kind": "process"},
                   {"identifier": "helpfulness", "kind": "helpfulness"}],
        "temperatures": [0.2, 0.8],
    }
}  # fmt: skip


def scripted_judges() -> ScriptedChatModel:
    """Judges that answer from ``SAMPLES``: each (task, judge) pair serves its samples in turn."""
    served = {key: itertools.cycle(scores) for key, scores in SAMPLES.items()}

    def reply(messages: list[BaseMessage]) -> str:
        kind = "process" if "process judge" in str(messages[0].content) else "helpfulness"
        word = str(messages[-1].content).split("Task:\n", 1)[1].split()[0]
        score = next(served[(word, kind)])
        return json.dumps({"principles": ["correctness"], "score": score,
                           "rationale": f"{kind} {score}", "uncertainty": 0.1})  # fmt: skip

    return ScriptedChatModel(responder=reply)


def write_jsonl(path: Path, rows: list[Any], header: str = "# reward dataset") -> Path:
    lines = [header] + [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_agreement_escalation_and_the_arbiter_from_scripted_judges(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "trajectories.jsonl", TRAJECTORIES)
    arbiter = ScriptedChatModel(responses=[json.dumps({"score": 0.5, "rationale": "settled"})])
    report = await aevaluate_reward(
        data, config=TWO_JUDGES, models={"judge": scripted_judges(), "arbiter": arbiter}
    )
    alpha, beta, gamma = report.outcomes
    assert [o.line for o in report.outcomes] == [2, 3, 4]
    assert (alpha.escalated, beta.escalated, gamma.escalated) == (False, True, False)
    assert beta.judges["process"].tier1 == pytest.approx(0.6)
    assert beta.judges["process"].score == 0.5  # the arbiter's word
    assert beta.judges["process"].stddev == pytest.approx(0.3)
    assert beta.tier1 == pytest.approx(0.6) and beta.score == pytest.approx(0.55)
    assert alpha.score == pytest.approx(0.75) and gamma.score == pytest.approx(0.55)
    arbiter.assert_complete()

    summary = report.summary
    assert (summary["trajectories"], summary["scored"], summary["errors"]) == (3, 3, 0)
    process = summary["judges"]["process"]
    assert process["mean"] == pytest.approx((0.8 + 0.6 + 0.2) / 3)
    assert (process["min"], process["max"]) == (pytest.approx(0.2), pytest.approx(0.8))
    assert process["escalated"] == 1 and summary["judges"]["helpfulness"]["escalated"] == 0
    agreement = summary["agreement"]
    assert (agreement["trajectories"], agreement["pairs"]) == (3, 3)
    assert agreement["mean_abs_diff"] == pytest.approx((0.1 + 0.0 + 0.7) / 3)
    assert agreement["max_abs_diff"] == pytest.approx(0.7)
    assert agreement["within_threshold"] == pytest.approx(2 / 3)  # gamma's judges disagree
    assert summary["escalation"]["count"] == 1
    assert summary["escalation"]["rate"]["estimate"] == pytest.approx(1 / 3)
    assert summary["arbiter"]["escalated"] == 1 and summary["arbiter"]["changed"] == 1
    assert summary["arbiter"]["mean_change"] == pytest.approx(-0.05)
    baseline = summary["baseline"]
    assert baseline["pairs"] == 2  # gamma recorded no reward
    assert baseline["pearson"] == pytest.approx(1.0)  # two points: 0.75/0.8, 0.55/0.5
    assert baseline["mean_abs_diff"] == pytest.approx(0.05)
    assert report.judges == ["process", "helpfulness"]


def test_the_judges_see_the_recorded_work_not_its_verdicts() -> None:
    judge = ScriptedChatModel(
        responses=[json.dumps({"score": 0.7, "rationale": "ok", "uncertainty": 0.1})],
        repeat_last=True,
    )
    report = evaluate_reward(TRAJECTORIES[:1], models={"judge": judge})
    # a paired trajectory with a teacher verdict is still judged: verdicts are not reused
    assert report.outcomes[0].score == pytest.approx(0.7)
    assert judge.call_count == 3  # the built-in process judge at the three temperatures
    seen = str(judge.calls[0]["messages"][-1].content)
    assert "Task:\nalpha outage" in seen and "Final answer:\nrolled back" in seen
    assert "- step 1 (Review the logs): succeeded, 2 attempt(s)" in seen


def test_our_own_export_replays_to_the_rewards_it_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATLAS_GRAPH_DATABASE_URL", raising=False)
    assert main(["demo", "--no-stream"]) == EXIT_OK
    assert main(["export", "--output", "traces.jsonl"]) == EXIT_OK
    capsys.readouterr()
    argv = ["eval-reward", "traces.jsonl", "-c", str(demo_config_path()),
            "-o", "reward.json", "--markdown", "reward.md"]  # fmt: skip
    assert main([*argv, "--json"]) == EXIT_OK
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report == json.loads((tmp_path / "reward.json").read_text(encoding="utf-8"))
    assert "eval-reward: 4/4 trajectories" in err
    summary = report["summary"]
    assert summary["scored"] == 4 and summary["judges"]["process"]["n"] == 4
    # the auto lane recorded no reward; the others replay to exactly what they recorded
    assert summary["baseline"]["pairs"] == 3
    assert summary["baseline"]["mean_abs_diff"] == pytest.approx(0.0)
    assert summary["escalation"]["count"] == 0  # a Python judge is a rule: never escalated
    markdown = (tmp_path / "reward.md").read_text(encoding="utf-8")
    assert markdown.startswith("# Reward evaluation") and "| process | 4 |" in markdown


def test_a_failing_judge_call_leaves_that_trajectory_unscored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def reply(messages: list[BaseMessage]) -> Any:
        if "beta" in str(messages[-1].content):
            return RuntimeError("provider unavailable")
        return json.dumps({"score": 0.7, "rationale": "ok", "uncertainty": 0.1})

    report = evaluate_reward(TRAJECTORIES, models={"judge": ScriptedChatModel(responder=reply)})
    assert report.errors == 1
    (failed,) = [o for o in report.outcomes if o.error]
    assert failed.line == 2 and "provider unavailable" in failed.error
    assert report.summary["scored"] == 2


def test_no_judge_is_a_user_error() -> None:
    with pytest.raises(AtlasUserError, match="no reward judge"):
        evaluate_reward(TRAJECTORIES, config={})


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"task": None}, '"task" must be a non-empty string'),
        ({"steps": {"1": {}}}, '"steps" must be a list of step objects'),
        ({"steps": [{"output": "x"}]}, "every step needs an id"),
        ({"execution_mode": "turbo"}, '"execution_mode" must be auto, paired, coach or escalate'),
    ],
)
def test_a_bad_trajectory_names_the_file_and_line(
    tmp_path: Path, change: dict[str, Any], problem: str
) -> None:
    data = write_jsonl(tmp_path / "t.jsonl", [TRAJECTORIES[0], {**TRAJECTORIES[1], **change}])
    with pytest.raises(DatasetError) as caught:
        read_trajectories(data)
    assert (caught.value.path, caught.value.line) == (str(data), 3)
    assert str(caught.value) == f"{data} line 3: {caught.value.problem}"
    assert problem in caught.value.problem


def test_cli_bad_data_exits_2_with_one_line_and_atlas_data_runs_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", ["not json"])
    assert main(["eval-reward", str(bad), "-c", str(demo_config_path())]) == EXIT_USAGE
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"atlas-graph: {bad} line 2: not JSON (Expecting value); "
                     "each line must be one JSON object"]  # fmt: skip
    config = tmp_path / "atlas.yaml"
    config.write_text(
        "rim:\n  judges:\n    - identifier: rule\n      kind: python\n"
        "      import_path: atlas_graph.demo:process_judge\n",
        encoding="utf-8",
    )
    data = write_jsonl(tmp_path / "t.jsonl", TRAJECTORIES)
    assert main(["eval-reward", str(data), "-c", str(config)]) == EXIT_OK
    assert "| rule | 3 |" in capsys.readouterr().out


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RULE_JUDGE = (
    "rim:\n  judges:\n    - identifier: rule\n      kind: python\n"
    "      import_path: atlas_graph.demo:process_judge\n"
)


def test_cli_plot_writes_the_rewards_in_file_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    config = tmp_path / "atlas.yaml"
    config.write_text(RULE_JUDGE, encoding="utf-8")
    data = write_jsonl(tmp_path / "t.jsonl", TRAJECTORIES)
    charts = tmp_path / "charts"
    assert main(["eval-reward", str(data), "-c", str(config), "--plot", str(charts)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1] == f"plots: {charts / 'reward-sequence.png'}"
    png = (charts / "reward-sequence.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > len(PNG_SIGNATURE)
    assert sorted(path.name for path in charts.iterdir()) == ["reward-sequence.png"]

    code = main(["eval-reward", str(data), "-c", str(config), "--json", "--plot", str(charts)])
    assert code == EXIT_OK
    captured = capsys.readouterr()
    assert json.loads(captured.out)["summary"]["scored"] == 3  # stdout stays pure JSON
    assert f"plots: {charts / 'reward-sequence.png'}" in captured.err


def test_cli_plot_without_matplotlib_stops_before_any_judge_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    bad = write_jsonl(tmp_path / "bad.jsonl", ["not json"])  # never read
    config = tmp_path / "atlas.yaml"
    config.write_text(RULE_JUDGE, encoding="utf-8")
    code = main(["eval-reward", str(bad), "-c", str(config), "--plot", str(tmp_path / "c")])
    assert code == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "atlas-graph: --plot needs matplotlib: pip install 'atlas-graph[plot]'"
    ]
    assert captured.out == "" and not (tmp_path / "c").exists()


# --------------------------------------------------------------------------- statistics


def test_correlation_of_constructed_scores() -> None:
    perfect = baseline_correlation([0.1, 0.4, 0.9], [0.2, 0.5, 1.0])
    assert perfect["pearson"] == pytest.approx(1.0) and perfect["spearman"] == pytest.approx(1.0)
    assert perfect["mean_abs_diff"] == pytest.approx(0.1)
    inverse = baseline_correlation([0.1, 0.4, 0.9], [0.9, 0.5, 0.0])
    assert inverse["pearson"] == pytest.approx(-1.0, abs=0.05)
    assert inverse["spearman"] == pytest.approx(-1.0)
    # monotone but not linear: Spearman sees a perfect order, Pearson less
    curved = baseline_correlation([1, 2, 3, 4], [1, 2, 3, 100])
    assert curved["spearman"] == pytest.approx(1.0) and curved["pearson"] < 0.9
    assert baseline_correlation([0.5], [0.5])["pearson"] is None
    assert spearman([1, 1, 2], [3, 3, 4]) == pytest.approx(1.0)  # ties share their rank


def test_agreement_and_arbiter_effect_of_constructed_scores() -> None:
    rows = [{"a": 0.8, "b": 0.7, "c": 0.9}, {"a": 0.1, "b": 0.9}, {"a": 0.5}]
    agreement = judge_agreement(rows, threshold=0.15)
    assert agreement["trajectories"] == 2 and agreement["pairs"] == 4
    assert agreement["mean_abs_diff"] == pytest.approx((0.1 + 0.1 + 0.2 + 0.8) / 4)
    assert agreement["within_threshold"] == pytest.approx(0.5)
    effect = arbiter_effect([(0.6, 0.5), (0.4, 0.4), (0.2, 0.5)])
    assert (effect["escalated"], effect["changed"]) == (3, 2)
    assert effect["mean_change"] == pytest.approx(0.2 / 3)
    assert effect["mean_abs_change"] == pytest.approx(0.4 / 3)
    assert effect["max_abs_change"] == pytest.approx(0.3)
    assert judge_agreement([], 0.15)["within_threshold"] is None
