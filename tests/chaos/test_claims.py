"""One runner per thread: a second runner refuses naming the holder; prune never eats a fork."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from faults import held_elsewhere
from langgraph.checkpoint.memory import InMemorySaver

from atlas_graph.cli import main
from atlas_graph.config import StorageConfig
from atlas_graph.errors import SessionNotFoundError, ThreadBusyError
from atlas_graph.runner import arun
from atlas_graph.sessions import (
    afork_session,
    aprune_sessions,
    asession_history,
    ashow_session,
)
from atlas_graph.storage.claims import claims_for
from atlas_graph.storage.persistence import aopen_persistence
from atlas_graph.testing import ScriptedAgent

pytestmark = pytest.mark.chaos

HERE = Path(__file__).parent
DEMO = HERE.parents[1] / "atlas_graph/examples/offline_demo.yaml"
CONFIG: dict[str, Any] = {"teacher": {"validator": "atlas_graph.demo:validator"}}
PLAN = [{"id": 1, "description": "Add 1200 and 340.", "depends_on": []}]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATLAS_GRAPH_DATABASE_URL", raising=False)
    return tmp_path


def agent() -> ScriptedAgent:
    return ScriptedAgent(plan=PLAN, outputs={1: ["1540"]}, synthesis="1540")


async def test_a_second_runner_in_the_process_is_refused() -> None:
    saver = InMemorySaver()
    async with claims_for(saver).aclaim("busy"):
        with pytest.raises(ThreadBusyError, match=f"pid {os.getpid()}") as refused:
            await arun("Add.", config=CONFIG, thread_id="busy", agent=agent(), checkpointer=saver)
    assert "\n" not in str(refused.value) and refused.value.session_id == "busy"
    result = await arun("Add.", config=CONFIG, thread_id="busy", agent=agent(), checkpointer=saver)
    assert result.session_id == "busy"  # released: the thread runs now


def test_a_second_runner_in_another_process_is_refused_with_its_pid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], chaos_record: Any
) -> None:
    database = tmp_path / ".atlas_graph" / "atlas.sqlite"
    assert main(["run", "Add 1 and 2.", "-c", str(DEMO), "--thread-id", "t-1", "--no-stream",
                 "--mode", "escalate"]) == 0  # fmt: skip
    capsys.readouterr()
    with held_elsewhere("sqlite", str(database), "t-1") as holder:
        for argv in (["resume", "t-1"], ["run", "-c", str(DEMO), "--thread-id", "t-1"]):
            assert main([*argv, "-c", str(DEMO)] if argv[0] == "resume" else argv) == 2
            err = capsys.readouterr().err.strip()
            assert f"session t-1 is being run by pid {holder.pid} on host" in err
            assert len(err.splitlines()) == 1
    assert main(["resume", "t-1", "-c", str(DEMO)]) == 2  # free again: now simply finished
    assert "already finished" in capsys.readouterr().err
    claim_files = list((database.parent / "atlas.sqlite.claims").glob("*.lock"))
    assert claim_files == []
    chaos_record("second runner on a SQLite thread held by another process", 2,
                 "exit 2, one line naming pid and host", leaked=len(claim_files))  # fmt: skip


async def test_prune_racing_forks_never_deletes_an_acknowledged_fork(chaos_record: Any) -> None:
    trials = 16
    storage = StorageConfig()
    async with aopen_persistence(storage) as opened:
        forks_at: dict[str, str] = {}
        for index in range(trials):
            thread = f"race-{index}"
            await arun("Add.", config=CONFIG, mode="paired", thread_id=thread, agent=agent(),
                       persistence=opened)  # fmt: skip
            history = await asession_history(thread, persistence=opened)
            forks_at[thread] = next(r for r in history if r["node"] == ["probe"])["checkpoint_id"]

        async def fork(thread: str, delay: float) -> str | None:
            await asyncio.sleep(delay)  # some forks before the prune reaches them, some after
            try:
                return await afork_session(thread, forks_at[thread], persistence=opened,
                                           values={"session_metadata": {"f": 1}})  # fmt: skip
            except (SessionNotFoundError, ThreadBusyError):
                return None  # pruned first, or prune held it: not acknowledged

        prune = asyncio.create_task(aprune_sessions(0, ledger=True, persistence=opened))
        forked = await asyncio.gather(
            *(fork(thread, 0.06 * index) for index, thread in enumerate(forks_at))
        )
        report = await prune
        acknowledged = [t for t, c in zip(forks_at, forked, strict=True) if c is not None]
        for thread, checkpoint in zip(forks_at, forked, strict=True):
            if checkpoint is None:
                continue
            view = await ashow_session(thread, persistence=opened)
            assert view["checkpoint_id"] == checkpoint and not view["finished"]
            assert view["ledger"]["status"] == "running"
            assert thread not in report.threads and thread not in report.ledger_records
        assert len(acknowledged) + len(report.threads) >= trials
    chaos_record("prune --ledger racing fork (SQLite)", trials,
                 f"{len(acknowledged)} forks acknowledged and kept, {len(report.threads)} pruned",
                 lost=0)  # fmt: skip
