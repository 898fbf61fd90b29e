"""Review decisions on the session ledger: transitions, refusals, persistence, the CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore
from langgraph.store.sqlite import SqliteStore

from atlas_graph.cli import main
from atlas_graph.demo import demo_config_path
from atlas_graph.export import iter_session_traces
from atlas_graph.review import (
    ReviewError,
    alist_reviews,
    aset_review_status,
    reviewed,
    set_review_status,
)
from atlas_graph.runner import arun
from atlas_graph.sessions import ashow_session
from atlas_graph.storage.ledger import NAMESPACE, aget_record, arecord_final_checkpoint
from atlas_graph.storage.persistence import Persistence


def record(session_id: str, status: str = "succeeded", **fields: Any) -> dict[str, Any]:
    return {"session_id": session_id, "status": status, "review_status": "pending",
            "review_notes": None, "task": f"task {session_id}", "updated_at": "2026-01-01",
            **fields}  # fmt: skip


async def test_transitions_keep_a_history_and_the_last_note() -> None:
    store = InMemoryStore()
    await store.aput(NAMESPACE, "s1", record("s1", review_notes="reward drift: z=-3.4"))
    approved = await aset_review_status(store, "s1", "approved")
    assert approved["review_notes"] == "reward drift: z=-3.4", "no note keeps the current one"
    await aset_review_status(store, "s1", "quarantined", note="leaks a customer name")
    final = await aset_review_status(store, "s1", "pending", note="second look")
    stored = await aget_record(store, "s1")
    assert stored == final
    assert (stored["review_status"], stored["review_notes"]) == ("pending", "second look")
    moves = [f"{step['from']}>{step['to']}" for step in stored["review_history"]]
    assert moves == ["pending>approved", "approved>quarantined", "quarantined>pending"]
    assert stored["reviewed_at"] == stored["review_history"][-1]["at"]


async def test_failed_sessions_can_be_reviewed_running_ones_cannot() -> None:
    store = InMemoryStore()
    await store.aput(NAMESPACE, "f1", record("f1", status="failed"))
    await store.aput(NAMESPACE, "r1", record("r1", status="running"))
    assert (await aset_review_status(store, "f1", "quarantined"))["review_status"] == "quarantined"
    with pytest.raises(ReviewError, match="session r1 is running; review it once it has finished"):
        await aset_review_status(store, "r1", "approved")
    assert (await aget_record(store, "r1"))["review_status"] == "pending", "nothing was written"


async def test_unknown_session_and_status_are_refused() -> None:
    store = InMemoryStore()
    await store.aput(NAMESPACE, "s1", record("s1"))
    with pytest.raises(ReviewError, match="no session nope in the session ledger"):
        await aset_review_status(store, "nope", "approved")
    with pytest.raises(ReviewError, match="unknown review status 'ok'; use one of pending"):
        await aset_review_status(store, "s1", "ok")
    with pytest.raises(ReviewError, match="unknown review status"):
        await alist_reviews(store, statuses=("fine",))
    with pytest.raises(ReviewError, match="limit must be 1 or more, got 0"):
        await alist_reviews(store, limit=0)


def test_sync_form_on_a_sqlite_store(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "x.sqlite", check_same_thread=False,
                                 isolation_level=None)  # fmt: skip
    store = SqliteStore(connection)
    store.setup()
    store.put(NAMESPACE, "s1", record("s1"))
    store.put(NAMESPACE, "s2", record("s2"))
    set_review_status(store, "s2", "approved", note="fine")
    approved = list(iter_session_traces(store, review_statuses=["approved"]))
    assert [trace["session_id"] for trace in approved] == ["s2"]
    assert approved[0]["review_notes"] == "fine"
    with pytest.raises(ReviewError):
        set_review_status(store, "missing", "approved")
    connection.close()


async def test_list_shows_finished_sessions_newest_first_by_review_status() -> None:
    store = InMemoryStore()
    for name, status in (("a", "succeeded"), ("b", "failed"), ("c", "running"), ("d", "succeeded")):
        await store.aput(NAMESPACE, name, record(name, status=status))
    await aset_review_status(store, "d", "approved")
    rows = await alist_reviews(store)
    assert rows[0]["session_id"] == "d", "the decision made it the newest"
    assert {row["session_id"] for row in rows} == {"a", "b", "d"}, "running sessions are not listed"
    approved = await alist_reviews(store, statuses=("approved",))
    assert [row["session_id"] for row in approved] == ["d"]
    assert len(await alist_reviews(store, limit=2)) == 2


def test_reviewed_is_pure() -> None:
    original = record("s1")
    changed = reviewed(original, "approved", "ok")
    assert original["review_status"] == "pending" and "review_history" not in original
    assert changed["review_status"] == "approved"


async def test_a_decision_survives_the_runners_rewrite_but_not_a_new_outcome() -> None:
    """The runner rewrites the end record after finalize; a review in between is kept.

    A new outcome of the same thread (a fork run to its end) needs a new review.
    """
    store = InMemoryStore()
    persistence = Persistence(InMemorySaver(), store, "memory")
    result = await arun("Add 19 and 23.", config=demo_config_path(), mode="auto",
                        thread_id="kept-1", persistence=persistence)  # fmt: skip
    await aset_review_status(store, "kept-1", "approved", note="good")
    values = (await ashow_session("kept-1", persistence=persistence))["values"]
    assert await arecord_final_checkpoint(store, values, result.checkpoint_id)
    kept = await aget_record(store, "kept-1")
    assert (kept["review_status"], kept["review_notes"]) == ("approved", "good")
    assert kept["checkpoint_id"] == result.checkpoint_id

    rerun = {**values, "completed_at": "2099-01-01T00:00:00+00:00"}  # another outcome
    await arecord_final_checkpoint(store, rerun, "another-checkpoint")
    fresh = await aget_record(store, "kept-1")
    assert (fresh["review_status"], fresh["review_notes"]) == ("pending", None)


@pytest.fixture
def demo_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                capsys: pytest.CaptureFixture[str]) -> Path:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATLAS_GRAPH_DATABASE_URL", raising=False)
    assert main(["demo", "--no-stream"]) == 0
    capsys.readouterr()
    return tmp_path


def test_cli_review_flow(demo_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and {row["review_status"] for row in rows} == {"pending"}
    first, second = rows[0]["session_id"], rows[1]["session_id"]
    assert main(["review", "approve", first, "--note", "clean run"]) == 0
    assert capsys.readouterr().out.strip() == f"session {first}: approved (clean run)"
    assert main(["review", "quarantine", second]) == 0
    assert capsys.readouterr().out.strip() == f"session {second}: quarantined"
    assert main(["review", "list", "--status", "approved", "--status", "quarantined"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["SESSION", "STATUS", "REVIEW"]
    assert sorted(line.split()[2] for line in table[1:]) == ["approved", "quarantined"]
    assert main(["review", "reset", second]) == 0
    assert capsys.readouterr().out.strip() == f"session {second}: pending"
    assert main(["export", "-o", "-", "--review-status", "quarantined"]) == 0
    assert capsys.readouterr().out == ""


def test_cli_review_refusals_exit_2(demo_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "approve", "no-such-session"]) == 2
    assert "no session no-such-session in the session ledger" in capsys.readouterr().err
    connection = sqlite3.connect(demo_folder / ".atlas_graph" / "atlas.sqlite",
                                 isolation_level=None)  # fmt: skip
    SqliteStore(connection).put(NAMESPACE, "live-1", record("live-1", status="running"))
    connection.close()
    assert main(["review", "quarantine", "live-1"]) == 2
    assert "session live-1 is running; review it once it has finished" in (
        capsys.readouterr().err)  # fmt: skip


async def test_the_review_cache_gives_a_ttl_store_the_entry_lifetime(tmp_path: Any) -> None:
    from langgraph.store.sqlite.aio import AsyncSqliteStore

    from atlas_graph.storage.review_cache import NAMESPACE, acached_review, aremember_review

    async with AsyncSqliteStore.from_conn_string(str(tmp_path / "s.sqlite")) as store:
        await store.setup()
        await aremember_review(store, "k", 120, {"approved": True})
        assert await acached_review(store, "k", 120) == {"approved": True}
        async with store.conn.execute(
            "SELECT expires_at, ttl_minutes FROM store WHERE prefix = ? AND key = 'k'",
            (".".join(NAMESPACE),),
        ) as cursor:
            expires_at, ttl_minutes = await cursor.fetchone()
        assert expires_at is not None and ttl_minutes == 2
