"""Storage backends: memory, SQLite and the real PostgreSQL, plus the session ledger."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.memory import InMemoryStore

from atlas_graph.config import StorageConfig, parse_config
from atlas_graph.graph import create_atlas_graph
from atlas_graph.runner import arun
from atlas_graph.state import AtlasState
from atlas_graph.storage.ledger import (
    EXPORT_KEYS,
    NAMESPACE,
    NOT_EXPORTED,
    RECORD_FIELDS,
    afinished_records,
    aget_record,
    alist_records,
)
from atlas_graph.storage.persistence import (
    StorageError,
    aopen_persistence,
    open_persistence,
    redact_dsn,
    resolve_backend,
)
from atlas_graph.testing import ScriptedAgent

DEMO_TEACHER: dict[str, Any] = {
    "teacher": {
        "validator": "atlas_graph.demo:validator",
        "plan_reviewer": "atlas_graph.demo:plan_reviewer",
    }
}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATLAS_GRAPH_DATABASE_URL", raising=False)
    return tmp_path


def postgres(url: str, **storage: Any) -> StorageConfig:
    return StorageConfig(backend="postgres", database_url=url, **storage)


# --------------------------------------------------------------------------- config → backend


def test_backend_resolution_from_config_and_environment() -> None:
    assert resolve_backend(StorageConfig(), {}) == ("sqlite", None)
    url = "postgresql://atlas@db/atlas"
    assert resolve_backend(StorageConfig(), {"ATLAS_GRAPH_DATABASE_URL": url}) == ("postgres", url)
    # an explicit backend wins over the environment
    explicit = parse_config({"storage": {"backend": "sqlite"}}).storage
    assert resolve_backend(explicit, {"ATLAS_GRAPH_DATABASE_URL": url}) == ("sqlite", url)
    with pytest.raises(StorageError, match="no database_url"):
        resolve_backend(StorageConfig(backend="postgres"), {})
    with pytest.raises(StorageError, match="must be a postgresql:// URL") as error:
        resolve_backend(postgres("mysql://root:hunter2@db/x"), {})
    assert "hunter2" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://atlas:hunter2@db:5432/x", "postgresql://atlas:***@db:5432/x"),
        ("postgres://u:p%40ss@h/x?sslmode=require", "postgres://u:***@h/x?sslmode=require"),
        ("postgresql://atlas@db/x", "postgresql://atlas@db/x"),
        ("host=db user=u password=hunter2 dbname=x", "host=db user=u password=*** dbname=x"),
        ("host=db password='a b' dbname=x", "host=db password=*** dbname=x"),
        ("postgresql://db/x?user=u&password=hunter2", "postgresql://db/x?user=u&password=***"),
    ],
)
def test_redact_dsn(text: str, expected: str) -> None:
    assert redact_dsn(text) == expected


# --------------------------------------------------------------------------- memory, SQLite


async def test_memory_backend_opens_memory_saver_and_store(tmp_path: Path) -> None:
    async with aopen_persistence(StorageConfig(backend="memory")) as opened:
        assert isinstance(opened.checkpointer, InMemorySaver)
        assert isinstance(opened.store, InMemoryStore)
    assert not (tmp_path / ".atlas_graph").exists()


async def test_sqlite_store_survives_reopen(tmp_path: Path) -> None:
    storage = StorageConfig(path="data/atlas.sqlite")
    async with aopen_persistence(storage) as opened:
        assert opened.backend == "sqlite"
        assert opened.store is not None
        await opened.store.aput(("atlas", "x"), "k", {"v": 1})
    async with aopen_persistence(storage) as again:
        assert again.store is not None
        item = await again.store.aget(("atlas", "x"), "k")
        assert item is not None and item.value == {"v": 1}
    assert (tmp_path / "data" / "atlas.sqlite").is_file()
    with open_persistence(storage) as sync:
        assert sync.store is not None
        item = sync.store.get(("atlas", "x"), "k")
        assert item is not None and item.value == {"v": 1}


async def test_sqlite_saver_and_store_share_one_connection_under_concurrency() -> None:
    """Concurrent sessions write checkpoints and ledger records at once without lock errors."""
    async with aopen_persistence(StorageConfig()) as opened:
        saver, store = opened.checkpointer, opened.store
        assert store is not None
        assert saver.conn is store.conn and saver.lock is store.lock  # type: ignore[attr-defined]

        async def session(number: int) -> None:
            namespace = ("atlas", "concurrency", str(number))
            for index in range(5):
                await store.aput(namespace, str(index), {"index": index})
                assert await store.asearch(namespace, limit=10)  # read, then write again
                await saver.aput_writes(
                    {"configurable": {"thread_id": str(number), "checkpoint_ns": "",
                                      "checkpoint_id": str(index)}},
                    [("channel", index)], task_id=f"task-{index}",
                )  # fmt: skip

        await asyncio.gather(*(session(number) for number in range(12)))
        assert len(await store.asearch(("atlas", "concurrency", "11"), limit=10)) == 5


async def test_ledger_records_a_finished_session_in_sqlite() -> None:
    result = await arun(
        "Add 120 and 80 and report the total in ms.", config=DEMO_TEACHER, mode="coach",
        thread_id="ledger-1", agent=ScriptedAgent(outputs={1: ["200", "200 ms"]}),
        session_metadata={"team": "a"},
    )  # fmt: skip
    assert result.status == "succeeded"
    async with aopen_persistence(StorageConfig()) as opened:
        assert opened.store is not None
        record = await aget_record(opened.store, "ledger-1")
    assert record is not None
    assert record["status"] == "succeeded"
    assert record["lane"] == "coach"
    assert record["task"] == "Add 120 and 80 and report the total in ms."
    assert record["review_status"] == "pending"
    assert record["final_answer"] == "200 ms"
    assert record["started_at"] == result.started_at
    assert record["completed_at"] == result.completed_at
    assert record["session_metadata"] == {"team": "a"}
    assert record["plan"]["steps"][0]["id"] == 1
    assert [a["output"] for a in record["steps"]["1"]["attempts"]] == ["200", "200 ms"]
    assert record["reward_summary"]["score"] == result.reward["score"]  # type: ignore[index]
    assert record["dossier"]["summary"].startswith("Add 120")


async def test_ledger_is_skipped_without_a_store() -> None:
    saver = InMemorySaver()
    result = await arun("Hello.", checkpointer=saver, mode="auto", agent=ScriptedAgent())
    assert result.status == "succeeded"  # no store compiled in: nodes skip the ledger


async def test_ledger_start_record_while_running_and_no_duplicates() -> None:
    store, saver = InMemoryStore(), InMemorySaver()
    seen: list[dict[str, Any] | None] = []

    async def execute(request: Any) -> str:
        seen.append(await aget_record(store, "run-1"))
        return "42"

    agent = ScriptedAgent(outputs=execute)
    await arun("Multiply 6 by 7.", config=DEMO_TEACHER, mode="paired", thread_id="run-1",
               agent=agent, checkpointer=saver, store=store)  # fmt: skip
    (during,) = seen
    assert during is not None
    assert during["status"] == "running"
    assert during["completed_at"] is None
    # the probe writes the running record, so a live session already shows its lane
    assert (during["lane"], during["execution_mode"]) == ("paired", "paired")
    assert during["fingerprint"] and during["started_at"]
    records = await alist_records(store)
    assert [r["session_id"] for r in records] == ["run-1"]
    assert records[0]["status"] == "succeeded"
    assert len(await store.asearch(NAMESPACE)) == 1


def test_end_record_covers_every_session_state_key() -> None:
    covered = set(EXPORT_KEYS) | set(RECORD_FIELDS) | NOT_EXPORTED
    assert set(AtlasState.__annotations__) <= covered, "new state keys must reach the ledger"


async def test_end_record_has_the_final_checkpoint_and_every_event() -> None:
    store, saver = InMemoryStore(), InMemorySaver()
    result = await arun(
        "Multiply 6 by 7.", config=DEMO_TEACHER, mode="paired", thread_id="end-1",
        agent=ScriptedAgent(outputs={1: ["42"]}), checkpointer=saver, store=store,
    )  # fmt: skip
    record = await aget_record(store, "end-1")
    assert record is not None and record["status"] == "succeeded"
    latest = await saver.aget_tuple({"configurable": {"thread_id": "end-1"}})
    assert latest is not None
    assert record["checkpoint_id"] == result.checkpoint_id == latest.checkpoint["id"]
    assert (record["thread_id"], record["checkpoint_ns"]) == ("end-1", "")
    # finalize's own events reach the record too, equal to the final state's
    final = latest.checkpoint["channel_values"]["trajectory_events"]
    assert record["trajectory_events"] == final
    assert [entry["event"]["type"] for entry in final][-2:] == ["final_answer", "session_finished"]
    for key in ("reward_stats", "reward_audit", "adaptive_summary", "personas_used",
                "learning_updates", "fingerprint", "review_status", "execution_mode"):  # fmt: skip
        assert key in record, key
    assert record["execution_mode"] == "paired"
    assert record["adaptive_summary"]["adaptive_mode"] == "paired"
    assert record["reward_stats"] == latest.checkpoint["channel_values"]["reward_stats"]


async def test_end_record_of_a_graph_run_elsewhere_names_its_thread() -> None:
    """Without the runner the record has no checkpoint id, but says where to look it up."""
    store, saver = InMemoryStore(), InMemorySaver()
    graph = create_atlas_graph({"storage": {"backend": "memory"}}, agent=ScriptedAgent())
    compiled = graph.compile(checkpointer=saver, store=store)
    thread = {"configurable": {"thread_id": "dev-1"}}
    await compiled.ainvoke({"task": "Say hi.", "mode": "auto"}, thread)
    record = await aget_record(store, "dev-1")
    assert record is not None and record["status"] == "succeeded"
    assert record["checkpoint_id"] is None
    latest = await saver.aget_tuple(
        {"configurable": {"thread_id": record["thread_id"], "checkpoint_ns": ""}}
    )
    assert latest is not None and latest.checkpoint["channel_values"]["status"] == "succeeded"


# --------------------------------------------------------------------------- PostgreSQL


async def test_postgres_saver_and_store_share_one_pool(pg_url: str) -> None:
    storage = postgres(pg_url, min_size=1, max_size=3, statement_timeout_seconds=2.5)
    async with aopen_persistence(storage) as opened:
        assert opened.backend == "postgres"
        pool = opened.checkpointer.conn  # type: ignore[attr-defined]
        assert opened.store.conn is pool  # type: ignore[union-attr]
        assert pool.max_size == 3
        async with pool.connection() as conn:
            assert conn.autocommit is True
            row = await (await conn.execute("SHOW statement_timeout")).fetchone()
            assert row["statement_timeout"] == "2500ms"
        assert opened.store is not None
        await opened.store.aput(("atlas", "t"), "k", {"v": 2})
    # setup() ran (tables exist) and a second open is idempotent
    async with aopen_persistence(storage) as again:
        item = await again.store.aget(("atlas", "t"), "k")  # type: ignore[union-attr]
        assert item is not None and item.value == {"v": 2}


async def test_sessions_sharing_a_postgres_saver_do_not_take_turns(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two saver reads at once: each holds its statement until the other has started one too.
    # A saver that serialises its calls behind one lock never lets the second start.
    storage = postgres(pg_url, min_size=2, max_size=4)
    started: list[asyncio.Event] = [asyncio.Event(), asyncio.Event()]
    original = psycopg.AsyncCursor.execute
    calls = 0

    async def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        mine, calls = calls, calls + 1
        if mine < 2:
            started[mine].set()
            await asyncio.wait_for(started[1 - mine].wait(), timeout=10)
        return await original(self, *args, **kwargs)

    async with aopen_persistence(storage) as opened:
        saver = opened.checkpointer
        monkeypatch.setattr(psycopg.AsyncCursor, "execute", execute)
        configs = [{"configurable": {"thread_id": f"t{n}", "checkpoint_ns": ""}} for n in (1, 2)]
        found = await asyncio.gather(*(saver.aget_tuple(c) for c in configs))  # type: ignore[arg-type]
    assert found == [None, None]
    assert all(event.is_set() for event in started)


def test_postgres_sync_form(pg_url: str) -> None:
    with open_persistence(postgres(pg_url, min_size=2, max_size=2)) as opened:
        assert opened.store is not None
        assert opened.store.conn is opened.checkpointer.conn  # type: ignore[attr-defined]
        # like the async form, the pool holds its minimum before the first session
        assert opened.store.conn.get_stats()["pool_size"] == 2
        opened.store.put(("atlas", "sync"), "k", {"v": 3})
        item = opened.store.get(("atlas", "sync"), "k")
        assert item is not None and item.value == {"v": 3}


async def test_concurrent_setup_is_serialised(pg_url: str) -> None:
    from pg import with_database

    name = "atlas_graph_setup_race"
    admin = with_database(pg_url, "postgres")
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        storage = postgres(with_database(pg_url, name))

        async def open_once() -> str:
            async with aopen_persistence(storage) as opened:
                return opened.backend

        assert await asyncio.gather(*(open_once() for _ in range(4))) == ["postgres"] * 4
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("form", ["async", "sync"])
async def test_connection_errors_never_show_the_password(pg_url: str, form: str) -> None:
    from pg import with_database

    # A real server and user but a database that does not exist; the password is bogus.
    parts = urlsplit(with_database(pg_url, "atlas_graph_missing_db"))
    netloc = f"{parts.username or 'postgres'}:hunter2@{parts.hostname}:{parts.port or 5432}"
    url = urlunsplit(parts._replace(netloc=netloc))
    storage = postgres(url)
    with pytest.raises(StorageError) as error:
        if form == "async":
            async with aopen_persistence(storage):
                pass
        else:
            with open_persistence(storage):
                pass
    message = str(error.value)
    assert "hunter2" not in message
    assert ":***@" in message
    assert "atlas_graph_missing_db" in message
    assert "\n" not in message
    assert error.value.__cause__ is None


async def test_refused_connection_is_a_clear_error() -> None:
    storage = postgres("postgresql://atlas:hunter2@127.0.0.1:1/atlas")
    expected = r"cannot connect to PostgreSQL at postgresql://atlas:\*\*\*@127\.0\.0\.1:1/atlas: "
    with pytest.raises(StorageError, match=expected) as error:
        async with aopen_persistence(storage):
            pass
    assert "hunter2" not in str(error.value)


async def test_arun_on_postgres_writes_checkpoints_and_ledger(pg_url: str) -> None:
    config = {**DEMO_TEACHER, "storage": {"database_url": pg_url}}
    result = await arun("Multiply 6 by 7.", config=config, mode="paired", thread_id="pg-run-1",
                        agent=ScriptedAgent(outputs={1: ["42"]}))  # fmt: skip
    assert result.status == "succeeded"
    async with aopen_persistence(parse_config(config).storage) as opened:
        assert opened.store is not None
        record = await aget_record(opened.store, "pg-run-1")
        state = await opened.checkpointer.aget_tuple({"configurable": {"thread_id": "pg-run-1"}})
        finished = [record async for record in afinished_records(opened.store, page=2)]
    assert record is not None and record["status"] == "succeeded"
    assert record["final_answer"] == "42"
    assert state is not None
    assert record["checkpoint_id"] == state.checkpoint["id"] == result.checkpoint_id
    # the Store's status filter works on PostgreSQL too (prune reads only finished records)
    assert "pg-run-1" in {record["session_id"] for record in finished}
    assert {record["status"] for record in finished} <= {"succeeded", "failed"}


async def test_ledger_through_runtime_store_without_a_checkpointer() -> None:
    """As under ``langgraph dev``: the server brings the store, nodes find it on the runtime."""
    from atlas_graph.graph import create_atlas_graph

    store = InMemoryStore()
    graph = create_atlas_graph(DEMO_TEACHER, agent=ScriptedAgent(outputs={1: ["42"]})).compile(
        store=store
    )
    await graph.ainvoke(
        {"task": "Multiply 6 by 7.", "mode": "paired"}, {"configurable": {"thread_id": "srv-1"}}
    )
    record = await aget_record(store, "srv-1")
    assert record is not None
    assert (record["status"], record["lane"], record["final_answer"]) == (
        "succeeded",
        "paired",
        "42",
    )
