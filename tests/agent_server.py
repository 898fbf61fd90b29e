"""A scripted JSON agent endpoint on loopback, for the ``http_api`` adapter's tests.

Standard library only. Each POST is answered by the next entry of a script, then by
``default``. An entry is one of:

- a dict: HTTP 200 with that JSON body;
- ``status(code, body=None)``: that HTTP status with ``body`` or a small JSON error body;
- ``sleep(seconds)``: wait, then answer ``default`` (for timeouts);
- ``CLOSE``: drop the connection without answering;
- a callable taking the request body and returning any of the above.

HTTP/1.1 keep-alive is on, and every request records the client's port, so a test can tell a
pooled client (one connection) from one connection per request.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CLOSE = "close-connection"


@dataclass(frozen=True)
class status:
    """Answer with this HTTP status."""

    code: int
    body: Any = None


@dataclass(frozen=True)
class sleep:
    """Wait this long before answering with the default reply."""

    seconds: float


@dataclass(frozen=True)
class Received:
    """One request as it arrived; header names lower-cased."""

    path: str
    headers: dict[str, str]
    body: Any
    client_port: int


def echo(body: dict[str, Any]) -> dict[str, Any]:
    """The default reply: the prompt's last line, echoed as ``output``."""
    prompt = str(body.get("prompt", ""))
    return {"output": f"echo: {prompt.strip().splitlines()[-1] if prompt.strip() else ''}"}


class AgentServer:
    """A scripted agent endpoint at ``url`` (``http://127.0.0.1:PORT/agent``)."""

    def __init__(self, *script: Any, default: Callable[[dict[str, Any]], Any] = echo) -> None:
        self._script = list(script)
        self._default = default
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._httpd: ThreadingHTTPServer | None = None
        self.url = ""

    @property
    def received(self) -> list[Received]:
        """Every request so far, in arrival order."""
        with self._lock:
            return list(self._received)

    def _next(self, body: Any) -> Any:
        with self._lock:
            entry = self._script.pop(0) if self._script else self._default
        return entry(body) if callable(entry) else entry

    def __enter__(self) -> AgentServer:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        httpd.daemon_threads = True
        self._httpd = httpd
        host, port = httpd.server_address[:2]
        self.url = f"http://{host}:{port}/agent"
        threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _json(self, code: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (a timeout test)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"null")
                except json.JSONDecodeError:
                    body = None
                with server._lock:
                    server._received.append(
                        Received(
                            self.path,
                            {name.lower(): value for name, value in self.headers.items()},
                            body,
                            self.client_address[1],
                        )
                    )
                entry = server._next(body)
                if isinstance(entry, sleep):
                    time.sleep(entry.seconds)
                    entry = server._default(body)
                if entry == CLOSE:
                    self.close_connection = True
                    return
                if isinstance(entry, status):
                    payload = entry.body or {"error": f"scripted HTTP {entry.code}"}
                    self._json(entry.code, payload)
                    return
                self._json(200, entry)

        return Handler
