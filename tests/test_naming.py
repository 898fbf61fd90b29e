"""One naming rule for async and sync: ``aname`` is async, its sync twin is ``name``.

Old names from before the rule still work for one release and warn with a DeprecationWarning.
"""

from __future__ import annotations

import collections.abc
import importlib
import inspect
import typing
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.memory import InMemoryStore

import atlas_graph
from atlas_graph.config import StorageConfig
from atlas_graph.sessions import PruneReport, SessionNotFoundError
from atlas_graph.storage.persistence import Persistence
from atlas_graph.testing import ScriptedAgent

# Modules whose public functions follow the rule, besides what ``atlas_graph`` exports.
MODULES = (
    "atlas_graph.compat.core",
    "atlas_graph.sessions",
    "atlas_graph.export",
    "atlas_graph.review",
    "atlas_graph.runner",
    "atlas_graph.evaluation.batch",
    "atlas_graph.evaluation.matrix",
    "atlas_graph.evaluation.probe_eval",
    "atlas_graph.evaluation.reward_eval",
    "atlas_graph.storage.history",
    "atlas_graph.storage.ledger",
    "atlas_graph.storage.persistence",
    "atlas_graph.storage.review_cache",
)
_ASYNC_RESULTS = (
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
    collections.abc.Awaitable,
    collections.abc.Coroutine,
)


def is_async(function: Any) -> bool:
    """Awaited, iterated with ``async for`` or entered with ``async with``."""
    wrapped = getattr(function, "__wrapped__", None)
    if wrapped is not None and inspect.isasyncgenfunction(wrapped):
        return True  # an @asynccontextmanager
    if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
        return True
    try:
        returned = typing.get_type_hints(function).get("return")
    except Exception:  # a hint that does not resolve here says nothing either way
        return False
    return typing.get_origin(returned) in _ASYNC_RESULTS


def public_functions(module: Any) -> dict[str, Any]:
    """The functions a module defines under public names, old deprecated names left out."""
    return {
        name: value
        for name, value in vars(module).items()
        if not name.startswith("_")
        and inspect.isfunction(value)
        and value.__module__ == module.__name__
        and not hasattr(value, "__deprecated__")
    }


def exported_functions() -> dict[str, Any]:
    return {
        name: getattr(atlas_graph, name)
        for name in atlas_graph.__all__
        if inspect.isfunction(getattr(atlas_graph, name))
    }


def test_exported_async_functions_are_a_prefixed() -> None:
    functions = exported_functions()
    unprefixed = [name for name, value in functions.items() if is_async(value) and name[0] != "a"]
    assert unprefixed == []
    assert {"arun", "alist_sessions", "aopen_graph", "aopen_persistence"} <= set(functions)


def test_exported_sync_twins_take_their_async_forms_parameters() -> None:
    functions = exported_functions()
    pairs = [
        (name, name[1:])
        for name, value in functions.items()
        if is_async(value) and name[1:] in functions
    ]
    assert len(pairs) >= 12  # run, evaluate, export, review and the seven session operations
    for async_name, sync_name in pairs:
        sync = functions[sync_name]
        assert not is_async(sync), sync_name
        assert not inspect.iscoroutinefunction(sync), sync_name
        assert (
            inspect.signature(sync).parameters
            == inspect.signature(functions[async_name]).parameters
        ), f"{sync_name} and {async_name} take different parameters"


@pytest.mark.parametrize("module_name", MODULES)
def test_module_functions_follow_the_rule(module_name: str) -> None:
    functions = public_functions(importlib.import_module(module_name))
    unprefixed = [name for name, value in functions.items() if is_async(value) and name[0] != "a"]
    assert unprefixed == []
    for name, value in functions.items():
        twin = functions.get(name[1:]) if is_async(value) else None
        if twin is not None:
            assert not is_async(twin), name[1:]
            assert inspect.signature(twin).parameters == inspect.signature(value).parameters


def test_the_async_check_knows_each_kind_of_async_function() -> None:
    from atlas_graph.export import aiter_session_traces, iter_session_traces
    from atlas_graph.storage.ledger import afinished_records

    assert is_async(atlas_graph.arun)  # a coroutine function
    assert is_async(afinished_records)  # an async generator
    assert is_async(atlas_graph.aopen_persistence)  # an async context manager
    assert is_async(aiter_session_traces)  # a function returning an async iterator
    assert not is_async(iter_session_traces)
    assert not is_async(atlas_graph.open_persistence)
    assert not is_async(atlas_graph.run)


# --------------------------------------------------------------------------- old names

MEMORY: dict[str, Any] = {"storage": {"backend": "memory"}}


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATLAS_GRAPH_DATABASE_URL", raising=False)


async def _list_sessions_sync(old: Callable[..., Any]) -> None:
    assert old(MEMORY) == []


async def _show_session_sync(old: Callable[..., Any]) -> None:
    with pytest.raises(SessionNotFoundError, match="no session gone"):
        old("gone", MEMORY)


async def _session_history_sync(old: Callable[..., Any]) -> None:
    with pytest.raises(SessionNotFoundError, match="no session gone"):
        old("gone", MEMORY)


async def _fork_session_sync(old: Callable[..., Any]) -> None:
    with pytest.raises(SessionNotFoundError, match="no checkpoint c-1"):
        old("gone", "c-1", config=MEMORY)


async def _resume_session_sync(old: Callable[..., Any]) -> None:
    with pytest.raises(SessionNotFoundError, match="no session gone to resume"):
        old("gone", config=MEMORY, agent=ScriptedAgent())


async def _approve_plan_sync(old: Callable[..., Any]) -> None:
    with pytest.raises(SessionNotFoundError, match="no session gone to resume"):
        old("gone", config=MEMORY, agent=ScriptedAgent())


async def _prune_sessions_sync(old: Callable[..., Any]) -> None:
    assert old(0, config=MEMORY) == PruneReport()


async def _open_session_storage(old: Callable[..., Any]) -> None:
    async with old(MEMORY) as opened:
        assert opened.backend == "memory"


async def _open_graph(old: Callable[..., Any]) -> None:
    async with old(MEMORY, agent=ScriptedAgent()) as graph:
        assert graph.checkpointer is not None


async def _open_persistence_sync(old: Callable[..., Any]) -> None:
    with old(StorageConfig(backend="memory")) as opened:
        assert isinstance(opened, Persistence)


def _on_store(check: Callable[[Callable[..., Any], InMemoryStore], Awaitable[None]]) -> Any:
    async def call(old: Callable[..., Any]) -> None:
        await check(old, InMemoryStore())

    return call


async def _record_start(old: Callable[..., Any], store: InMemoryStore) -> None:
    await old(store, {"session_id": "s-1", "task": "t"}, lane="auto")
    item = await store.aget(("atlas", "sessions"), "s-1")
    assert item is not None and item.value["status"] == "running"


async def _record_end(old: Callable[..., Any], store: InMemoryStore) -> None:
    await old(store, {"session_id": "s-1"}, status="succeeded", completed_at="2026-01-01")
    item = await store.aget(("atlas", "sessions"), "s-1")
    assert item is not None and item.value["status"] == "succeeded"


async def _record_final_checkpoint(old: Callable[..., Any], store: InMemoryStore) -> None:
    assert await old(store, {"session_id": "s-1", "status": "failed"}, "c-1") is True


async def _record_reopened(old: Callable[..., Any], store: InMemoryStore) -> None:
    assert await old(store, "s-1") is False


async def _get_record(old: Callable[..., Any], store: InMemoryStore) -> None:
    assert await old(store, "s-1") is None


async def _list_records(old: Callable[..., Any], store: InMemoryStore) -> None:
    assert await old(store) == []


async def _finished_records(old: Callable[..., Any], store: InMemoryStore) -> None:
    assert [record async for record in old(store)] == []


async def _delete_record(old: Callable[..., Any], store: InMemoryStore) -> None:
    assert await old(store, "s-1") is None


async def _load_sessions(old: Callable[..., Any], store: InMemoryStore) -> None:
    assert await old(store, "fp") == []


async def _append_session(old: Callable[..., Any], store: InMemoryStore) -> None:
    await old(store, "fp", {"session_id": "s-1", "completed_at": "2026-01-01"}, 3)
    assert len(await store.asearch(("atlas", "fingerprints", "fp", "sessions"))) == 1


async def _load_certification(old: Callable[..., Any], store: InMemoryStore) -> None:
    assert await old(store, "fp") is None


async def _save_certification(old: Callable[..., Any], store: InMemoryStore) -> None:
    await old(store, "fp", {"score": 1.0})
    assert await store.aget(("atlas", "fingerprints", "fp"), "certification") is not None


# (module, old name, new name, a call of the old name that checks it still works)
RENAMED: list[tuple[str, str, str, Callable[[Callable[..., Any]], Awaitable[None]]]] = [
    ("atlas_graph.sessions", "list_sessions_sync", "list_sessions", _list_sessions_sync),
    ("atlas_graph.sessions", "show_session_sync", "show_session", _show_session_sync),
    ("atlas_graph.sessions", "session_history_sync", "session_history", _session_history_sync),
    ("atlas_graph.sessions", "fork_session_sync", "fork_session", _fork_session_sync),
    ("atlas_graph.sessions", "resume_session_sync", "resume_session", _resume_session_sync),
    ("atlas_graph.sessions", "approve_plan_sync", "approve_plan", _approve_plan_sync),
    ("atlas_graph.sessions", "prune_sessions_sync", "prune_sessions", _prune_sessions_sync),
    ("atlas_graph.sessions", "open_session_storage", "aopen_session_storage",
     _open_session_storage),
    ("atlas_graph.runner", "open_graph", "aopen_graph", _open_graph),
    ("atlas_graph.storage.persistence", "open_persistence_sync", "open_persistence",
     _open_persistence_sync),
    ("atlas_graph.storage.ledger", "record_start", "arecord_start", _on_store(_record_start)),
    ("atlas_graph.storage.ledger", "record_end", "arecord_end", _on_store(_record_end)),
    ("atlas_graph.storage.ledger", "record_final_checkpoint", "arecord_final_checkpoint",
     _on_store(_record_final_checkpoint)),
    ("atlas_graph.storage.ledger", "record_reopened", "arecord_reopened",
     _on_store(_record_reopened)),
    ("atlas_graph.storage.ledger", "get_record", "aget_record", _on_store(_get_record)),
    ("atlas_graph.storage.ledger", "list_records", "alist_records", _on_store(_list_records)),
    ("atlas_graph.storage.ledger", "finished_records", "afinished_records",
     _on_store(_finished_records)),
    ("atlas_graph.storage.ledger", "delete_record", "adelete_record", _on_store(_delete_record)),
    ("atlas_graph.storage.history", "load_sessions", "aload_sessions", _on_store(_load_sessions)),
    ("atlas_graph.storage.history", "append_session", "aappend_session",
     _on_store(_append_session)),
    ("atlas_graph.storage.history", "load_certification", "aload_certification",
     _on_store(_load_certification)),
    ("atlas_graph.storage.history", "save_certification", "asave_certification",
     _on_store(_save_certification)),
]  # fmt: skip
# Old names that ``atlas_graph`` itself exported.
EXPORTED_BEFORE = frozenset(
    {
        "list_sessions_sync",
        "show_session_sync",
        "session_history_sync",
        "fork_session_sync",
        "resume_session_sync",
        "approve_plan_sync",
        "prune_sessions_sync",
        "open_graph",
        "open_persistence_sync",
    }
)


@pytest.mark.parametrize(
    ("module_name", "old_name", "new_name", "call"), RENAMED, ids=[row[1] for row in RENAMED]
)
async def test_an_old_name_warns_and_still_works(
    module_name: str,
    old_name: str,
    new_name: str,
    call: Callable[[Callable[..., Any]], Awaitable[None]],
) -> None:
    module = importlib.import_module(module_name)
    old, new = getattr(module, old_name), getattr(module, new_name)
    assert old.__wrapped__ is new
    assert inspect.signature(old) == inspect.signature(new)
    with pytest.warns(DeprecationWarning) as caught:
        await call(old)
    messages = [str(warning.message) for warning in caught]
    assert f"{old_name} is deprecated" in messages[0]
    assert f"use {module_name}.{new_name}" in messages[0]
    assert caught[0].filename == __file__  # it points at the line that used the old name
    if old_name in EXPORTED_BEFORE:
        namespace: dict[str, Any] = {}
        exec(f"from atlas_graph import {old_name}", namespace)
        assert namespace[old_name] is old
        assert old_name not in atlas_graph.__all__


def test_the_new_names_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert atlas_graph.list_sessions(MEMORY) == []
        with atlas_graph.open_persistence(StorageConfig(backend="memory")) as opened:
            assert opened.backend == "memory"


async def test_async_with_open_persistence_keeps_its_old_meaning_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="use async with .*aopen_persistence") as caught:
        async with atlas_graph.open_persistence(StorageConfig(backend="memory")) as opened:
            assert opened.backend == "memory"
            assert (
                await opened.checkpointer.aget_tuple({"configurable": {"thread_id": "t"}}) is None
            )
    assert caught[0].filename == __file__


def test_a_sync_twin_refuses_an_open_persistence_naming_the_async_form() -> None:
    shared = Persistence(*_memory(), "memory")
    with pytest.raises(TypeError, match="use the async function alist_sessions"):
        atlas_graph.list_sessions(MEMORY, persistence=shared)


def _memory() -> tuple[Any, Any]:
    from langgraph.checkpoint.memory import InMemorySaver

    return InMemorySaver(), InMemoryStore()
