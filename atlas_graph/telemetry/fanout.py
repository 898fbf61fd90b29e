"""Fan a session's events out to the console, an ``on_event`` callback and publishers.

``run``/``arun`` build one ``SessionTelemetry`` per session. A failing publisher must not
break the session it observes: its error is logged once and it receives nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from atlas_graph.telemetry.events import AtlasEvent, control_event, is_event, make_event
from atlas_graph.telemetry.publishers import AnyPublisher, TelemetryPublisher, as_publisher

logger = logging.getLogger(__name__)


class SessionTelemetry:
    """Where one session's events go."""

    def __init__(
        self,
        session_id: str,
        *,
        renderer: Any = None,
        on_event: Callable[[AtlasEvent], None] | None = None,
        publishers: Sequence[AnyPublisher] = (),
    ) -> None:
        self.session_id = session_id
        self.renderer = renderer
        self.on_event = on_event
        # Atlas SDK publishers are wrapped here, so every entry point takes them
        self.publishers: list[TelemetryPublisher] = [as_publisher(p) for p in publishers]
        self._attached: list[TelemetryPublisher] = []

    def start(self, **data: Any) -> None:
        """Attach the publishers and tell them the session started."""
        for publisher in self.publishers:
            try:
                publisher.attach(self.session_id)
            except Exception:
                logger.exception("telemetry publisher %r failed to attach", publisher)
                continue
            self._attached.append(publisher)
        self._publish(control_event("session_started", self.session_id, **data))

    def feed(self, mode: str, chunk: Any) -> None:
        """One item of ``astream(stream_mode=["custom", "updates"])``."""
        if mode == "custom" and is_event(chunk):
            self.event(chunk)

    def event(self, event: AtlasEvent) -> None:
        """Deliver one session event everywhere."""
        if self.renderer is not None:
            self.renderer.handle(event)
        if self.on_event is not None:
            self.on_event(event)
        self._publish(event)

    def failed(self, error: str, *, where: str) -> None:
        """The session stopped with an error: a ``session_failed`` event (not in state)."""
        self.event(
            make_event(
                "session_failed", session_id=self.session_id, actor="system", error=error,
                node=where,
            )
        )  # fmt: skip

    def finish(self, status: str, **data: Any) -> None:
        """Tell the publishers the session completed, then detach them."""
        self._publish(control_event("session_completed", self.session_id, status=status, **data))
        for publisher in self._attached:
            try:
                publisher.detach()
            except Exception:
                logger.exception("telemetry publisher %r failed to detach", publisher)
        self._attached = []

    def _publish(self, event: Any) -> None:
        for publisher in list(self._attached):
            try:
                publisher.publish(event)
            except Exception:
                logger.exception("telemetry publisher %r failed; it gets no more events", publisher)
                self._attached.remove(publisher)
                try:
                    publisher.detach()
                except Exception:
                    logger.debug("detach after failure failed too", exc_info=True)
