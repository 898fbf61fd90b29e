"""``atlas-graph export``: the demo-then-export flow, stdout, empty results and bad flags."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from export_records import SECRETS, run_demo_lanes

from atlas_graph.cli import main
from atlas_graph.config import StorageConfig
from atlas_graph.storage.persistence import aopen_persistence


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test works in an empty folder (its own embedded SQLite under .atlas_graph/)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATLAS_GRAPH_DATABASE_URL", raising=False)
    return tmp_path


@pytest.fixture
def demo_done(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--no-stream"]) == 0
    capsys.readouterr()


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_demo_then_export_writes_every_lane(
    demo_done: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "--output", "traces.jsonl"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == "4 sessions, 6 steps written to traces.jsonl"
    traces = read_lines(tmp_path / "traces.jsonl")
    assert sorted(str(trace["execution_mode"]) for trace in traces) == [
        "auto", "coach", "escalate", "paired"]  # fmt: skip
    assert all(trace["session_metadata"]["demo"] is True for trace in traces)  # type: ignore[index]


def test_export_and_review_need_only_the_storage_not_the_models(
    demo_done: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # a config whose student is an OpenAI model: its key is needed to run, not to export
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = tmp_path / "openai.yaml"
    config.write_text("agent:\n  type: openai\n  llm: {model: gpt-4.1-mini}\n", encoding="utf-8")
    assert main(["export", "-c", str(config), "--output", "traces.jsonl"]) == 0
    assert capsys.readouterr().err.strip() == "4 sessions, 6 steps written to traces.jsonl"
    assert main(["review", "list", "-c", str(config), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 4


def test_output_dash_writes_json_lines_to_stdout(
    demo_done: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["export", "-o", "-", "--min-reward", "0.95", "--trajectory-event-limit", "2"])
    assert code == 0
    out, err = capsys.readouterr()
    traces = [json.loads(line) for line in out.splitlines()]
    assert {trace["execution_mode"] for trace in traces} == {"paired", "escalate"}
    assert all(trace["session_reward"]["score"] >= 0.95 for trace in traces)
    assert all(len(trace["trajectory_events"]) == 2 for trace in traces)
    assert err.strip() == "2 sessions, 4 steps written to stdout"


def test_limit_offset_and_session_id_flags(
    demo_done: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "-o", "all.jsonl"]) == 0
    every = [str(trace["session_id"]) for trace in read_lines(tmp_path / "all.jsonl")]
    assert main(["export", "-o", "page.jsonl", "--limit", "2", "--offset", "1",
                 "--batch-size", "1"]) == 0  # fmt: skip
    assert [trace["session_id"] for trace in read_lines(tmp_path / "page.jsonl")] == every[1:3]
    assert main(["export", "-o", "one.jsonl", "--session-id", every[0]]) == 0
    assert [trace["session_id"] for trace in read_lines(tmp_path / "one.jsonl")] == every[:1]
    assert main(["export", "-o", "none.jsonl", "--status", "failed"]) == 0
    assert read_lines(tmp_path / "none.jsonl") == []


def test_nothing_matched_is_not_an_error_unless_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "-o", "out.jsonl"]) == 0
    assert "0 sessions, 0 steps written to out.jsonl" in capsys.readouterr().err
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8") == ""
    assert not (tmp_path / ".atlas_graph").exists(), "reading creates no storage"
    assert main(["export", "-o", "-", "--fail-if-empty"]) == 1
    assert "0 sessions" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--since", "tuesday"], "since: 'tuesday' is not an ISO 8601 date or time"),
        (["--limit", "-1"], "limit must be a whole number >= 0"),
        (["--batch-size", "0"], "batch_size must be a whole number >= 1"),
        (["-o", "missing/dir/out.jsonl"], "--output missing/dir/out.jsonl: cannot write"),
        (["--config", "nope.yaml"], "nope.yaml: file not found"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    demo_done: None, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["export", "-o", "out.jsonl", *flags]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_unknown_status_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["export", "-o", "out.jsonl", "--status", "done"])
    assert raised.value.code == 2
    assert "invalid choice: 'done'" in capsys.readouterr().err


def test_require_approval_makes_approved_the_default(
    demo_done: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "review.yaml"
    config.write_text("runtime_safety:\n  review:\n    require_approval: true\n", encoding="utf-8")
    assert main(["export", "-c", str(config), "-o", "gated.jsonl"]) == 0
    assert read_lines(tmp_path / "gated.jsonl") == []
    assert main(["export", "-o", "-"]) == 0
    first = json.loads(capsys.readouterr().out.splitlines()[0])["session_id"]
    assert main(["review", "approve", first, "--note", "checked by hand"]) == 0
    assert main(["export", "-c", str(config), "-o", "gated.jsonl"]) == 0
    (approved,) = read_lines(tmp_path / "gated.jsonl")
    assert approved["session_id"] == first
    assert (approved["review_status"], approved["review_notes"]) == ("approved", "checked by hand")
    # an explicit --review-status wins over the config's default
    assert main(["export", "-c", str(config), "-o", "p.jsonl", "--review-status", "pending"]) == 0
    assert len(read_lines(tmp_path / "p.jsonl")) == 3


async def test_export_from_postgres_by_database_url(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with aopen_persistence(StorageConfig(database_url=pg_url)) as persistence:
        sessions = await run_demo_lanes(persistence, prefix=f"cli-{tmp_path.name}")
    args = ["export", "--database-url", pg_url, "-o", "pg.jsonl"]
    for session_id in sessions.values():
        args += ["--session-id", session_id]
    code = await asyncio.to_thread(main, args)  # main() runs its own event loop
    assert code == 0
    traces = read_lines(tmp_path / "pg.jsonl")
    assert {trace["session_id"] for trace in traces} == set(sessions.values())
    text = (tmp_path / "pg.jsonl").read_text(encoding="utf-8")
    assert not any(secret in text for secret in SECRETS.values())
    assert "4 sessions, 6 steps written to pg.jsonl" in capsys.readouterr().err


def test_database_url_errors_hide_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://atlas:sup3r-secret@127.0.0.1:1/atlas"
    assert main(["export", "--database-url", url, "-o", "x.jsonl"]) == 2
    err = capsys.readouterr().err
    assert "sup3r-secret" not in err and "cannot connect to PostgreSQL" in err
