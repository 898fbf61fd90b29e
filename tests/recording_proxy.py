"""A recording proxy for an OpenAI-compatible server, on loopback: what was asked, what came back.

Standard library only. Every request to ``proxy.base_url`` is forwarded to the upstream base
URL as it came, and the exchange is kept (request body, status, reply body, seconds), so a
test or a benchmark can read every prompt a real model saw and every reply it gave.

Example::

    with RecordingProxy("http://127.0.0.1:8088/v1") as proxy:
        ChatOpenAI(base_url=proxy.base_url, api_key="x", model="m").invoke("hello")
        proxy.exchanges[0].request["messages"]
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REASK_PREFIX = "Your reply could not be read as "
"""How a structured re-ask begins (``atlas_graph.structured``)."""


@dataclass(frozen=True)
class Exchange:
    """One request and its reply as they crossed the proxy."""

    path: str
    request: dict[str, Any]
    status: int
    reply: dict[str, Any]
    seconds: float

    @property
    def model(self) -> str:
        return str(self.request.get("model", ""))

    @property
    def schema(self) -> str | None:
        """The schema the request asked for (forced tool or ``response_format``), if any."""
        fmt = self.request.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            return str(fmt.get("json_schema", {}).get("name"))
        choice = self.request.get("tool_choice")
        if isinstance(choice, dict):
            return str(choice.get("function", {}).get("name"))
        if fmt.get("type") == "json_object":
            return "json_object"
        return None

    @property
    def is_reask(self) -> bool:
        """A structured re-ask: the last user message carries the parse error."""
        messages = self.request.get("messages") or []
        last = messages[-1] if messages else {}
        return last.get("role") == "user" and str(last.get("content", "")).startswith(REASK_PREFIX)

    @property
    def usage(self) -> dict[str, int]:
        return dict(self.reply.get("usage") or {})

    @property
    def content(self) -> str:
        choices = self.reply.get("choices") or [{}]
        return str((choices[0].get("message") or {}).get("content") or "")

    def text(self, role: str) -> str:
        """The content of the request's messages of ``role``, joined."""
        parts = []
        for message in self.request.get("messages") or []:
            if message.get("role") == role:
                content = message.get("content")
                parts.append(content if isinstance(content, str) else json.dumps(content))
        return "\n\n".join(parts)


class RecordingProxy:
    """Forwards to ``upstream`` (a ``.../v1`` base URL) and records; a context manager."""

    def __init__(self, upstream: str, *, timeout: float = 600.0) -> None:
        parsed = urllib.parse.urlsplit(upstream.rstrip("/"))
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self._https = parsed.scheme == "https"
        self._prefix = parsed.path  # e.g. /v1
        self._timeout = timeout
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._httpd: ThreadingHTTPServer | None = None
        self.base_url = ""

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def clear(self) -> None:
        with self._lock:
            self._exchanges.clear()

    def __enter__(self) -> RecordingProxy:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        httpd.daemon_threads = True
        self._httpd = httpd
        host, port = httpd.server_address[:2]
        self.base_url = f"http://{host}:{port}{self._prefix}"
        threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def _forward(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Any:
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = kind(self._host, self._port, timeout=self._timeout)
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheader("Content-Type") or "", response.read()
        finally:
            connection.close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _relay(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {
                    name: value
                    for name, value in self.headers.items()
                    if name.lower() in ("content-type", "authorization", "accept")
                }
                started = time.perf_counter()
                try:
                    status, kind, data = proxy._forward(method, self.path, body, headers)
                except OSError as error:
                    status, kind = 502, "application/json"
                    data = json.dumps({"error": {"message": f"proxy: {error}"}}).encode()
                seconds = time.perf_counter() - started
                try:
                    request = json.loads(body) if body else {}
                    reply = json.loads(data) if data else {}
                except ValueError:
                    request, reply = {}, {}
                with proxy._lock:
                    proxy._exchanges.append(
                        Exchange(self.path, request if isinstance(request, dict) else {},
                                 status, reply if isinstance(reply, dict) else {}, seconds)
                    )  # fmt: skip
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind or "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (its deadline): nothing to answer
                    pass

            def do_POST(self) -> None:
                self._relay("POST")

            def do_GET(self) -> None:
                self._relay("GET")

        return Handler
