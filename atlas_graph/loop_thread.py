"""``LoopThread``: one private event loop that runs a graph's async nodes for sync callers.

The nodes are coroutines, so ``graph.invoke``, ``graph.stream`` and an LCEL chain's
``invoke``/``batch`` would otherwise fail with "No synchronous function provided". Each graph
gets its own loop in a daemon thread, started on the first synchronous node run: model and
HTTP clients that a graph caches stay on that one loop, however many sync calls (and worker
threads) use the graph. Each coroutine runs in a copy of the calling thread's context, so the
node's runnable config, stream writer and event gathering are those of the sync caller.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """An event loop in a daemon thread, started on first use, stopped with its owner."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                # made in an empty context: the loop's own handles keep the context they are
                # made in, and the first caller's holds its whole graph run
                loop = contextvars.Context().run(asyncio.new_event_loop)
                threading.Thread(target=_serve, args=(loop,), name=self._name, daemon=True).start()
                # the graph going away ends its thread; nothing else holds the loop
                weakref.finalize(self, loop.call_soon_threadsafe, loop.stop)
                self._loop = loop
            return self._loop

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop, in the caller's context, and wait for its result.

        Raises:
            RuntimeError: called from a coroutine already running on this loop (it would wait
                on itself forever).
        """
        loop = self._started()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coroutine.close()
            raise RuntimeError(
                "a synchronous call of an atlas graph from inside one of its own nodes; "
                "use the async API (ainvoke, astream) there"
            )
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        context = contextvars.copy_context()

        def start() -> None:
            task = loop.create_task(coroutine, context=context)
            task.add_done_callback(lambda finished: _settle(done, finished))

        loop.call_soon_threadsafe(start)
        return done.result()


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_forever()
    finally:
        loop.close()


def _settle(done: concurrent.futures.Future[T], task: asyncio.Task[T]) -> None:
    """Hand a finished task's result, error or cancellation to the waiting sync caller."""
    if task.cancelled():
        done.cancel()
    elif task.exception() is not None:
        done.set_exception(task.exception())
    else:
        done.set_result(task.result())
