"""Inspect the learning registry: show entries, report the learning curve, reset a key.

Each function opens the storage its config names (as the session commands do) or uses a
``store`` passed in; the ``a``-prefixed forms are the async originals, the others their
synchronous twins. These back ``atlas-graph learning show | report | reset``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from langgraph.store.base import BaseStore

from atlas_graph.errors import ChartError, LearningPlotError
from atlas_graph.learning import registry
from atlas_graph.learning.usage import summary

T = TypeVar("T")


@asynccontextmanager
async def _store(config: Any, store: BaseStore | None) -> AsyncIterator[BaseStore]:
    if store is not None:
        yield store
        return
    from atlas_graph.sessions import aopen_session_storage  # imported late: builds no graph

    async with aopen_session_storage(config) as opened:
        if opened.store is None:
            raise ValueError("this storage has no store, so no learning registry")
        yield opened.store


async def _keys(store: BaseStore, learning_key: str | None) -> list[str]:
    return [learning_key] if learning_key else await registry.alearning_keys(store)


def _entry_view(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "usage": summary(entry.get("stats", {}))}


async def alearning_show(
    config: Any = None, *, learning_key: str | None = None, store: BaseStore | None = None
) -> list[dict[str, Any]]:
    """Per learning key: its entries (any status) with gate, rubric, stats and usage rates."""
    async with _store(config, store) as opened:
        return [
            {"learning_key": key,
             "entries": [_entry_view(e) for e in await registry.aload_entries(opened, key)]}
            for key in await _keys(opened, learning_key)
        ]  # fmt: skip


async def alearning_report(
    config: Any = None, *, learning_key: str | None = None, store: BaseStore | None = None
) -> list[dict[str, Any]]:
    """Per learning key: each entry's hit rate, adoption, reward delta, transfer and status,
    and reward and tokens per session in order (the learning curve)."""
    async with _store(config, store) as opened:
        report = []
        for key in await _keys(opened, learning_key):
            entries = [
                {"id": e["id"], "audience": e["audience"], "status": e["status"],
                 "version": e.get("version", 1), "reason": e.get("reason"),
                 **summary(e.get("stats", {}))}
                for e in await registry.aload_entries(opened, key)
            ]  # fmt: skip
            sessions = [
                {"session_id": s["session_id"], "at": s.get("at"), "reward": s.get("reward"),
                 "tokens": s.get("tokens"), "cue_hits": len(s.get("cue_hits", [])),
                 "adopted": len(s.get("adopted", []))}
                for s in await registry.aload_sessions(opened, key)
            ]  # fmt: skip
            report.append({"learning_key": key, "entries": entries, "sessions": sessions})
        return report


async def alearning_reset(
    config: Any = None, *, learning_key: str | None = None, store: BaseStore | None = None
) -> dict[str, int]:
    """Delete one learning key's playbook, history and sessions (or every key's)."""
    async with _store(config, store) as opened:
        return {
            key: await registry.areset(opened, key) for key in await _keys(opened, learning_key)
        }


def plot_learning_curve(report: list[dict[str, Any]], path: str | Path) -> Path:
    """Draw reward and tokens per session of every learning key into a PNG file.

    Raises:
        LearningPlotError: matplotlib is not installed (``pip install atlas-graph[plot]``) or
            the report has no sessions.
    """
    from atlas_graph.evaluation.charts import new_figure, save  # matplotlib loads late

    if not any(item["sessions"] for item in report):
        raise LearningPlotError("no sessions to plot")
    try:
        figure = new_figure(size=(8.0, 6.0))
    except ChartError as error:  # callers catch LearningPlotError, as before
        raise LearningPlotError(str(error), **vars(error)) from None
    rewards, tokens = figure.subplots(2, 1, sharex=True)
    for item in report:
        runs = item["sessions"]
        numbers = list(range(1, len(runs) + 1))
        rewards.plot(numbers, [s["reward"] for s in runs], marker="o", label=item["learning_key"])
        tokens.plot(numbers, [s["tokens"] for s in runs], marker="o", label=item["learning_key"])
    rewards.set_ylabel("reward")
    tokens.set_ylabel("tokens")
    tokens.set_xlabel("session")
    rewards.legend(fontsize="small")
    return save(figure, path)


def _sync(coroutine: Coroutine[Any, Any, T]) -> T:
    from atlas_graph.runner import run_sync

    return run_sync(coroutine)


def learning_show(config: Any = None, **kwargs: Any) -> list[dict[str, Any]]:
    """``alearning_show`` for synchronous code."""
    return _sync(alearning_show(config, **kwargs))


def learning_report(config: Any = None, **kwargs: Any) -> list[dict[str, Any]]:
    """``alearning_report`` for synchronous code."""
    return _sync(alearning_report(config, **kwargs))


def learning_reset(config: Any = None, **kwargs: Any) -> dict[str, int]:
    """``alearning_reset`` for synchronous code."""
    return _sync(alearning_reset(config, **kwargs))
