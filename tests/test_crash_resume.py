"""Crash safety on PostgreSQL: a SIGKILLed worker's session resumes in a fresh process.

The worker (``tests/crash_worker.py``) logs each finished model or agent call to a file.
With ``durability="sync"`` every node's writes are in the database before the next node
starts, so the resuming process never repeats a finished call.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from atlas_graph.config import parse_config
from atlas_graph.storage.ledger import aget_record
from atlas_graph.storage.persistence import aopen_persistence

TESTS = Path(__file__).parent
WORKER = TESTS / "crash_worker.py"
TIMEOUT = 180

# Every call of the complete session, once each (see crash_worker: step 1 needs one retry).
EXPECTED_CALLS = Counter({
    ("student", "planning", None, 1): 1,
    ("student", "execute", 1, 1): 1,
    ("student", "execute", 1, 2): 1,
    ("student", "execute", 2, 1): 1,
    ("student", "synthesize", None, 1): 1,
    ("teacher", "review"): 1,
    ("teacher", "validate"): 3,
    ("teacher", "guide"): 1,
    ("judge",): 1,
})  # fmt: skip


def read_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def call_kind(entry: dict[str, Any]) -> tuple[Any, ...]:
    if entry["role"] == "student":
        return ("student", entry["mode"], entry["step"], entry["attempt"])
    if entry["role"] == "teacher":
        return ("teacher", entry["kind"])
    return ("judge",)


def run_worker(
    pg_url: str, thread: str, log: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(WORKER), "--database-url", pg_url, "--thread", thread,
         "--log", str(log), *extra],
        capture_output=True, text=True, timeout=TIMEOUT, env=_env(),
    )  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    for name in ("LANGSMITH_TRACING", "LANGSMITH_TRACING_V2", "LANGCHAIN_TRACING_V2"):
        env.pop(name, None)
    return env


@pytest.mark.parametrize(
    ("kill_at", "done_before_kill"),
    [
        ("execute", {("student", "execute", 1, 2), ("teacher", "guide")}),
        ("after-validate", {("teacher", "validate")}),
        ("reward", {("student", "synthesize", None, 1)}),
    ],
)
async def test_killed_session_resumes_without_repeating_finished_calls(
    pg_url: str, tmp_path: Path, kill_at: str, done_before_kill: set[tuple[Any, ...]]
) -> None:
    log = tmp_path / "calls.jsonl"
    thread = f"crash-{kill_at}"
    killed = run_worker(pg_url, thread, log, "--kill-at", kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    before = read_log(log)
    assert done_before_kill <= {call_kind(entry) for entry in before}
    assert Counter(call_kind(entry) for entry in before) != EXPECTED_CALLS  # it was cut short

    resumed = run_worker(pg_url, thread, log, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert result["status"] == "succeeded"
    assert result["final_answer"] == "final summary"
    assert result["reward"]["score"] == pytest.approx(0.9)
    assert [step["status"] for step in result["steps"]] == ["succeeded", "succeeded"]
    assert [step["attempts"] for step in result["steps"]] == [2, 1]

    entries = read_log(log)
    lines = [json.dumps(entry, sort_keys=True) for entry in entries]
    repeated = [line for line, count in Counter(lines).items() if count > 1]
    assert repeated == []  # no finished call ran twice
    assert Counter(call_kind(entry) for entry in entries) == EXPECTED_CALLS
    assert entries[: len(before)] == before

    async with aopen_persistence(parse_config({"storage": {"database_url": pg_url}}).storage) as db:
        assert db.store is not None
        record = await aget_record(db.store, thread)
    assert record is not None
    assert record["status"] == "succeeded"
    assert record["final_answer"] == "final summary"


def test_second_worker_finishes_what_a_killed_worker_started(pg_url: str, tmp_path: Path) -> None:
    """Worker A (CLI run) dies mid-session; worker B, sharing only the database, resumes it."""
    log = tmp_path / "calls.jsonl"
    config = tmp_path / "worker.yaml"
    config.write_text(textwrap.dedent(f"""\
        agent: {{type: python, import_path: crash_worker, attribute: student}}
        teacher:
          validator: crash_worker:validator
          plan_reviewer: crash_worker:plan_reviewer
        storage:
          database_url: {pg_url}
          max_connections: 2
    """))  # fmt: skip
    command = [sys.executable, "-m", "atlas_graph"]
    worker_a = subprocess.run(
        [*command, "run", "Summarise the incident.", "-c", str(config), "--mode", "escalate",
         "--thread-id", "two-workers", "--no-stream"],
        capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path,
        env=_env(CRASH_LOG=str(log), CRASH_KILL_AT="execute"),
    )  # fmt: skip
    assert worker_a.returncode == -signal.SIGKILL, worker_a.stderr
    before = read_log(log)
    assert ("student", "execute", 1, 2) in {call_kind(entry) for entry in before}

    other_folder = tmp_path / "worker-b"
    other_folder.mkdir()
    worker_b = subprocess.run(
        [*command, "resume", "two-workers", "-c", str(config)],
        capture_output=True, text=True, timeout=TIMEOUT, cwd=other_folder,
        env=_env(CRASH_LOG=str(log)),
    )  # fmt: skip
    assert worker_b.returncode == 0, worker_b.stderr
    assert "final summary" in worker_b.stdout
    assert "succeeded: lane escalate, 2 step(s)" in worker_b.stdout
    lines = [json.dumps(entry, sort_keys=True) for entry in read_log(log)]
    assert [line for line, count in Counter(lines).items() if count > 1] == []
    kinds = Counter(call_kind(json.loads(line)) for line in lines)
    assert kinds[("student", "execute", 2, 1)] == 1
    assert kinds[("student", "synthesize", None, 1)] == 1
    assert kinds[("teacher", "validate")] == 3
