"""The chaos suite runs from tests/chaos; its helpers import as plain modules.

Tests record each fault they injected with ``chaos_record``; the run ends with a table of
fault, trials, recorded outcome, sessions lost and resources leaked (claim files, partial
export files, claim connections).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))


import pytest
from pgcluster import Cluster, throwaway_cluster

_TABLE: list[tuple[str, int, str, int, int]] = []
Record = Callable[..., None]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster on its own port for this module (never the shared one)."""
    yield from throwaway_cluster()


@pytest.fixture
def chaos_record() -> Record:
    """``chaos_record(fault, trials, outcome, lost=0, leaked=0)``: one row of the table."""

    def record(fault: str, trials: int, outcome: str, lost: int = 0, leaked: int = 0) -> None:
        _TABLE.append((fault, trials, outcome, lost, leaked))

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _TABLE:
        return
    terminalreporter.section("chaos: fault, trials, outcome, lost, leaked")
    terminalreporter.write_line("| fault | trials | recorded outcome | lost | leaked |")
    terminalreporter.write_line("|---|---|---|---|---|")
    for fault, trials, outcome, lost, leaked in _TABLE:
        terminalreporter.write_line(f"| {fault} | {trials} | {outcome} | {lost} | {leaked} |")
