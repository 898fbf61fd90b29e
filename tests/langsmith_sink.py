"""A loopback stand-in for the LangSmith API that records the runs a tracer sends.

It answers what ``langsmith.Client`` calls while tracing: ``GET /info`` (which also tells the
client whether to use the multipart endpoint), ``POST /runs/batch`` (JSON ``post``/``patch``
lists), ``POST /runs/multipart`` (form parts named ``post.<id>``, ``patch.<id>`` and
``<op>.<id>.<field>``), and the single-run ``POST /runs`` / ``PATCH /runs/<id>``.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request: method, path, lower-cased headers and raw body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LangSmithSink:
    """Records requests; ``runs()`` merges every post and patch into one dict per run id."""

    multipart: bool = True
    received: list[Received] = field(default_factory=list)
    _ops: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LangSmithSink:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def runs(self) -> dict[str, dict[str, Any]]:
        """Every run by id: the create's fields, updated by later patches."""
        merged: dict[str, dict[str, Any]] = {}
        with self._lock:
            ops = list(self._ops)
        for kind, run in sorted(ops, key=lambda op: op[0] != "post"):  # creates first
            current = merged.setdefault(str(run["id"]), {})
            for key, value in run.items():
                if kind == "patch" and key == "extra" and isinstance(value, dict):
                    extra = current.setdefault("extra", {})
                    extra.update({k: v for k, v in value.items() if v is not None})
                elif value is not None or key not in current:
                    current[key] = value
        return merged

    def _record(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        with self._lock:
            self.received.append(Received(method, path, headers, body))
            if path.endswith("/runs/batch"):
                payload = json.loads(body)
                for kind in ("post", "patch"):
                    self._ops.extend((kind, run) for run in payload.get(kind) or [])
            elif path.endswith("/runs/multipart"):
                self._ops.extend(_multipart_ops(headers["content-type"], body))
            elif path.endswith("/runs") and method == "POST":
                self._ops.append(("post", json.loads(body)))
            elif "/runs/" in path and method == "PATCH":
                self._ops.append(("patch", {"id": path.rsplit("/", 1)[1], **json.loads(body)}))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _headers(self) -> dict[str, str]:
                return {name.lower(): value for name, value in self.headers.items()}

            def do_GET(self) -> None:
                sink._record("GET", self.path, self._headers(), b"")
                if self.path.rstrip("/").endswith("/info"):
                    self._reply(200, {
                        "version": "0.10.0",
                        "batch_ingest_config": {
                            "use_multipart_endpoint": sink.multipart, "size_limit": 100,
                            "size_limit_bytes": 20_000_000, "scale_up_qsize_trigger": 1000,
                            "scale_up_nthreads_limit": 16, "scale_down_nempty_trigger": 4,
                        },
                        "instance_flags": {},
                    })  # fmt: skip
                else:
                    self._reply(404, {"detail": "not found"})

            def do_POST(self) -> None:
                sink._record("POST", self.path, self._headers(), self._body())
                self._reply(202 if "runs" in self.path else 404, {})

            def do_PATCH(self) -> None:
                sink._record("PATCH", self.path, self._headers(), self._body())
                self._reply(202, {})

        return Handler


def _multipart_ops(content_type: str, body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Runs from a multipart ingest body: ``post.<id>`` parts plus ``post.<id>.<field>``."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        pieces = str(name).split(".")
        if len(pieces) < 2 or pieces[0] not in ("post", "patch"):
            continue  # feedback, attachments
        kind, run_id = pieces[0], pieces[1]
        value = json.loads(part.get_payload(decode=True) or b"null")
        run = runs.setdefault((kind, run_id), {"id": run_id})
        if len(pieces) == 2:
            run.update(value)
        else:
            run[pieces[2]] = value
    return [(kind, run) for (kind, _), run in runs.items()]
