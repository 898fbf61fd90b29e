"""Telemetry publishers: send a session's events somewhere other than the console.

A publisher is attached when a session starts, receives a ``session_started`` control event,
every session event as it happens, a ``session_completed`` control event (also when the session
stopped with an error), and is detached last. ``run``/``arun`` take ``publishers=[...]``.
``publish`` is called on the event loop: keep it quick, or hand events to a queue of your own.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import IO, Protocol, runtime_checkable

from atlas_graph.redaction import may_hold_secrets, scrub
from atlas_graph.telemetry.events import AtlasEvent, ControlEvent


@runtime_checkable
class TelemetryPublisher(Protocol):
    """Receives one session's events, bracketed by control events."""

    def attach(self, session_id: str) -> None:
        """Get ready for a session (open a file, a connection)."""

    def publish(self, event: AtlasEvent | ControlEvent) -> None:
        """Take one event; control events have ``atlas_control`` instead of ``atlas_event``."""

    def detach(self) -> None:
        """The session is over: flush and release what ``attach`` took."""


class JsonlFilePublisher:
    """Append every event as one JSON line to a file (created with its folders if missing).

    One publisher may serve several sessions in turn; it can also be shared by sessions that
    run concurrently, as each line is written whole under a lock.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None
        self._sessions = 0
        self._lock = threading.Lock()

    def attach(self, session_id: str) -> None:
        """Open the file for appending (once, however many sessions are attached)."""
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._sessions += 1

    def publish(self, event: AtlasEvent | ControlEvent) -> None:
        """Write one line and flush it, so a reader tailing the file sees it at once."""
        line = json.dumps(event, default=str, ensure_ascii=False)
        if may_hold_secrets(line):  # a provider error quoting its key, echoed metadata
            line = json.dumps(scrub(json.loads(line)), ensure_ascii=False)
        with self._lock:
            if self._file is None:
                raise RuntimeError(f"JsonlFilePublisher({self.path}) is not attached")
            self._file.write(line + "\n")
            self._file.flush()

    def detach(self) -> None:
        """Close the file when the last attached session is over."""
        with self._lock:
            self._sessions = max(0, self._sessions - 1)
            if self._sessions == 0 and self._file is not None:
                self._file.close()
                self._file = None
