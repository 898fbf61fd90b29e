"""An OpenAI-compatible chat-completions server for load benchmarks, on loopback only.

Run it as its own process so its work does not share the client's event loop and GIL::

    python bench/openai_stub.py --latency 0.05      # prints the port, then serves until killed

Standard library asyncio streams, HTTP/1.1 keep-alive, one coroutine per connection: a request
costs a sleep of ``--latency`` seconds and a few hundred microseconds of parsing, so a hundred
clients at once measure the client, not the server. It answers ``POST /v1/chat/completions``
without streaming: a request that forces a tool (``tool_choice`` naming a function) gets a call
to that tool with arguments that pass (a verdict that approves, a plan review that approves), a
request for a JSON schema (``response_format``, what atlas-graph asks a loopback server for)
gets the same arguments as its text; any other request gets a short text answer. Every reply
carries ``usage``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

TOOL_ARGUMENTS: dict[str, dict[str, Any]] = {
    "TeacherVerdict": {"valid": True, "score": 0.9, "rationale": "ok", "guidance": ""},
    "PlanReview": {"approved": True, "concerns": []},
    "JudgeReply": {
        "principles": [{"name": "correct", "weight": 1, "description": "answers the task"}],
        "score": 0.9,
        "rationale": "ok",
        "uncertainty": 0.1,
    },
}
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def forced_tool(body: dict[str, Any]) -> str | None:
    """The function a request forces with ``tool_choice``, if any."""
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        return (choice.get("function") or {}).get("name")
    if choice == "required" and body.get("tools"):
        return body["tools"][0].get("function", {}).get("name")
    return None


def completion(body: dict[str, Any], number: int) -> dict[str, Any]:
    """The chat completion answering ``body``."""
    tool = forced_tool(body)
    message: dict[str, Any] = {"role": "assistant", "content": "stub answer"}
    finish = "stop"
    shape = body.get("response_format") or {}
    if tool is None and shape.get("type") == "json_schema":
        name = (shape.get("json_schema") or {}).get("name", "")
        message["content"] = json.dumps(TOOL_ARGUMENTS.get(name, {}))
    if tool is not None:
        arguments = json.dumps(TOOL_ARGUMENTS.get(tool, {}))
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{number}",
                    "type": "function",
                    "function": {"name": tool, "arguments": arguments},
                }
            ],
        }
        finish = "tool_calls"
    return {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "stub"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": USAGE,
    }


class Stub:
    """Serves connections; counts requests so a benchmark can check how many calls it made."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.requests = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in header_lines if line)
                }
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                method, path, _ = request_line.split(" ", 2)
                status, payload = await self.answer(method, path, raw)
                data = json.dumps(payload).encode()
                writer.write(
                    f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def answer(self, method: str, path: str, raw: bytes) -> tuple[str, dict[str, Any]]:
        if method == "GET" and path == "/stats":
            return "200 OK", {"requests": self.requests}
        if method != "POST" or not path.endswith("/chat/completions"):
            return "404 Not Found", {"error": {"message": f"no route {method} {path}"}}
        self.requests += 1
        number = self.requests
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        return "200 OK", completion(json.loads(raw or b"{}"), number)


async def main(latency: float, port: int) -> None:
    stub = Stub(latency)
    server = await asyncio.start_server(stub.serve, "127.0.0.1", port, backlog=512)
    print(server.sockets[0].getsockname()[1], flush=True)  # the parent reads the port here
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.latency, args.port))
    except KeyboardInterrupt:
        sys.exit(0)
