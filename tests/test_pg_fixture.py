"""The PostgreSQL fixture's contract: skip without a server, fail when CI requires one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
UNREACHABLE = "postgresql://postgres:hunter2@127.0.0.1:1/postgres"


def run_pg_test(**env: str) -> subprocess.CompletedProcess[str]:
    """Run one PostgreSQL test in a child pytest against an unreachable server."""
    environment = {k: v for k, v in os.environ.items() if k != "ATLAS_GRAPH_REQUIRE_POSTGRES"}
    environment.update(ATLAS_GRAPH_TEST_DATABASE_URL=UNREACHABLE, **env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         str(TESTS / "test_persistence.py"), "-k", "test_postgres_sync_form"],
        capture_output=True, text=True, timeout=120, env=environment, cwd=TESTS.parent,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "exit_code", "expected"),
    [
        ({}, 0, "1 skipped"),
        ({"ATLAS_GRAPH_REQUIRE_POSTGRES": "1"}, 1, "ATLAS_GRAPH_REQUIRE_POSTGRES=1"),
    ],
)
def test_missing_server(env: dict[str, str], exit_code: int, expected: str) -> None:
    child = run_pg_test(**env)
    output = child.stdout + child.stderr
    assert child.returncode == exit_code, output
    assert expected in output
    assert "PostgreSQL not reachable" in output
    assert "hunter2" not in output
