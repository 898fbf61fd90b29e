"""Cells and tables of the evaluation reports' Markdown, one format for every harness.

``eval --baseline``, the runtime matrix, ``eval-probe`` and ``eval-reward`` print the same kinds
of numbers; a missing one is ``-`` in all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def percent(value: float | None) -> str:
    """``62.5%``, or ``-``."""
    return "-" if value is None else f"{value:.1%}"


def decimal(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals, or ``-``."""
    return "-" if value is None else f"{value:.{digits}f}"


def seconds(value: float | None, digits: int = 2) -> str:
    """``1.25s``, or ``-``."""
    return "-" if value is None else f"{value:.{digits}f}s"


def interval(data: Mapping[str, float] | None, *, signed: bool = False) -> str:
    """``62.5% [40.1%, 80.2%]`` from an interval's ``as_dict()`` (``+`` signs for a
    difference), or ``-``."""
    if not data:
        return "-"
    sign = "+" if signed else ""
    return f"{data['estimate']:{sign}.1%} [{data['low']:{sign}.1%}, {data['high']:{sign}.1%}]"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a Markdown table: the header, its rule, then ``rows``."""
    return ["| " + " | ".join(row) + " |" for row in [header, ["---"] * len(header), *rows]]
