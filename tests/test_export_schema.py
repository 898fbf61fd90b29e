"""The exported AtlasSessionTrace: every key and JSON type of the spec, per lane, per backend.

Sessions are real demo runs (python student, programmatic teacher and judge) stored in the
embedded SQLite file and in PostgreSQL; the export reads them back from the ledger only.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from export_records import SECRETS, run_demo_lanes

from atlas_graph.config import StorageConfig
from atlas_graph.export import aexport_sessions, aiter_session_traces
from atlas_graph.storage.persistence import aopen_persistence

STR, INT, NUM, BOOL, NULL = str, int, (int, float), bool, type(None)
OBJ, ARR = dict, list

SESSION_KEYS: dict[str, Any] = {
    "task": STR, "final_answer": STR, "plan": OBJ, "steps": ARR, "session_metadata": OBJ,
    "session_reward": (OBJ, NULL), "reward_stats": OBJ, "reward_audit": ARR,
    "adaptive_summary": OBJ, "triage_dossier": OBJ, "execution_mode": STR,
    "student_learning": (STR, NULL), "teacher_learning": (STR, NULL),
    "learning_history": (OBJ, NULL), "trajectory_events": ARR, "review_status": STR,
    "review_notes": (STR, NULL),
}  # fmt: skip
METADATA_KEYS: dict[str, Any] = {
    "session_id": STR, "status": STR, "created_at": STR, "completed_at": STR,
    "execution_mode": STR, "review_status": STR, "token_usage": OBJ, "triage_dossier": OBJ,
    "fingerprint": STR, "checkpoint_id": STR,
}  # fmt: skip
STEP_KEYS: dict[str, Any] = {
    "step_id": INT, "description": STR, "depends_on": ARR, "tool": (STR, NULL),
    "tool_params": OBJ, "trace": STR, "output": STR, "artifacts": OBJ, "attempts": INT,
    "guidance": ARR, "validation": (OBJ, NULL), "reward": (OBJ, NULL), "context": OBJ,
    "runtime": OBJ, "metadata": OBJ,
}  # fmt: skip
REWARD_STATS_KEYS = ("score", "score_mean", "score_stddev", "sample_count", "uncertainty_mean",
                     "uncertainty_stddev", "best_uncertainty")  # fmt: skip
AUDIT_KEYS: dict[str, Any] = {
    "stage": STR, "judge": STR, "model": STR, "temperature": (NUM, NULL), "score": NUM,
    "uncertainty": (NUM, NULL), "rationale": STR,
}  # fmt: skip


def typed(value: Any, kinds: Any, where: str) -> None:
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    assert ok, f"{where}: {type(value).__name__} {value!r:.80} is not {kinds}"


def keys(record: dict[str, Any], spec: dict[str, Any], where: str) -> None:
    missing = sorted(set(spec) - set(record))
    assert not missing, f"{where}: missing {missing}"
    for key, kinds in spec.items():
        typed(record[key], kinds, f"{where}.{key}")


def check_reward(reward: dict[str, Any], where: str) -> None:
    keys(reward, {"score": NUM, "rationale": STR, "judges": ARR, "raw": OBJ}, where)
    assert 0.0 <= reward["score"] <= 1.0, where
    assert reward["judges"], f"{where}: a reward names its judges"
    for index, judge in enumerate(reward["judges"]):
        keys(judge, {"identifier": STR, "score": NUM, "rationale": STR, "principles": ARR,
                     "samples": ARR, "escalated": BOOL, "escalation_reason": (STR, NULL)},
             f"{where}.judges[{index}]")  # fmt: skip
        for sample in judge["samples"]:
            keys(sample, {"score": NUM, "rationale": STR, "principles": ARR,
                          "uncertainty": (NUM, NULL), "temperature": (NUM, NULL)},
                 f"{where}.judges[{index}].samples")  # fmt: skip


def check_verdict(verdict: dict[str, Any], where: str) -> None:
    keys(verdict, {"valid": BOOL, "score": NUM, "rationale": STR, "guidance": STR}, where)


def check_trace(trace: dict[str, Any]) -> None:
    """Every key and JSON type of spec/session-trace.md."""
    keys(trace, SESSION_KEYS, "session")
    keys(trace["session_metadata"], METADATA_KEYS, "session_metadata")
    usage = trace["session_metadata"]["token_usage"]
    assert usage, "token usage per role"
    for role, counts in usage.items():
        keys(counts, dict.fromkeys(("prompt_tokens", "completion_tokens", "total_tokens",
                                    "calls"), INT), f"token_usage.{role}")  # fmt: skip
    assert trace["session_metadata"]["status"] in ("running", "succeeded", "failed")
    assert trace["execution_mode"] in ("auto", "paired", "coach", "escalate")
    assert trace["review_status"] in ("pending", "approved", "quarantined")
    plan = trace["plan"]
    keys(plan, {"steps": ARR, "execution_mode": STR}, "plan")
    assert plan["execution_mode"] in ("single_shot", "stepwise")
    for step in plan["steps"]:
        keys(step, {"id": INT, "description": STR, "depends_on": ARR, "tool": (STR, NULL),
                    "tool_params": OBJ}, "plan.steps")  # fmt: skip
    assert trace["steps"], "a finished session has step records"
    for step in trace["steps"]:
        where = f"steps[{step.get('step_id')}]"
        keys(step, STEP_KEYS, where)
        assert "deliverable" in step, where
        assert all(isinstance(item, int) for item in step["depends_on"]), where
        assert all(isinstance(item, str) for item in step["guidance"]), where
        assert step["attempts"] >= 1 and step["attempts"] == len(
            step["metadata"]["attempt_history"]), where  # fmt: skip
        if step["validation"] is not None:
            check_verdict(step["validation"], f"{where}.validation")
        if step["reward"] is not None:
            check_reward(step["reward"], f"{where}.reward")
        keys(step["context"], {"prior_results": OBJ}, f"{where}.context")
        for key, output in step["context"]["prior_results"].items():
            typed(key, STR, f"{where}.prior_results key")
            typed(output, STR, f"{where}.prior_results[{key}]")
        keys(step["runtime"], {"timings_ms": OBJ, "status": STR}, f"{where}.runtime")
        keys(step["runtime"]["timings_ms"], {"execute": NUM, "validate": NUM, "total": NUM},
             f"{where}.timings_ms")  # fmt: skip
        assert step["runtime"]["status"] in ("succeeded", "failed")
        for attempt in step["metadata"]["attempt_history"]:
            keys(attempt, {"attempt": INT, "output": STR, "validation": (OBJ, NULL),
                           "guidance": (STR, NULL), "timings_ms": OBJ},
                 f"{where}.attempt_history")  # fmt: skip
    if trace["session_reward"] is not None:
        check_reward(trace["session_reward"], "session_reward")
    stats = trace["reward_stats"]
    assert set(REWARD_STATS_KEYS) <= set(stats)
    for key in REWARD_STATS_KEYS:
        typed(stats[key], (NUM, NULL), f"reward_stats.{key}")
    for entry in trace["reward_audit"]:
        keys(entry, AUDIT_KEYS, "reward_audit")
        assert entry["stage"] in ("tier1", "arbiter")
    summary = trace["adaptive_summary"]
    keys(summary, {"adaptive_mode": STR, "confidence": (NUM, NULL), "certification_run": BOOL,
                   "probe": OBJ, "mode_history": ARR}, "adaptive_summary")  # fmt: skip
    keys(summary["probe"], {"mode": (STR, NULL), "confidence": (NUM, NULL), "evidence": ARR},
         "adaptive_summary.probe")  # fmt: skip
    for entry in summary["mode_history"]:
        keys(entry, {"mode": STR, "confidence": (NUM, NULL), "source": STR}, "mode_history")
    keys(trace["triage_dossier"], {"summary": STR, "risks": ARR, "signals": OBJ, "tags": ARR,
                                   "fingerprint_hint": (STR, NULL)}, "triage_dossier")  # fmt: skip
    events = trace["trajectory_events"]
    assert events, "the run's events are exported"
    for event in events:
        keys(event, {"id": STR, "event": OBJ, "created_at": STR}, "trajectory_events")
        keys(event["event"], {"type": STR, "name": STR, "data": OBJ}, "trajectory_events.event")
    times = [event["created_at"] for event in events]
    assert times == sorted(times), "events oldest first"


@pytest.fixture(params=["sqlite", "postgres"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "sqlite":
        config = StorageConfig(path=str(tmp_path / "atlas.sqlite"))
    else:
        config = StorageConfig(database_url=request.getfixturevalue("pg_url"))
    async with aopen_persistence(config) as opened:
        yield opened


async def test_every_lane_exports_every_spec_field_with_its_type(
    storage: Any, tmp_path: Path
) -> None:
    prefix = f"schema-{storage.backend}-{tmp_path.name}"
    sessions = await run_demo_lanes(storage, prefix=prefix)
    out = tmp_path / "traces.jsonl"
    counts = await aexport_sessions(storage.store, out, session_ids=list(sessions.values()))
    lines = out.read_text(encoding="utf-8").splitlines()
    assert (counts.sessions, len(lines)) == (4, 4)
    traces = {trace["execution_mode"]: trace for trace in map(json.loads, lines)}
    assert set(traces) == {"auto", "paired", "coach", "escalate"}
    assert counts.steps == sum(len(trace["steps"]) for trace in traces.values()) == 6
    for lane, trace in traces.items():
        check_trace(trace)
        assert trace["session_metadata"]["session_id"] == sessions[lane]
        assert trace["session_metadata"]["team"] == "search", "caller metadata is kept"
        assert trace["session_metadata"]["source"] == "offline-demo", "config metadata too"
        assert trace["final_answer"], lane

    auto = traces["auto"]["steps"][0]
    assert auto["validation"] is None and auto["reward"] is None, "no verdict, no invented score"
    assert traces["auto"]["session_reward"] is None
    assert traces["auto"]["reward_stats"]["score"] is None

    paired = traces["paired"]["steps"][0]
    assert paired["reward"]["score"] == paired["validation"]["score"] == 1.0

    coach = traces["coach"]["steps"][0]
    assert coach["attempts"] == 2
    assert coach["guidance"] == ["State the unit: write the number followed by 'ms'."]
    first, second = coach["metadata"]["attempt_history"]
    assert (first["output"], second["output"]) == ("245", "245 ms")
    assert first["validation"]["valid"] is False and first["validation"]["score"] == 0.4
    assert first["guidance"] == coach["guidance"][0]
    assert coach["output"] == "245 ms" and coach["validation"]["valid"] is True
    timings = coach["runtime"]["timings_ms"]
    assert timings["total"] == pytest.approx(timings["execute"] + timings["validate"])
    assert timings["execute"] > 0 and timings["validate"] > 0
    assert traces["coach"]["session_reward"]["score"] < 1.0, "the retry costs process reward"
    assert traces["coach"]["reward_audit"][0]["judge"] == "process"

    escalate = traces["escalate"]
    assert [step["step_id"] for step in escalate["steps"]][-1] == 3
    last = escalate["steps"][-1]
    assert last["depends_on"] == [1, 2]
    assert last["context"]["prior_results"] == {"1": "1540", "2": "108"}
    assert last["deliverable"] == {"value": 1648.0}
    tool_step = next(step for step in escalate["steps"] if step["step_id"] == 2)
    assert "calculate" in tool_step["trace"], "tool calls are part of the step trace"
    assert escalate["plan"]["execution_mode"] == "stepwise"
    assert escalate["trajectory_events"][-1]["event"]["type"] == "session_finished"


async def test_no_secret_reaches_the_export(storage: Any, tmp_path: Path) -> None:
    prefix = f"secrets-{storage.backend}-{tmp_path.name}"
    sessions = await run_demo_lanes(storage, prefix=prefix)
    # metadata is scrubbed before it enters state, so the ledger never holds the key either
    item = await storage.store.aget(("atlas", "sessions"), sessions["paired"])
    assert SECRETS["api_key"] not in json.dumps(item.value)
    text = "".join([
        json.dumps(trace) async for trace in aiter_session_traces(
            storage.store, session_ids=list(sessions.values()))
    ])  # fmt: skip
    assert text.count('"session_id"') >= 4
    for name, secret in SECRETS.items():
        assert secret not in text, f"{name} leaked into the export"
    assert "[redacted]" in text
    assert '"team": "search"' in text, "ordinary metadata is kept"
