"""LangChain tools named from YAML by the tool tests."""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.tools import InjectedToolCallId, tool
from langgraph.prebuilt import InjectedState


@tool
def convert(amount: float, currency: str) -> str:
    """Convert an amount in euros to another currency."""
    return f"{amount * 2:g} {currency}"


@tool
def whoami(
    note: str,
    task: Annotated[str, InjectedState("task")],
    call_id: Annotated[str, InjectedToolCallId],
) -> str:
    """Say which task and call this is."""
    return f"{note}|{task}|{call_id}"


def shout(text: str) -> str:
    """Upper-case the text."""
    return text.upper()


def untyped_args(**kwargs: Any) -> str:
    return "x"
