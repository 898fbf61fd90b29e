"""The probe harness (``evaluate_probe`` and ``atlas-graph eval-probe``) on Atlas-shaped data."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import openai_server as wire
import pytest
import yaml
from langchain_core.messages import BaseMessage

from atlas_graph import DatasetError, aevaluate_probe, evaluate_probe
from atlas_graph.cli import EXIT_OK, EXIT_USAGE, main
from atlas_graph.cli.eval import ProgressBar
from atlas_graph.evaluation.probe_eval import (
    confusion_matrix,
    history_from_atlas,
    lane_scores,
    read_probe_dataset,
)
from atlas_graph.testing import ScriptedChatModel

KEY_ENV = "ATLAS_PROBE_EVAL_TEST_KEY"


def atlas_history(score: float, high: int = 0, low: int = 0) -> dict[str, Any]:
    """A ``learning_history`` in the aggregated shape of Atlas's probe datasets."""
    return {
        "entries": [{
            "reward": {"score": score, "judges": [{"name": "process", "score": score}]},
            "student_learning": "Key insights.", "teacher_learning": "Guidance focus.",
            "created_at": "2025-10-01T12:00:00Z", "completed_at": "2025-10-01T12:15:00Z",
        }],
        "count": 1, "total_count": 12, "scores": [score], "average_score": score,
        "overall_average_score": score, "recent_high_score_streak": high,
        "recent_low_score_streak": low, "limit": 10,
    }  # fmt: skip


def atlas_line(task: str, expected: str, score: float, scenario: str) -> dict[str, Any]:
    """One line shaped like Atlas's ``probe_eval_synthetic.jsonl``."""
    return {
        "task": task, "learning_history": atlas_history(score), "expected_mode": expected,
        "metadata": {"scenario": scenario, "synthetic": True},
    }  # fmt: skip


# what the scripted probe answers, by a word of the task: lanes by the default thresholds
CONFIDENCE = {"security": 0.9, "customer": 0.7, "outage": 0.5, "incident": 0.1}

LINES = [
    atlas_line("Summarize security posture for incident", "auto", 0.92, "security"),  # auto
    atlas_line("Summarize security posture for service", "auto", 0.9, "security"),  # auto
    atlas_line("Draft customer update", "paired", 0.48, "customer"),  # paired
    atlas_line("Draft customer update for outage", "coach", 0.4, "customer"),  # paired: miss
    atlas_line("Investigate outage", "coach", 0.4, "sre"),  # coach
]


def probe_reply(messages: list[BaseMessage]) -> str:
    """The scripted probe: a confidence chosen by the first known word of the task."""
    text = str(messages[-1].content)
    summary = json.loads(text.split("\n", 1)[1].split("\n\nRecent history")[0])["summary"]
    word = next(word for word in ("customer", "security", "outage") if word in summary)
    return json.dumps({"mode": None, "confidence": CONFIDENCE[word], "evidence": [word]})


def write_jsonl(path: Path, rows: list[Any], header: str = "# probe dataset") -> Path:
    lines = [header, ""] + [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_confusion_matrix_counts_the_lanes_a_scripted_probe_picks(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "probe.jsonl", LINES)
    probe = ScriptedChatModel(responder=probe_reply)
    stream = io.StringIO()
    report = evaluate_probe(
        data, models={"probe": probe}, concurrency=2,
        progress=ProgressBar(stream, tty=False, label="eval-probe", unit="samples"),
    )  # fmt: skip
    summary = report.summary
    assert [o.chosen for o in report.outcomes] == ["auto", "auto", "paired", "paired", "coach"]
    assert [o.line for o in report.outcomes] == [3, 4, 5, 6, 7]  # the comment and blank skipped
    assert summary["confusion"]["auto"] == {"auto": 2, "paired": 0, "coach": 0, "escalate": 0}
    assert summary["confusion"]["paired"] == {"auto": 0, "paired": 1, "coach": 0, "escalate": 0}
    assert summary["confusion"]["coach"] == {"auto": 0, "paired": 1, "coach": 1, "escalate": 0}
    assert (summary["samples"], summary["scored"], summary["correct"]) == (5, 5, 4)
    assert summary["accuracy"]["estimate"] == pytest.approx(0.8)
    assert summary["accuracy"]["low"] < 0.8 < summary["accuracy"]["high"]
    assert summary["fail_open"] == 0
    lanes = summary["lanes"]
    assert lanes["paired"]["precision"] == pytest.approx(0.5)
    assert lanes["paired"]["recall"] == 1.0
    assert lanes["coach"]["recall"] == pytest.approx(0.5) and lanes["coach"]["precision"] == 1.0
    assert lanes["escalate"]["precision"] is None  # never chosen, never expected
    assert summary["latency_p50"] is not None and summary["latency_p95"] >= 0
    assert probe.call_count == 5
    assert stream.getvalue().splitlines()[-1].startswith("eval-probe: 5/5 samples")


def test_a_garbage_reply_fails_open_to_the_fallback_lane_and_is_counted() -> None:
    def reply(messages: list[BaseMessage]) -> str:
        if "outage" in str(messages[-1].content):
            return "I would rather not say."
        return probe_reply(messages)

    config = {"adaptive_teaching": {"probe": {"fallback_mode": "escalate"}}}
    report = evaluate_probe(
        LINES, config=config, models={"probe": ScriptedChatModel(responder=reply)}
    )
    summary = report.summary
    failed = [o for o in report.outcomes if o.fail_open]
    assert [o.line for o in failed] == [4, 5]  # positions in the list given
    assert all(o.chosen == "escalate" and o.source == "fallback" for o in failed)
    assert "probe reply unreadable" in failed[0].reason
    assert summary["fail_open"] == 2
    assert summary["confusion"]["coach"]["escalate"] == 2
    assert summary["accuracy"]["estimate"] == pytest.approx(3 / 5)  # fallbacks count as chosen
    assert summary["answered_accuracy"]["estimate"] == 1.0  # the probe's own answers


async def test_the_probe_reads_atlas_history_as_its_own_summary() -> None:
    probe = ScriptedChatModel(responder=probe_reply)
    line = {**atlas_line("Draft customer update", "paired", 0.55, "customer")}
    line["learning_history"] = atlas_history(0.55, high=0, low=2)
    report = await aevaluate_probe(
        [line, {"task": "Draft customer note", "learning_history": {}}],
        config={"orchestration": {"forced_mode": "coach"}},  # overrides do not hide the probe
        models={"probe": probe},
        concurrency=1,
    )
    first, second = (str(call["messages"][-1].content) for call in probe.calls)
    history = json.loads(first.split("Recent history of this fingerprint:\n", 1)[1])
    assert history["reward_mean"] == 0.55 and history["failure_streak"] == 2
    assert history["session_count"] == 12
    assert history["sessions"] == [{"lane": None, "reward": 0.55, "retries": None, "status": None}]
    assert history["fingerprint"]  # the fingerprint triage would give the task
    assert "(no earlier sessions)" in second
    assert [o.chosen for o in report.outcomes] == ["paired", "paired"]
    assert report.summary["scored"] == 1  # the second line names no expected mode


def test_history_in_our_own_shape_passes_unchanged() -> None:
    ours = {"fingerprint": "fp", "session_count": 1, "sessions": [], "reward_mean": None}
    assert history_from_atlas(ours) == ours
    assert history_from_atlas({}) is None and history_from_atlas(None) is None


def test_lane_scores_from_a_confusion_matrix() -> None:
    matrix = confusion_matrix([("auto", "auto"), ("auto", "paired"), ("coach", "coach")])
    assert (
        matrix["auto"]["paired"] == 1 and sum(map(sum, (r.values() for r in matrix.values()))) == 3
    )
    scores = lane_scores(matrix)
    assert scores["auto"] == {"support": 2, "chosen": 1, "precision": 1.0, "recall": 0.5}
    assert scores["paired"] == {"support": 0, "chosen": 1, "precision": 0.0, "recall": None}


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"task": "", "expected_mode": "auto"}, '"task" must be a non-empty string'),
        (
            {"task": "t", "expected_mode": "solo"},
            "\"expected_mode\" must be one of auto, paired, coach, escalate, got 'solo'",
        ),
        ({"task": "t", "learning_history": [1]}, '"learning_history" must be a JSON object'),
        ("[1, 2", "not JSON"),
    ],
)
def test_a_bad_line_names_the_file_the_line_and_the_fix(
    tmp_path: Path, row: Any, problem: str
) -> None:
    data = write_jsonl(tmp_path / "probe.jsonl", [LINES[0], row])
    with pytest.raises(DatasetError) as caught:
        read_probe_dataset(data)
    assert (caught.value.path, caught.value.line) == (str(data), 4)
    assert problem in str(caught.value) and str(caught.value).startswith(f"{data} line 4: ")


def test_cli_reports_a_bad_line_in_one_line_with_usage_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(tmp_path / "probe.jsonl", [{"task": "t", "expected_mode": "solo"}])
    config = tmp_path / "atlas.yaml"
    config.write_text("storage: {backend: memory}\n", encoding="utf-8")
    assert main(["eval-probe", str(data), "-c", str(config)]) == EXIT_USAGE
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and f"{data} line 3:" in error


def test_cli_without_a_probe_model_says_what_to_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = write_jsonl(tmp_path / "probe.jsonl", LINES)
    config = tmp_path / "atlas.yaml"
    config.write_text("storage: {backend: memory}\n", encoding="utf-8")
    assert main(["eval-probe", str(data), "-c", str(config)]) == EXIT_USAGE
    assert "adaptive_teaching.probe.llm" in capsys.readouterr().err


@pytest.fixture
def hermetic(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is set, nothing is traced, and no proxy can route loopback traffic elsewhere."""
    monkeypatch.setenv(KEY_ENV, "sk-test")
    tracing = ("LANGSMITH_TRACING", "LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING_V2")
    proxies = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")
    for name in (*tracing, *proxies):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.mark.usefixtures("hermetic")
def test_cli_writes_json_and_markdown_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def handler(body: dict[str, Any]) -> Any:
        text = json.dumps(body["messages"])
        confidence = 0.9 if "security" in text else 0.5
        reply = {"mode": None, "confidence": confidence, "evidence": []}
        for name in wire.tool_names(body):
            return wire.tool_call(name, reply)
        return wire.structured(reply)

    data = write_jsonl(tmp_path / "probe.jsonl", LINES)
    with wire.OpenAIServer(handler) as server:
        llm = {"provider": "openai", "model": "probe-test", "api_key_env": KEY_ENV,
               "api_base": server.base_url, "timeout_seconds": 5, "max_retries": 0}  # fmt: skip
        config = tmp_path / "atlas.yaml"
        config.write_text(
            yaml.safe_dump(
                {"storage": {"backend": "memory"}, "adaptive_teaching": {"probe": {"llm": llm}}}
            ),
            encoding="utf-8",
        )
        out, md = tmp_path / "report.json", tmp_path / "report.md"
        code = main(["eval-probe", str(data), "-c", str(config), "-o", str(out),
                     "--markdown", str(md), "--json", "-j", "1"])  # fmt: skip
    assert code == EXIT_OK
    printed = json.loads(capsys.readouterr().out)
    written = json.loads(out.read_text(encoding="utf-8"))
    assert printed == written
    assert written["model"] == "probe-test"
    assert [s["chosen"] for s in written["samples"]] == ["auto", "auto", "coach", "coach", "coach"]
    assert written["summary"]["correct"] == 4
    assert set(written["summary"]) >= {"accuracy", "confusion", "lanes", "fail_open",
                                       "latency_p50", "latency_p95", "decisions"}  # fmt: skip
    markdown = md.read_text(encoding="utf-8")
    assert markdown.startswith("# Probe evaluation")
    assert "| coach | 0 | 0 | 2 | 0 |" in markdown and "| paired | 0 | 0 | 1 | 0 |" in markdown


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def hide_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every ``import matplotlib...`` fail, as it does where it is not installed."""
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


@pytest.mark.usefixtures("hermetic")
def test_cli_plot_writes_the_confusion_matrix_and_names_it_on_stderr_with_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")

    def handler(body: dict[str, Any]) -> Any:
        confidence = 0.9 if "security" in json.dumps(body["messages"]) else 0.5
        reply = {"mode": None, "confidence": confidence, "evidence": []}
        for name in wire.tool_names(body):
            return wire.tool_call(name, reply)
        return wire.structured(reply)

    data = write_jsonl(tmp_path / "probe.jsonl", LINES)
    charts = tmp_path / "charts"
    with wire.OpenAIServer(handler) as server:
        llm = {"provider": "openai", "model": "probe-test", "api_key_env": KEY_ENV,
               "api_base": server.base_url, "timeout_seconds": 5, "max_retries": 0}  # fmt: skip
        config = tmp_path / "atlas.yaml"
        config.write_text(
            yaml.safe_dump(
                {"storage": {"backend": "memory"}, "adaptive_teaching": {"probe": {"llm": llm}}}
            ),
            encoding="utf-8",
        )
        code = main(["eval-probe", str(data), "-c", str(config), "--json", "-j", "1",
                     "--plot", str(charts)])  # fmt: skip
    assert code == EXIT_OK
    captured = capsys.readouterr()
    assert json.loads(captured.out)["summary"]["correct"] == 4  # stdout stays pure JSON
    assert f"plots: {charts / 'probe-confusion.png'}" in captured.err
    png = (charts / "probe-confusion.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > len(PNG_SIGNATURE)


def test_cli_plot_without_matplotlib_stops_before_the_probe_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_matplotlib(monkeypatch)
    data = write_jsonl(tmp_path / "probe.jsonl", LINES)
    config = tmp_path / "atlas.yaml"  # no probe model: running would fail differently
    config.write_text("storage: {backend: memory}\n", encoding="utf-8")
    code = main(["eval-probe", str(data), "-c", str(config), "--plot", str(tmp_path / "c")])
    assert code == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "atlas-graph: --plot needs matplotlib: pip install 'atlas-graph[plot]'"
    ]
    assert captured.out == "" and not (tmp_path / "c").exists()
