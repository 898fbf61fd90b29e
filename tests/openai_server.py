"""A tiny OpenAI-compatible chat-completions server on loopback, for wire-level tests.

Standard library only: a ``ThreadingHTTPServer`` on ``127.0.0.1`` with an OS-assigned port,
served from a background thread. It answers ``POST /v1/chat/completions`` (non-streaming) by
asking a handler you pass in, records every request it receives, and shuts down cleanly.

A handler takes the request's JSON body and returns a reply:

- ``str``: the assistant's text content (``finish_reason: "stop"``);
- ``{"tool_call": {"name": ..., "arguments": {...}}}``: an assistant message with one function
  tool call (``finish_reason: "tool_calls"``);
- ``{"tool_calls": [{"name": ..., "arguments": {...}}, ...], "content": ...}``: several tool
  calls in one message, with optional text (see ``tool_calls``);
- ``{"json": {...}}``: the object as the message's JSON text, as a server honouring a
  ``response_format`` JSON schema answers (see ``structured``);
- ``{"truncated": "..."}``: the text, cut off at the token limit (``finish_reason: "length"``);
- ``int``: an HTTP error status (e.g. 500, 401) with an OpenAI-shaped error body.

``scripted(*replies)`` answers each request with the next reply in order.

Every successful reply carries ``usage`` (11 prompt, 7 completion, 18 total tokens by default)
and echoes the requested ``model``.

Example::

    with OpenAIServer(lambda body: "hi") as server:
        ChatOpenAI(base_url=server.base_url, api_key="x", model="m").invoke("hello")
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

Reply = str | int | dict[str, Any]
Handler = Callable[[dict[str, Any]], Reply]

CHAT_PATH = "/v1/chat/completions"
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}

DEFAULT_TOOL_ARGUMENTS: dict[str, dict[str, Any]] = {
    "TeacherVerdict": {"valid": True, "score": 0.8, "rationale": "wire ok", "guidance": ""},
    "PlanReview": {"approved": True, "concerns": []},
    "JudgeReply": {
        "principles": [{"name": "correct", "weight": 1, "description": "answers the task"}],
        "score": 0.7,
        "rationale": "ok",
        "uncertainty": 0.1,
    },
    "ArbiterReply": {"score": 0.6, "rationale": "arbitrated", "uncertainty": 0.05},
}
DEFAULT_ANSWER = "wire answer"

_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "invalid_api_key",
    403: "permission_denied",
    404: "not_found_error",
    429: "rate_limit_exceeded",
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived. Header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None

    @property
    def model(self) -> str | None:
        """The requested model id."""
        return (self.body or {}).get("model")

    @property
    def schema_names(self) -> list[str]:
        """The function tools and JSON schema the request asks for (see ``schema_names``)."""
        return schema_names(self.body or {})

    @property
    def tool_names(self) -> list[str]:
        """Names of the function tools offered with the request."""
        return tool_names(self.body or {})

    def text(self, role: str) -> str:
        """The content of every message with ``role``, joined by blank lines."""
        return message_text(self.body or {}, role)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The request's chat messages as sent."""
        return list((self.body or {}).get("messages") or [])

    @property
    def response_format(self) -> dict[str, Any] | None:
        """The ``response_format`` the request asked for, if any."""
        return (self.body or {}).get("response_format")


def tool_names(body: dict[str, Any]) -> list[str]:
    """Names of the function tools a request body offers."""
    return [
        tool.get("function", {}).get("name", "")
        for tool in body.get("tools") or []
        if tool.get("type") == "function"
    ]


def schema_names(body: dict[str, Any]) -> list[str]:
    """What a request asks the model to produce: its function tools and its JSON schema."""
    response_format = body.get("response_format") or {}
    named = response_format.get("json_schema", {}).get("name") if response_format else None
    return [*tool_names(body), *([named] if named else [])]


def message_text(body: dict[str, Any], role: str) -> str:
    """The text content of a request's messages with ``role``, joined by blank lines."""
    parts: list[str] = []
    for message in body.get("messages") or []:
        if message.get("role") != role:
            continue
        content = message.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        parts.append(str(content or ""))
    return "\n\n".join(parts)


def tool_call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A handler reply that makes the assistant call tool ``name`` with ``arguments``."""
    return {"tool_call": {"name": name, "arguments": arguments}}


def tool_calls(*calls: tuple[str, dict[str, Any]], content: str = "") -> dict[str, Any]:
    """A handler reply with several tool calls (name, arguments) in one assistant message."""
    return {
        "tool_calls": [{"name": name, "arguments": arguments} for name, arguments in calls],
        "content": content,
    }


def structured(value: dict[str, Any]) -> dict[str, Any]:
    """A handler reply whose content is ``value`` as JSON text (structured output)."""
    return {"json": value}


def scripted(*replies: Reply | Handler) -> Handler:
    """A handler that answers request N with reply N (a reply or a handler of the body).

    Requests past the script are answered with HTTP 400 and recorded as handler errors.
    """
    queue = list(replies)
    lock = threading.Lock()

    def handler(body: dict[str, Any]) -> Reply:
        with lock:
            if not queue:
                raise LookupError("the script has no reply left for this request")
            reply = queue.pop(0)
        return reply(body) if callable(reply) else reply

    return handler


def default_handler(body: dict[str, Any]) -> Reply:
    """Answer the atlas-graph schemas with passing values, anything else with text.

    A schema asked for as a forced tool gets a tool call; one asked for by ``response_format``
    gets its JSON as the message text, as servers that enforce a JSON schema answer.
    """
    for name in tool_names(body):
        if name in DEFAULT_TOOL_ARGUMENTS:
            return tool_call(name, DEFAULT_TOOL_ARGUMENTS[name])
    for name in schema_names(body):
        if name in DEFAULT_TOOL_ARGUMENTS:
            return structured(DEFAULT_TOOL_ARGUMENTS[name])
    return DEFAULT_ANSWER


class OpenAIServer:
    """An OpenAI-compatible server on ``127.0.0.1``; use as a context manager.

    Attributes:
        base_url: ``http://127.0.0.1:PORT/v1``, ready for ``ChatOpenAI(base_url=...)``.
        errors: Problems in the handler itself (exceptions, unusable replies); each was
            answered with HTTP 400 so that it is never mistaken for a transient failure.
    """

    def __init__(
        self, handler: Handler = default_handler, *, usage: dict[str, int] | None = None
    ) -> None:
        self._handler = handler
        self._usage = dict(usage or USAGE)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._counter = 0
        self.errors: list[str] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # ------------------------------------------------------------------ public API

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The requests to the chat-completions endpoint."""
        return [request for request in self.requests if request.path == CHAT_PATH]

    def set_handler(self, handler: Handler) -> None:
        """Answer the following requests with ``handler``."""
        with self._lock:
            self._handler = handler

    def start(self) -> OpenAIServer:
        """Bind to a free loopback port and serve from a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("server already started")
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._request_handler_class())
        httpd.daemon_threads = True
        self._httpd = httpd
        host, port = httpd.server_address[:2]
        self.base_url = f"http://{host}:{port}/v1"
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"openai-test-server-{port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals

    def _record(self, request: RecordedRequest) -> Handler:
        with self._lock:
            self._requests.append(request)
            return self._handler

    def _next_id(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    def _completion(self, body: dict[str, Any], reply: str | dict[str, Any]) -> dict[str, Any]:
        number = self._next_id()
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if isinstance(reply, str):
            message["content"] = reply
            finish_reason = "stop"
        elif set(reply) == {"json"}:
            message["content"] = json.dumps(reply["json"])
            finish_reason = "stop"
        elif set(reply) == {"truncated"}:
            message["content"] = str(reply["truncated"])
            finish_reason = "length"
        else:
            if set(reply) == {"tool_call"}:
                calls, content = [reply["tool_call"]], None
            elif "tool_calls" in reply and set(reply) <= {"tool_calls", "content"}:
                calls, content = reply["tool_calls"], reply.get("content") or None
            else:
                raise TypeError(f"unusable handler reply {reply!r}")
            if not calls or not all(isinstance(c, dict) and "name" in c for c in calls):
                raise TypeError(f"unusable handler reply {reply!r}")
            message["content"] = content
            message["tool_calls"] = [
                {
                    "id": f"call_wire_{number}_{index}",
                    "type": "function",
                    "function": {
                        "name": call["name"],
                        "arguments": call.get("arguments", {})
                        if isinstance(call.get("arguments", {}), str)
                        else json.dumps(call.get("arguments", {})),
                    },
                }
                for index, call in enumerate(calls)
            ]
            finish_reason = "tool_calls"
        return {
            "id": f"chatcmpl-wire-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or "unknown",
            "system_fingerprint": "fp_wire",
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": dict(self._usage),
        }

    def _request_handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers
            timeout = 10
            server_version = "atlas-wire-test/1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

            def _send_json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            def _send_error(self, status: int, message: str) -> None:
                error_type = _STATUS_TYPES.get(status, "server_error")
                self._send_json(
                    status,
                    {"error": {"message": message, "type": error_type, "param": None,
                               "code": error_type}},
                )  # fmt: skip

            def do_GET(self) -> None:
                server._record(RecordedRequest("GET", self.path, self._headers(), None))
                self._send_error(404, f"GET {self.path} is not served by this test server")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"null")
                except json.JSONDecodeError:
                    body = None
                handler = server._record(
                    RecordedRequest(
                        "POST", self.path, self._headers(), body if isinstance(body, dict) else None
                    )
                )
                if self.path != CHAT_PATH:
                    self._send_error(404, f"POST {self.path} is not served; use {CHAT_PATH}")
                    return
                if not isinstance(body, dict):
                    self._send_error(400, "request body is not a JSON object")
                    return
                if body.get("stream"):
                    self._send_error(
                        400, "stream=true is not supported by this test server; "
                        "request a non-streaming completion",
                    )  # fmt: skip
                    return
                try:
                    reply = handler(body)
                    if isinstance(reply, bool) or not isinstance(reply, str | int | dict):
                        raise TypeError(f"unusable handler reply {reply!r}")
                    if isinstance(reply, int):
                        self._send_error(reply, f"scripted HTTP {reply} from the test server")
                        return
                    payload = server._completion(body, reply)
                except Exception as error:
                    problem = f"test handler failed: {type(error).__name__}: {error}"
                    with server._lock:
                        server.errors.append(problem)
                    self._send_error(400, problem)
                    return
                self._send_json(200, payload)

            def _headers(self) -> dict[str, str]:
                return {name.lower(): value for name, value in self.headers.items()}

        return _Handler


def serve_openai(handler: Handler = default_handler) -> OpenAIServer:
    """A started-on-enter server: ``with serve_openai(fn) as server: ...``."""
    return OpenAIServer(handler)


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A running server with ``default_handler``; fails the test if the handler broke."""
    with OpenAIServer() as server:
        yield server
    if server.errors:
        pytest.fail("openai test server handler errors:\n" + "\n".join(server.errors))
