"""Atlas's export flags and `review sessions` on the atlas-graph CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlas_graph.cli import main


@pytest.fixture
def demo_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATLAS_GRAPH_DATABASE_URL", raising=False)
    assert main(["demo", "--no-stream"]) == 0
    capsys.readouterr()
    return tmp_path


def test_atlas_export_flags(demo_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "-o", "-", "--quiet", "--trajectory-limit", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # --quiet
    traces = [json.loads(line) for line in captured.out.splitlines()]
    assert len(traces) == 4
    assert all(len(trace["trajectory_events"]) <= 2 for trace in traces)

    first = traces[0]["session_id"]
    assert main(["review", "approve", first]) == 0
    capsys.readouterr()
    assert main(["export", "-o", "-", "-q", "--include-status", "approved"]) == 0
    approved = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [trace["session_id"] for trace in approved] == [first]

    config = demo_folder / "gate.yaml"
    config.write_text("runtime_safety:\n  review:\n    require_approval: true\n")
    assert main(["export", "-o", "-", "-q", "-c", str(config)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1  # the gate: approved only
    assert main(["export", "-o", "-", "-q", "-c", str(config), "--include-all-statuses"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    both = ["--include-all-statuses", "--include-status", "approved"]
    assert main(["export", "-o", "-", *both]) == 2
    assert "exclude each other" in capsys.readouterr().err


def test_review_sessions_groups_by_status_with_drift(
    demo_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["review", "list", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)[0]["session_id"]
    assert main(["review", "quarantine", first]) == 0
    capsys.readouterr()

    assert main(["review", "sessions", "--json"]) == 0
    groups = json.loads(capsys.readouterr().out)
    assert list(groups) == ["pending", "approved", "quarantined"]
    assert [row["session_id"] for row in groups["quarantined"]] == [first]
    assert len(groups["pending"]) == 3 and groups["approved"] == []
    for row in groups["pending"]:
        assert isinstance(row["drift_alert"], bool)
        assert "drift" in row

    assert main(["review", "sessions"]) == 0
    text = capsys.readouterr().out
    assert "pending (3)" in text and "quarantined (1)" in text and first in text
