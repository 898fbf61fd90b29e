"""Agents written the way Atlas SDK documents them, unchanged, for the migration tests."""

from __future__ import annotations

import json
from typing import Any

SEEN: list[tuple[str, dict[str, Any] | None]] = []


def agent(prompt, metadata=None):  # Atlas's documented form, unannotated
    SEEN.append((prompt, metadata))
    return f"answer to: {metadata['task_payload'] if metadata else prompt}"


async def create_agent(prompt=None, metadata=None):
    SEEN.append((prompt, metadata))
    step = (metadata or {}).get("step_payload")
    if step is None:
        return "async answer"
    return f"step {step['step_id']} (attempt {step['attempt']}) of {metadata['task_payload']}"


def keyword_metadata(prompt: str, *, metadata: dict[str, Any] | None = None) -> str:
    SEEN.append((prompt, metadata))
    return "keyword answer"


def llm_reader(prompt: str, metadata: dict[str, Any] | None = None) -> str:
    config = (metadata or {})["llm_config"]
    return f"model={config['model']} provider={config['provider']}"


def self_run_tools(prompt: str, metadata: dict[str, Any] | None = None) -> str:
    """Atlas's tool-running agent: asks for a tool, runs it when called back, then answers."""
    metadata = metadata or {}
    tool = metadata.get("tool")
    if tool is not None:
        SEEN.append((prompt, metadata))
        assert json.loads(prompt) == {"tool": tool}
        left, right = tool["arguments"]["expression"].split("*")
        return str(int(left) * int(right))
    if metadata.get("tool_rounds"):
        result = metadata["tool_rounds"][-1]["results"][0]
        return f"The result is {result['content']}."
    return json.dumps(
        {
            "content": "",
            "tool_calls": [
                {"id": "c1", "name": "calculate", "arguments": {"expression": "17 * 23"}}
            ],
        }
    )


def json_answer(prompt: str, metadata: dict[str, Any] | None = None) -> str:
    return json.dumps({"answer": 42})
