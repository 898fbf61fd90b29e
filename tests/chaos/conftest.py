"""The chaos suite runs from tests/chaos; its helpers import as plain modules."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


import pytest
from pgcluster import Cluster, throwaway_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster on its own port for this module (never the shared one)."""
    yield from throwaway_cluster()
