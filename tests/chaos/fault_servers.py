"""Loopback servers that misbehave on purpose: an OpenAI-compatible model and an HTTP agent.

Each answers from a ``respond(body)`` function that returns either an ordinary reply (what
``tests/openai_server.py`` handlers return: text, a tool call, a status) or a ``Raw`` answer:
any status, content type and bytes, optionally dripped a few bytes at a time with a pause
between them. Both record the requests they received and stop cleanly (a drip stops when the
server does).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai_server as wire


@dataclass(frozen=True)
class Raw:
    """An answer sent as is: ``body`` in chunks of ``chunk`` bytes, ``pause`` seconds apart."""

    status: int = 200
    body: bytes | Callable[[], Iterator[bytes]] = b""
    content_type: str = "application/json"
    pause: float = 0.0
    chunk: int = 1 << 16
    length: int | None = None  # Content-Length to announce (default: the body's)


Respond = Callable[[dict[str, Any]], "wire.Reply | Raw"]


def completion(body: dict[str, Any], reply: wire.Reply) -> Raw:
    """An ordinary OpenAI chat completion for ``reply`` (text, ``json`` or tool calls)."""
    if isinstance(reply, int):
        error = {"message": f"scripted HTTP {reply}", "type": "server_error", "code": None}
        return Raw(reply, json.dumps({"error": error}).encode())
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if isinstance(reply, str):
        message["content"] = reply
    elif set(reply) == {"json"}:
        message["content"] = json.dumps(reply["json"])
    else:
        calls = [reply["tool_call"]] if "tool_call" in reply else reply["tool_calls"]
        message["tool_calls"] = [
            {
                "id": f"call_{index}",
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": call["arguments"]
                    if isinstance(call["arguments"], str)
                    else json.dumps(call["arguments"]),
                },
            }
            for index, call in enumerate(calls)
        ]
    payload = {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": dict(wire.USAGE),
    }
    return Raw(200, json.dumps(payload).encode())


@dataclass
class FaultServer:
    """A loopback HTTP server answering every POST with ``respond(body)``."""

    respond: Respond
    requests: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (``/v1``)."""
        return self.url + "/v1"

    def __enter__(self) -> FaultServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                with server._lock:
                    server.requests.append(body)
                answer = server.respond(body)
                if not isinstance(answer, Raw):
                    answer = completion(body, answer)
                self._send(answer)

            def _send(self, answer: Raw) -> None:
                chunks = answer.body() if callable(answer.body) else _chunks(answer)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                if answer.length is not None or not callable(answer.body):
                    length = answer.length if answer.length is not None else len(answer.body)  # type: ignore[arg-type]
                    self.send_header("Content-Length", str(length))
                self.end_headers()
                try:
                    for piece in chunks:
                        if server._stopping.is_set():
                            return
                        self.wfile.write(piece)
                        self.wfile.flush()
                        if answer.pause:
                            server._stopping.wait(answer.pause)
                except OSError:
                    return  # the client gave up, as it should

        return Handler


def _chunks(answer: Raw) -> Iterator[bytes]:
    body = answer.body
    assert isinstance(body, bytes)
    for start in range(0, len(body), answer.chunk):
        yield body[start : start + answer.chunk]


def schema_of(body: dict[str, Any]) -> str | None:
    """The schema a model request asks for (its forced tool or JSON schema), if any."""
    names = wire.schema_names(body)
    return names[0] if names else None


def ordinary(body: dict[str, Any]) -> wire.Reply:
    """What a well-behaved model answers (``openai_server.default_handler``)."""
    return wire.default_handler(body)
