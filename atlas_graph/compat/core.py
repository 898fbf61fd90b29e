"""Atlas SDK's ``atlas.core.run/arun`` over ``atlas_graph.runner.arun``.

Atlas code ``core.run(task=..., config_path=..., publisher=..., session_metadata=...)`` keeps
working: ``config_path`` is the native ``config``, ``publisher`` (native or Atlas SDK) is one
of ``publishers``, and the answer is an ``AtlasResult`` view of the native ``Result``. Other
native keyword arguments (``mode``, ``agent``, ``models``, ``thread_id`` …) pass through.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from atlas_graph.compat.types import AtlasResult
from atlas_graph.runner import arun as native_arun
from atlas_graph.runner import run_sync
from atlas_graph.telemetry.publishers import AnyPublisher


async def arun(
    task: str,
    config_path: str | Path,
    publisher: AnyPublisher | None = None,
    session_metadata: Mapping[str, Any] | None = None,
    stream_progress: bool | None = None,
    **native: Any,
) -> AtlasResult:
    """Run one session the way Atlas's ``atlas.core.arun`` does.

    Args:
        task: The task.
        config_path: The YAML config (Atlas's layout loads as it is).
        publisher: A telemetry publisher, Atlas SDK's or native.
        session_metadata: Caller metadata kept with the session.
        stream_progress: Print live progress (``None``: only on a terminal).
        **native: Further ``atlas_graph.runner.arun`` keyword arguments.
    """
    result = await native_arun(
        task,
        config=config_path,
        session_metadata=session_metadata,
        stream_progress=stream_progress,
        publishers=[publisher] if publisher is not None else [],
        **native,
    )
    return AtlasResult.from_result(result)


def run(
    task: str,
    config_path: str | Path,
    publisher: AnyPublisher | None = None,
    session_metadata: Mapping[str, Any] | None = None,
    stream_progress: bool | None = None,
    **native: Any,
) -> AtlasResult:
    """Synchronous ``arun``, as Atlas's ``atlas.core.run``."""
    return run_sync(
        arun(
            task,
            config_path,
            publisher=publisher,
            session_metadata=session_metadata,
            stream_progress=stream_progress,
            **native,
        )
    )
