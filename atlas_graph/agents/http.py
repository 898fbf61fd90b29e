"""Adapter for an agent behind an HTTP endpoint: POST a JSON payload, read the answer back.

One ``httpx.AsyncClient`` per adapter and event loop keeps connections pooled across steps and
sessions. A client belongs to the loop it was first used on, and ``run()`` may start a fresh
loop per call, so clients are kept per running loop (and dropped with it), never globally.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import weakref
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from atlas_graph.agents.base import AgentError, AgentRequest, AgentResponse, coerce_response


def _safe_url(url: str) -> str:
    """The URL without credentials or query string, fit for an error message."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _scrub(text: str, headers: Mapping[str, str]) -> str:
    """Hide header values a server echoes back (e.g. an auth error quoting the token)."""
    for value in headers.values():
        if len(value) >= 4:
            text = text.replace(value, "[redacted]")
    return text


MAX_RESPONSE_BYTES = 8 * 1024 * 1024
"""Default cap on an agent's reply body: a bigger one is refused (one line, not retried)."""


class HttpAgent:
    """POST each request to ``url`` and read the answer from the JSON reply.

    The payload is a copy of ``payload_template`` with ``prompt`` (the request as text),
    ``metadata`` (session metadata, mode, step, attempt) and ``request`` (the whole structured
    request) filled in where the template does not set them. The reply is read at
    ``result_path`` (default: the whole body); a string there is the answer, an object with
    ``content`` (or ``output``) may also carry ``tool_calls``, ``usage``, ``deliverable`` and
    ``artifacts``.

    Timeouts, connection errors and 5xx replies are retried ``attempts - 1`` times with
    exponential backoff (``backoff_seconds``, doubling); 4xx replies are not retried. The
    final failure is an ``AgentError``, which the step records as a failed attempt. Header
    values never appear in errors.

    Each attempt has a whole-call deadline of ``timeout_seconds`` (connect, send and read the
    whole body: a server that drips a byte a second cannot hold a session), and the body is
    streamed and refused past ``max_response_bytes`` instead of being held in memory.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        headers_env: Mapping[str, str] | None = None,
        timeout_seconds: float = 60.0,
        attempts: int = 3,
        backoff_seconds: float = 0.5,
        payload_template: Mapping[str, Any] | None = None,
        result_path: Sequence[str] | None = None,
        name: str = "http",
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.url = url
        self.name = name
        self._headers = dict(headers or {})
        self._headers_env = dict(headers_env or {})
        self.timeout_seconds = timeout_seconds
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.max_response_bytes = max_response_bytes
        self.payload_template = dict(payload_template or {})
        self.result_path = list(result_path) if result_path else []
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
        self._clients = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:  # headers stay out of reprs, tracebacks and logs
        return f"HttpAgent(url={_safe_url(self.url)!r}, name={self.name!r})"

    # ------------------------------------------------------------------ client per loop

    def _client(self) -> httpx.AsyncClient:
        """The pooled client of the running loop, created on first use there."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_seconds))
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close the running loop's client; clients of other loops are forgotten."""
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        self._clients.clear()
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> HttpAgent:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ request and reply

    def _resolved_headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **self._headers}
        for header, variable in self._headers_env.items():
            value = os.environ.get(variable)
            if value is None:
                raise AgentError(
                    f"http agent '{self.name}': environment variable {variable} for header "
                    f"'{header}' is not set"
                )
            headers[header] = value
        return headers

    def payload(self, request: AgentRequest) -> dict[str, Any]:
        """The JSON body for ``request``: the template, then the request's fields."""
        body = copy.deepcopy(self.payload_template)
        body.setdefault("prompt", request.prompt)
        metadata = body.setdefault("metadata", {})
        if isinstance(metadata, dict):
            metadata.update(
                {**request.metadata, "mode": request.mode, "step": request.step,
                 "attempt": request.attempt}
            )  # fmt: skip
        body.setdefault("request", request.model_dump(mode="json", exclude={"prompt"}))
        return body

    def _answer(self, data: Any) -> AgentResponse:
        node = data
        for key in self.result_path:
            if isinstance(node, Mapping) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                path = ".".join(self.result_path)
                raise AgentError(
                    f"http agent '{self.name}': reply has no '{key}' on result_path '{path}'"
                )
        if isinstance(node, Mapping) and ("content" in node or "output" in node):
            return coerce_response(dict(node))
        if isinstance(node, dict | list):
            return AgentResponse(content=json.dumps(node))
        return AgentResponse(content="" if node is None else str(node))

    async def ainvoke(self, request: AgentRequest) -> AgentResponse:
        """POST the request, retrying transient failures; raise ``AgentError`` at the end."""
        headers = self._resolved_headers()
        body = self.payload(request)
        where = f"http agent '{self.name}' ({_safe_url(self.url)})"
        problem = ""
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 2))
            try:
                status, raw = await self._post(body, headers, where)
            except (httpx.TimeoutException, TimeoutError):
                problem = f"timed out after {self.timeout_seconds:g}s"
                continue

            except httpx.TransportError as error:
                problem = f"connection failed ({type(error).__name__})"
                continue
            text = raw.decode("utf-8", errors="replace")
            if status >= 500:
                problem = f"answered HTTP {status}"
                continue
            if status >= 400:
                detail = " ".join(_scrub(text, headers).split())  # the message is one line
                raise AgentError(f"{where} answered HTTP {status} (not retried): {detail[:200]}")
            try:
                data = json.loads(raw)
            except (ValueError, RecursionError):
                raise AgentError(
                    f"{where} answered HTTP {status} with a body that is not "
                    f"JSON: {_scrub(text, headers)[:120]!r}"
                ) from None
            return self._answer(data)
        tries = "1 attempt" if self.attempts == 1 else f"{self.attempts} attempts"
        raise AgentError(f"{where} {problem}; gave up after {tries}")

    async def _post(
        self, body: dict[str, Any], headers: dict[str, str], where: str
    ) -> tuple[int, bytes]:
        """One POST within the whole-call deadline; the body streamed up to the size cap.

        Raises:
            TimeoutError: the whole call took longer than ``timeout_seconds``.
            AgentError: the body is (or says it is) over ``max_response_bytes``; not retried.
        """
        async with (
            asyncio.timeout(self.timeout_seconds),
            self._client().stream("POST", self.url, json=body, headers=headers) as response,
        ):
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_response_bytes:
                raise self._too_large(where)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise self._too_large(where)
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)

    def _too_large(self, where: str) -> AgentError:
        return AgentError(
            f"{where} answered with a body over {self.max_response_bytes} bytes "
            "(max_response_bytes; not retried)"
        )
