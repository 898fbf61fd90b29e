"""Token usage per role: what one call cost, and how costs add up.

A leaf of the package (it imports none of it), so errors, models and state can all speak of a
``Usage`` without importing each other.
"""

# No ``from __future__ import annotations``: ``Usage`` is part of the graph's state schema, which
# LangGraph and pydantic read at run time (see state.py).

from collections.abc import Mapping, Sequence
from typing import Any

# typing's TypedDict cannot become JSON Schema on Python 3.11 (pydantic needs this one)
from typing_extensions import TypedDict


class Usage(TypedDict):
    """Token usage of one role."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    calls: int


def sum_usage(usages: Sequence[Mapping[str, Any]]) -> Usage:
    """Token usage of several calls added up."""

    def total(key: str) -> int:
        return sum(int(usage.get(key, 0)) for usage in usages)

    return {
        "prompt_tokens": total("prompt_tokens"),
        "completion_tokens": total("completion_tokens"),
        "total_tokens": total("total_tokens"),
        "calls": total("calls"),
    }


def token_counts(usage: Usage) -> dict[str, int]:
    """A ``Usage`` without its call count: the tokens an agent reports for its reply."""
    return {
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "total_tokens": usage["total_tokens"],
    }


def reply_usage(usage: Mapping[str, Any]) -> Usage:
    """One agent or model reply's usage as a ``Usage`` (total defaults to the sum).

    A reply is one model call unless it says ``calls``: an agent that is itself a graph (a
    LangChain/LangGraph agent) calls its model several times for one reply.
    """
    prompt = int(usage.get("prompt_tokens", 0))
    completion = int(usage.get("completion_tokens", 0))
    total = int(usage.get("total_tokens", prompt + completion))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total,
            "calls": int(usage.get("calls", 1))}  # fmt: skip


def merge_usage(left: dict[str, Usage] | None, right: dict[str, Usage] | None) -> dict[str, Usage]:
    """Add token usage per role."""
    merged: dict[str, Usage] = {role: {**values} for role, values in (left or {}).items()}
    for role, values in (right or {}).items():
        merged[role] = sum_usage([merged.get(role, {}), values])
    return merged


__all__ = ["Usage", "merge_usage", "reply_usage", "sum_usage", "token_counts"]
