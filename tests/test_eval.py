"""Batch evaluation (``atlas_graph.evaluation`` and ``atlas-graph eval``) with the offline demo."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from eval_user_code import OUTAGE_FLAG

import atlas_graph.evaluation.batch as eval_module
import atlas_graph.executors.local as local_executor
from atlas_graph import demo
from atlas_graph.agents import AgentRequest
from atlas_graph.cli import EXIT_FAILED, EXIT_OK, EXIT_STOPPED, EXIT_USAGE, main
from atlas_graph.cli.eval import ProgressBar
from atlas_graph.demo import DEMO_TASKS, demo_config_path
from atlas_graph.evaluation.batch import (
    TaskFileError,
    aevaluate,
    read_results,
    read_tasks,
    summarize,
)
from atlas_graph.sessions import alist_sessions

USAGE = {"prompt_tokens": 7, "completion_tokens": 3}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test in its own folder: the default SQLite file and flag files land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


class CountingStudent:
    """The demo student that reports token usage, counts its calls, and raises on request."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, request: AgentRequest) -> dict[str, Any]:
        self.calls.append(request.task)
        if "explode" in request.task:
            raise RuntimeError("agent exploded")
        return {**demo.student(request), "usage": USAGE}


@pytest.fixture
def student() -> CountingStudent:
    return CountingStudent()


def demo_config(**teacher: str) -> dict[str, Any]:
    """The offline demo config as a mapping (default SQLite storage in the test folder)."""
    config = yaml.safe_load(demo_config_path().read_text(encoding="utf-8"))
    config["teacher"].update(teacher)
    return config


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def lane_tasks() -> list[dict[str, Any]]:
    """One task per demo lane, plus one the probe routes (no mode)."""
    rows: list[dict[str, Any]] = [
        {"task": task, "mode": lane, "ground_truth": lane} for lane, task in DEMO_TASKS
    ]
    rows[0]["id"] = "first"
    rows.append({"task": "Add 2 and 2.", "session_metadata": {"suite": "smoke"}})
    return rows


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def arun_spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Wraps ``arun`` as ``aevaluate`` calls it: counts runs and the most running at once."""
    seen: dict[str, Any] = {"runs": 0, "running": 0, "most": 0, "graphs": set()}
    real = eval_module.arun

    async def counted(*args: Any, **kwargs: Any) -> Any:
        seen["graphs"].add(id(kwargs.get("graph")))
        seen["runs"] += 1
        seen["running"] += 1
        seen["most"] = max(seen["most"], seen["running"])
        try:
            return await real(*args, **kwargs)
        finally:
            seen["running"] -= 1

    monkeypatch.setattr(eval_module, "arun", counted)
    yield seen


async def test_batch_across_lanes_with_bounded_concurrency(
    tmp_path: Path, student: CountingStudent, arun_spy: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    opened: list[Any] = []
    real_open = local_executor.aopen_graph

    def counted_open(*args: Any, **kwargs: Any) -> Any:
        opened.append(args)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(local_executor, "aopen_graph", counted_open)
    tasks = write_jsonl(tmp_path / "tasks.jsonl", lane_tasks())
    output = tmp_path / "out" / "results.jsonl"

    report = await aevaluate(
        tasks, config=demo_config(), output=output, concurrency=2, agent=student
    )

    assert arun_spy["runs"] == 5
    assert arun_spy["most"] == 2  # two sessions overlapped, never more
    assert len(opened) == 1  # one graph and one persistence for the whole batch
    assert len(arun_spy["graphs"]) == 1 and id(None) not in arun_spy["graphs"]
    written = {line["id"]: line for line in lines_of(output)}
    assert [line["id"] for line in report.results] == [row.id for row in read_tasks(tasks)]
    assert written == {line["id"]: line for line in report.results}
    by_task = {line["task"]: line for line in report.results}
    for lane, task in DEMO_TASKS:
        line = by_task[task]
        assert line["lane"] == lane
        assert line["status"] == "succeeded"
        assert line["ground_truth"] == lane
        assert line["error"] is None
        assert line["tokens"] > 0 and line["tokens"] % 10 == 0  # 7 + 3 per student call
    assert by_task["Add 19 and 23."]["id"] == "first"
    assert by_task["Add 19 and 23."]["final_answer"] == "42"
    assert by_task[DEMO_TASKS[2][1]]["retries"] == 1  # the coach lane's unit slip
    assert by_task["Add 2 and 2."]["lane"] == "paired"  # routed by the probe's fallback
    # every session ran in the one shared storage
    stored = {row["session_id"] for row in await alist_sessions(demo_config())}
    assert stored == {line["session_id"] for line in report.results}
    assert len(stored) == 5


async def test_rerun_skips_finished_tasks_and_runs_new_ones(
    tmp_path: Path, student: CountingStudent, arun_spy: dict[str, Any]
) -> None:
    rows = lane_tasks()
    tasks = write_jsonl(tmp_path / "tasks.jsonl", rows)
    output = tmp_path / "results.jsonl"
    first = await aevaluate(tasks, config=demo_config(), output=output, concurrency=3,
                            agent=student)  # fmt: skip
    assert (first.ran, first.skipped) == (5, 0)
    student.calls.clear()
    runs_before = arun_spy["runs"]

    again = await aevaluate(tasks, config=demo_config(), output=output, concurrency=3,
                            agent=student)  # fmt: skip

    assert (again.ran, again.skipped) == (0, 5)
    assert arun_spy["runs"] == runs_before  # no session started
    assert student.calls == []
    assert len(lines_of(output)) == 5
    assert again.results == first.results
    assert len(await alist_sessions(demo_config())) == 5

    write_jsonl(tasks, [*rows, {"task": "Add 30 and 12.", "mode": "auto"}])
    grown = await aevaluate(tasks, config=demo_config(), output=output, concurrency=3,
                            agent=student)  # fmt: skip
    assert (grown.ran, grown.skipped) == (1, 5)
    assert student.calls == ["Add 30 and 12."]
    assert [line["final_answer"] for line in lines_of(output)][-1] == "42"


async def test_stable_ids_survive_a_rerun(tmp_path: Path) -> None:
    rows = [{"task": "Add 1 and 2."}, {"task": "Add 1 and 2."}, {"id": 7, "task": "Add 3 and 4."}]
    path = write_jsonl(tmp_path / "tasks.jsonl", rows)
    ids = [item.id for item in read_tasks(path)]
    assert ids == [item.id for item in read_tasks(path)]
    assert len(set(ids)) == 3  # the same text on two lines is two tasks
    assert ids[2] == "7"


@pytest.mark.parametrize(
    ("text", "line", "names"),
    [
        ('{"task": "Add 1 and 2."}\n{"task": "Add 2 and 3."\n', 2, "not JSON"),
        ('{"task": "Add 1 and 2."}\n\n["Add 2 and 3."]\n', 3, "JSON object"),
        ('{"task": ""}\n', 1, '"task" must be a non-empty string'),
        ('{"task": "a", "session_metadata": [1]}\n', 1, '"session_metadata" must be'),
        ('{"task": "a", "mode": "fast"}\n', 1, '"mode" must be one of auto'),
        ('{"task": "a", "expected": 3}\n', 1, "unknown key(s) expected"),
        ('{"id": "x", "task": "a"}\n{"id": "x", "task": "b"}\n', 2, "repeats line 1"),
    ],
)
async def test_malformed_task_file_stops_before_any_session(
    tmp_path: Path, student: CountingStudent, arun_spy: dict[str, Any],
    text: str, line: int, names: str,
) -> None:  # fmt: skip
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(text, encoding="utf-8")
    output = tmp_path / "results.jsonl"
    with pytest.raises(TaskFileError) as caught:
        await aevaluate(tasks, config=demo_config(), output=output, agent=student)
    message = str(caught.value)
    assert f"line {line}:" in message and names in message
    assert "\n" not in message
    assert arun_spy["runs"] == 0 and student.calls == []
    assert not output.exists()


def test_cli_reports_a_bad_task_file_with_usage_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"task": "Add 1 and 2."}\n{"tsk": "Add 1 and 2."}\n', encoding="utf-8")
    code = main(["eval", str(tasks), "-c", str(demo_config_path()), "-o", "results.jsonl"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert err.startswith("atlas-graph: ") and "line 2: unknown key(s) tsk" in err
    assert not Path("results.jsonl").exists()


def test_cli_rejects_zero_concurrency(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tasks = write_jsonl(tmp_path / "tasks.jsonl", [{"task": "Add 1 and 2."}])
    with pytest.raises(SystemExit) as caught:
        main(["eval", str(tasks), "-c", str(demo_config_path()), "-o", "r.jsonl", "-j", "0"])
    assert caught.value.code == EXIT_USAGE
    assert "must be at least 1" in capsys.readouterr().err


async def test_raising_agent_is_recorded_and_the_batch_goes_on(
    tmp_path: Path, student: CountingStudent
) -> None:
    rows = [
        {"task": "Add 4 and 5.", "mode": "auto"},
        {"task": "Add 6 and 7 and explode.", "mode": "paired"},
        {"task": "Multiply 3 by 4.", "mode": "paired"},
    ]
    tasks = write_jsonl(tmp_path / "tasks.jsonl", rows)
    report = await aevaluate(tasks, config=demo_config(), output=tmp_path / "r.jsonl",
                             concurrency=2, agent=student)  # fmt: skip
    statuses = {line["task"]: line["status"] for line in report.results}
    assert statuses == {
        "Add 4 and 5.": "succeeded", "Add 6 and 7 and explode.": "failed",
        "Multiply 3 by 4.": "succeeded",
    }  # fmt: skip
    (broken,) = [line for line in report.results if line["status"] == "failed"]
    assert broken["error"] == "step 1: agent failed: RuntimeError: agent exploded"
    assert report.failed == 1 and report.errors == 0


async def test_session_error_is_recorded_and_the_rerun_continues_it(
    tmp_path: Path, student: CountingStudent
) -> None:
    config = demo_config(validator="eval_user_code:outage_validator")
    rows = [
        {"id": "ok-1", "task": "Add 4 and 5.", "mode": "paired"},
        {"id": "outage", "task": "Add 5 and 6 for the outage report.", "mode": "paired"},
        {"id": "ok-2", "task": "Multiply 3 by 4.", "mode": "paired"},
    ]
    tasks = write_jsonl(tmp_path / "tasks.jsonl", rows)
    output = tmp_path / "results.jsonl"
    Path(OUTAGE_FLAG).touch()

    report = await aevaluate(tasks, config=config, output=output, concurrency=2, agent=student)

    by_id = {line["id"]: line for line in report.results}
    assert [by_id[key]["status"] for key in ("ok-1", "outage", "ok-2")] == [
        "succeeded", "error", "succeeded",
    ]  # fmt: skip
    stopped = by_id["outage"]
    assert "stopped in validate" in stopped["error"]
    assert "RuntimeError: validator backend unavailable" in stopped["error"]
    assert report.errors == 1

    Path(OUTAGE_FLAG).unlink()
    student.calls.clear()
    again = await aevaluate(tasks, config=config, output=output, concurrency=2, agent=student)

    assert (again.ran, again.skipped) == (1, 2)
    resumed = {line["id"]: line for line in again.results}["outage"]
    assert resumed["status"] == "succeeded"
    assert resumed["session_id"] == stopped["session_id"]  # the same thread, continued
    assert student.calls == []  # the step's answer came from the checkpoint, not a new call
    assert resumed["final_answer"] == "11"
    assert [line["id"] for line in lines_of(output)].count("outage") == 2
    assert read_results(output)["outage"]["status"] == "succeeded"  # the last line wins


def test_cli_batch_summary_matches_the_result_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        *lane_tasks(),
        {"task": "Add 7 and 8 for the outage report.", "mode": "coach", "ground_truth": 15},
    ]
    tasks = write_jsonl(tmp_path / "tasks.jsonl", rows)
    config = demo_config(validator="eval_user_code:outage_validator")
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    Path(OUTAGE_FLAG).touch()

    argv = ["eval", str(tasks), "-c", str(config_file), "-o", "results.jsonl", "-j", "3"]
    code = main([*argv, "--json"])

    out, err = capsys.readouterr()
    assert code == EXIT_STOPPED  # one session stopped with an error
    summary = json.loads(out)
    lines = lines_of(Path("results.jsonl"))
    assert summary["ran"] == len(lines) == 6
    total = summary["total"]
    assert total["sessions"] == 6
    assert total["succeeded"] == sum(line["status"] == "succeeded" for line in lines) == 5
    assert total["errors"] == sum(line["status"] == "error" for line in lines) == 1
    assert total["success_rate"] == pytest.approx(5 / 6)
    rewards = [line["reward"] for line in lines if line["reward"] is not None]
    assert total["mean_reward"] == pytest.approx(sum(rewards) / len(rewards))
    assert total["retries"] == sum(line["retries"] for line in lines) == 1
    assert total["tokens"] == sum(line["tokens"] for line in lines)
    for lane, row in summary["lanes"].items():
        members = [line for line in lines if (line["lane"] or "-") == lane]
        assert row["sessions"] == len(members) > 0
        assert row["succeeded"] == sum(line["status"] == "succeeded" for line in members)
    assert summary["lanes"]["-"]["errors"] == 1  # stopped before its lane was recorded
    assert summary["lanes"]["paired"]["sessions"] == 2
    assert "eval: 6/6 tasks, 1 error" in err

    Path(OUTAGE_FLAG).unlink()
    code = main(argv)
    out, _ = capsys.readouterr()
    assert code == EXIT_OK
    assert "1 ran, 5 skipped" in out
    table = {row.split()[0]: row.split() for row in out.splitlines()[:9] if row[:1] != "-"}
    assert table["all"][1:6] == ["6", "6", "0", "0", "100.0%"]
    assert table["coach"][1] == "2"


def test_summary_counts_by_lane() -> None:
    lines = [
        {"id": "a", "status": "succeeded", "lane": "auto", "reward": None, "retries": 0,
         "tokens": 4},
        {"id": "b", "status": "failed", "lane": "coach", "reward": 0.25, "retries": 2,
         "tokens": 6},
        {"id": "c", "status": "succeeded", "lane": "coach", "reward": 0.75, "retries": 1,
         "tokens": 10},
    ]  # fmt: skip
    summary = summarize(lines)
    assert list(summary.lanes) == ["auto", "coach"]
    coach = summary.lanes["coach"]
    assert (coach.sessions, coach.succeeded, coach.failed, coach.retries, coach.tokens) == (
        2, 1, 1, 3, 16,
    )  # fmt: skip
    assert coach.mean_reward == pytest.approx(0.5)
    assert summary.lanes["auto"].mean_reward is None
    assert summary.total.success_rate == pytest.approx(2 / 3)
    assert summary.total.mean_reward == pytest.approx(0.5)


def test_cli_exits_failed_when_a_session_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = demo_config()
    config["agent"].update(import_path="eval_user_code", attribute="exploding_student")
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    rows = [{"task": "Add 1 and 2.", "mode": "auto"}, {"task": "Add 1 and 3, explode."}]
    tasks = write_jsonl(tmp_path / "tasks.jsonl", rows)

    code = main(["eval", str(tasks), "-c", str(config_file), "-o", "results.jsonl"])

    assert code == EXIT_FAILED, capsys.readouterr().err
    assert [line["status"] for line in lines_of(Path("results.jsonl"))].count("failed") == 1


def test_torn_last_result_line_is_dropped_before_appending(tmp_path: Path) -> None:
    output = tmp_path / "results.jsonl"
    good = {"id": "a", "status": "succeeded"}
    output.write_text(json.dumps(good) + '\n{"id": "b", "sta', encoding="utf-8")
    assert read_results(output) == {"a": good}
    writer = eval_module.ResultsWriter(output)
    writer.write({"id": "c", "status": "failed"})
    writer.close()
    assert [line["id"] for line in lines_of(output)] == ["a", "c"]


def test_broken_result_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    output = tmp_path / "results.jsonl"
    output.write_text('{"id": "a"}\nnot json\n{"id": "b"}\n', encoding="utf-8")
    with pytest.raises(TaskFileError, match=r"results\.jsonl line 2: not JSON"):
        read_results(output)


def test_progress_bar_redraws_on_a_terminal_and_prints_lines_otherwise() -> None:
    terminal = io.StringIO()
    bar = ProgressBar(terminal, tty=True)
    bar.start(4, 1)
    for status in ("succeeded", "error", "failed"):
        bar.update({"status": status})
    bar.close()
    frames = terminal.getvalue().split("\r")
    assert frames[-1].startswith("eval [" + "#" * 24 + "] 4/4 tasks, 1 error")
    assert "1 of 4 tasks already done" in frames[0]

    plain = io.StringIO()
    bar = ProgressBar(plain, tty=False)
    bar.start(30, 0)
    for _ in range(30):
        bar.update({"status": "succeeded"})
    bar.close()
    printed = plain.getvalue().splitlines()
    assert "\r" not in plain.getvalue()
    # one line at the start and one per tenth of the batch
    assert [line.split()[1] for line in printed] == [f"{n}/30" for n in range(0, 31, 3)]


async def test_batch_on_postgres_shares_one_pool(
    pg_url: str, tmp_path: Path, student: CountingStudent
) -> None:
    config = {**demo_config(), "storage": {"database_url": pg_url}}
    tasks = write_jsonl(tmp_path / "tasks.jsonl", lane_tasks())
    report = await aevaluate(tasks, config=config, output=tmp_path / "r.jsonl", concurrency=4,
                             agent=student)  # fmt: skip
    assert report.summary.total.succeeded == 5
    stored = {row["session_id"] for row in await alist_sessions(config, limit=500)}
    assert {line["session_id"] for line in report.results} <= stored


def test_evaluate_sync_takes_task_mappings_and_keeps_results_in_memory(
    tmp_path: Path, student: CountingStudent
) -> None:
    import atlas_graph

    config = {**demo_config(), "storage": {"backend": "memory"}}
    report = atlas_graph.evaluate(
        [{"task": "Add 19 and 23.", "mode": "auto"}, {"task": "Multiply 6 by 7."}],
        config=config, concurrency=2, agent=student,
    )  # fmt: skip
    assert report.output is None and report.ran == 2
    assert [line["final_answer"] for line in report.results] == ["42", "42"]
    assert report.summary.total.tokens == sum(line["tokens"] for line in report.results) > 0
    assert list(tmp_path.iterdir()) == []  # memory storage, no output: nothing written
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        atlas_graph.evaluate([{"task": "Add 1 and 2."}], config=config, concurrency=0)
