"""Telemetry publishers: send a session's events somewhere other than the console.

A publisher is attached when a session starts, receives a ``session_started`` control event,
every session event as it happens, a ``session_completed`` control event (also when the session
stopped with an error), and is detached last. ``run``/``arun`` take ``publishers=[...]``.
``publish`` is called on the event loop: keep it quick, or hand events to a queue of your own.

An Atlas SDK ``TelemetryPublisher`` (``attach(step_manager)``, ``publish_control_event(type,
data)``, ``detach()``) is accepted as it is: ``as_publisher`` wraps it in ``AtlasPublisher``,
which hands it a step manager it can ``subscribe`` to and Atlas-shaped intermediate steps.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

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


@runtime_checkable
class AtlasTelemetryPublisher(Protocol):
    """Atlas SDK's publisher: it subscribes to a step manager and hears control events."""

    def attach(self, step_manager: Any) -> None:
        """Subscribe to the session's intermediate steps."""

    def publish_control_event(self, event_type: str, data: dict[str, Any]) -> None:
        """Take one control event (session started, session completed)."""

    def detach(self) -> None:
        """Unsubscribe and flush."""


@dataclass(frozen=True)
class AtlasStepPayload:
    """Atlas's ``IntermediateStepPayload`` fields that publishers read."""

    event_type: str
    name: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    event_timestamp: str
    UUID: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class AtlasStep:
    """One event as Atlas's ``IntermediateStep``: ``step.payload.event_type`` and so on.

    ``event_type`` is our event type upper-cased (``STEP_ATTEMPT_FINISHED``); ``event`` is the
    native event, for publishers written against atlas-graph.
    """

    payload: AtlasStepPayload
    event: AtlasEvent

    @property
    def UUID(self) -> str:
        """The step's id, as Atlas names it."""
        return self.payload.UUID


class _Subscription:
    def __init__(self, manager: AtlasStepManager, callback: Callable[[AtlasStep], Any]) -> None:
        self._manager = manager
        self._callback = callback

    def unsubscribe(self) -> None:
        """Stop receiving steps."""
        self._manager.unsubscribe(self._callback)


class AtlasStepManager:
    """The step manager an Atlas publisher attaches to: ``subscribe(callback)``."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[AtlasStep], Any]] = []

    def subscribe(self, callback: Callable[[AtlasStep], Any]) -> _Subscription:
        """Call ``callback`` with every step from now on; returns a subscription."""
        self._callbacks.append(callback)
        return _Subscription(self, callback)

    def unsubscribe(self, callback: Callable[[AtlasStep], Any]) -> None:
        """Forget ``callback`` (no error when it is already gone)."""
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def push(self, event: AtlasEvent) -> None:
        """Hand one event to every subscriber as an ``AtlasStep``."""
        metadata = {
            "session_id": event["session_id"],
            "actor": event["actor"],
            "step_id": event["step_id"],
            "attempt": event["attempt"],
        }
        step = AtlasStep(
            AtlasStepPayload(
                event_type=str(event["atlas_event"]).upper(),
                name=str(event["atlas_event"]),
                data=dict(event["data"]),
                metadata=metadata,
                event_timestamp=event["at"],
            ),
            event,
        )
        for callback in list(self._callbacks):
            callback(step)


class AtlasPublisher:
    """An Atlas SDK ``TelemetryPublisher`` behind the native publisher protocol.

    ``attach`` gives it a fresh ``AtlasStepManager``; session events reach its subscription
    as ``AtlasStep`` objects; control events go to ``publish_control_event(type, data)`` with
    the session id in ``data``.
    """

    def __init__(self, publisher: AtlasTelemetryPublisher) -> None:
        self.publisher = publisher
        self.step_manager = AtlasStepManager()

    def attach(self, session_id: str) -> None:
        """Attach the Atlas publisher to this session's step manager."""
        self.step_manager = AtlasStepManager()
        self.publisher.attach(self.step_manager)

    def publish(self, event: AtlasEvent | ControlEvent) -> None:
        """Control events to ``publish_control_event``, the rest to the subscribers."""
        if "atlas_control" in event:
            control: ControlEvent = event  # type: ignore[assignment]
            data = {"session_id": control["session_id"], "at": control["at"], **control["data"]}
            self.publisher.publish_control_event(str(control["atlas_control"]), data)
            return
        self.step_manager.push(event)

    def detach(self) -> None:
        """Detach the Atlas publisher."""
        self.publisher.detach()


AnyPublisher = TelemetryPublisher | AtlasTelemetryPublisher
"""What ``publishers=`` takes: a native publisher or an Atlas SDK one."""


def as_publisher(value: Any) -> TelemetryPublisher:
    """A native publisher as it is, an Atlas SDK publisher wrapped in ``AtlasPublisher``.

    Raises:
        TypeError: the value is neither.
    """
    if callable(getattr(value, "publish_control_event", None)) and callable(
        getattr(value, "attach", None)
    ):
        return AtlasPublisher(value)
    if isinstance(value, TelemetryPublisher):
        return value
    raise TypeError(
        f"publishers: {type(value).__name__} lacks attach/publish/detach "
        "(see atlas_graph.telemetry.publishers.TelemetryPublisher) and is not an Atlas "
        "TelemetryPublisher (attach/publish_control_event/detach)"
    )
