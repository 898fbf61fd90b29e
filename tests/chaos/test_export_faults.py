"""An export never destroys what it reads from, and a failed export leaves the old file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.memory import InMemoryStore

from atlas_graph.cli import main
from atlas_graph.errors import ExportError
from atlas_graph.export import aexport_sessions

pytestmark = pytest.mark.chaos


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATLAS_GRAPH_DATABASE_URL", raising=False)
    return tmp_path


def test_export_refuses_the_storage_file_and_keeps_every_session(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], chaos_record: Any
) -> None:
    assert main(["demo", "--no-stream"]) == 0
    database = tmp_path / ".atlas_graph" / "atlas.sqlite"
    before = database.read_bytes()
    for output in (".atlas_graph/atlas.sqlite", str(database), ".atlas_graph/atlas.sqlite-wal"):
        capsys.readouterr()
        assert main(["export", "-o", output, "--status", "succeeded"]) == 2
        err = capsys.readouterr().err
        assert "session storage" in err and len(err.strip().splitlines()) == 1
    assert database.read_bytes() == before
    chaos_record("export -o the storage file (main, absolute, -wal)", 3,
                 "exit 2, one line, database unchanged")  # fmt: skip
    assert main(["export", "-o", "traces.jsonl"]) == 0
    assert len((tmp_path / "traces.jsonl").read_text().splitlines()) == 4


async def test_export_never_replaces_a_sqlite_database(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    other.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    with pytest.raises(ExportError, match="SQLite database"):
        await aexport_sessions(InMemoryStore(), other)
    assert other.read_bytes().startswith(b"SQLite format 3")


class BrokenStore(InMemoryStore):
    """A store whose reads fail after the first page: the database went away mid-export."""

    def __init__(self) -> None:
        super().__init__()
        self.searches = 0

    async def asearch(self, *args: Any, **kwargs: Any) -> Any:
        self.searches += 1
        if self.searches > 1:
            raise ConnectionError("server closed the connection unexpectedly")
        return await super().asearch(*args, **kwargs)


async def test_a_failed_export_leaves_the_previous_file_and_no_partial_file(
    tmp_path: Path, chaos_record: Any
) -> None:
    store = BrokenStore()
    for index in range(5):
        record = {"session_id": f"s{index}", "status": "succeeded", "task": "t",
                  "started_at": "2026-01-01T00:00:00+00:00"}  # fmt: skip
        await store.aput(("atlas", "sessions"), f"s{index}", record)
    target = tmp_path / "traces.jsonl"
    target.write_text("previous export\n")
    with pytest.raises(ConnectionError):
        await aexport_sessions(store, target, batch_size=2)
    await asyncio.sleep(0)
    assert target.read_text() == "previous export\n"
    leftovers = [path.name for path in tmp_path.iterdir() if path.name != "traces.jsonl"]
    assert target.read_text() == "previous export\n" and leftovers == []
    chaos_record("store fails mid-export", 1, "error raised, previous export kept",
                 lost=0, leaked=len(leftovers))  # fmt: skip
