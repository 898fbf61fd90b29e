"""A run whose next checkpoint was never written stays resumable, and says so."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from faults import FailingPutSaver
from langchain_core.messages import BaseMessage
from langgraph.store.memory import InMemoryStore

from atlas_graph.cli import main
from atlas_graph.errors import AtlasRunError, StorageFaultError
from atlas_graph.runner import arun
from atlas_graph.sessions import alist_sessions, ashow_session
from atlas_graph.storage.persistence import Persistence
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

pytestmark = pytest.mark.chaos

PLAN = [
    {"id": 1, "description": "Add 1200 and 340.", "depends_on": []},
    {"id": 2, "description": "Multiply 12 by 9.", "depends_on": []},
]
CONFIG: dict[str, Any] = {"teacher": {"validator": "atlas_graph.demo:validator"}}


def reviewer() -> ScriptedChatModel:
    def respond(messages: list[BaseMessage]) -> str:
        return json.dumps({"approved": True, "concerns": []})

    return ScriptedChatModel(responder=respond)


def agent() -> ScriptedAgent:
    return ScriptedAgent(plan=PLAN, outputs={1: ["1540"], 2: ["108"]}, synthesis="1540 and 108")


async def complete_puts() -> int:
    """How many checkpoints a whole escalate session writes."""
    saver = FailingPutSaver(fail_at=10_000)
    await arun("Do the sums.", config=CONFIG, mode="escalate", thread_id="count",
               agent=agent(), models={"teacher": reviewer()}, checkpointer=saver)  # fmt: skip
    return saver.puts


@pytest.mark.parametrize(
    ("where", "fault"),
    [(0.3, "connection lost"), (0.5, "connection lost"), (0.8, "connection lost"),
     (0.5, "disk full")],
)  # fmt: skip
async def test_a_run_that_lost_its_next_checkpoint_resumes_to_the_end(
    where: float, fault: str, chaos_record: Any
) -> None:
    total = await complete_puts()
    error = sqlite3.OperationalError("database or disk is full") if fault == "disk full" else None
    saver = FailingPutSaver(fail_at=max(3, round(total * where)), error=error)
    persistence = Persistence(saver, InMemoryStore(), "memory")
    with pytest.raises(AtlasRunError, match="again to continue") as stopped:
        await arun("Do the sums.", config=CONFIG, mode="escalate", thread_id="cut",
                   agent=agent(), models={"teacher": reviewer()},
                   persistence=persistence)  # fmt: skip
    assert saver.failed
    view = await ashow_session("cut", persistence=persistence)
    assert not view["finished"]
    assert view["thread_status"] in ("interrupted", "pending")
    rows = await alist_sessions(persistence=persistence)
    assert all(row["status"] != "succeeded" for row in rows)

    result = await arun(None, config=CONFIG, thread_id="cut", agent=agent(),
                        models={"teacher": reviewer()}, persistence=persistence)  # fmt: skip
    assert result.status == "succeeded"
    assert result.final_answer
    view = await ashow_session("cut", persistence=persistence)
    assert view["finished"] and view["ledger"]["status"] == "succeeded"
    if error is not None:  # a storage fault: the exit-3 error says so in one line
        assert stopped.type is StorageFaultError
    chaos_record(f"checkpoint write fails after the task writes: {fault}, {where:.0%} in", 1,
                 "exit 3, thread interrupted, resume ran it to succeeded")  # fmt: skip


async def test_show_and_sessions_say_interrupted_resumable(
    capsys: pytest.CaptureFixture[str], chaos_record: Any
) -> None:
    total = await complete_puts()
    for fail_at in range(3, total):  # find a cut that leaves only saved results behind
        saver = FailingPutSaver(fail_at=fail_at)
        persistence = Persistence(saver, InMemoryStore(), "memory")
        with pytest.raises(AtlasRunError):
            await arun("Do the sums.", config=CONFIG, mode="escalate", thread_id="cut",
                       agent=agent(), models={"teacher": reviewer()},
                       persistence=persistence)  # fmt: skip
        view = await ashow_session("cut", persistence=persistence)
        if view["thread_status"] == "interrupted":
            break
    else:
        pytest.fail("no cut left an interrupted thread")
    assert view["next"] == [] and view["tasks"]
    rows = {row["session_id"]: row for row in await alist_sessions(persistence=persistence)}
    if "cut" in rows:  # the ledger record exists once the probe ran
        assert rows["cut"]["status"] == "interrupted"
    chaos_record("checkpoint write fails at each step until one leaves saved results", fail_at,
                 "show: interrupted, resumable; sessions: interrupted")  # fmt: skip


def test_cli_show_and_resume_of_a_thread_whose_last_checkpoint_was_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATLAS_GRAPH_DATABASE_URL", raising=False)
    demo = Path(__file__).parents[2] / "atlas_graph/examples/offline_demo.yaml"
    assert main(["run", "Add 1 and 2.", "-c", str(demo), "--thread-id", "lost-1",
                 "--no-stream", "--mode", "escalate"]) == 0  # fmt: skip
    with sqlite3.connect(tmp_path / ".atlas_graph/atlas.sqlite") as database:
        # the last checkpoint never reached the disk; the writes of the tasks before it did
        (last,) = database.execute(
            "SELECT checkpoint_id FROM checkpoints WHERE thread_id = 'lost-1' "
            "ORDER BY checkpoint_id DESC LIMIT 1"
        ).fetchone()
        database.execute("DELETE FROM checkpoints WHERE checkpoint_id = ?", (last,))
        database.execute("DELETE FROM writes WHERE checkpoint_id = ?", (last,))
    capsys.readouterr()
    assert main(["show", "lost-1", "-c", str(demo)]) == 0
    shown = capsys.readouterr().out
    assert "pending: interrupted, resumable (results of finalize saved" in shown
    assert main(["resume", "lost-1", "-c", str(demo)]) == 0
    assert "succeeded" in capsys.readouterr().out
    assert main(["show", "lost-1", "-c", str(demo)]) == 0
    assert "pending: none (finished)" in capsys.readouterr().out
