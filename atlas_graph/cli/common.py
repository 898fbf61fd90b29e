"""What every ``atlas-graph`` command shares: exit codes and the sync bridge.

Exit codes: 0 the session succeeded (or the command did its job), 1 a session finished but
failed, 2 bad usage, config or input, 3 the session stopped with an error (it can be resumed).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 3


def run_sync(coroutine: Any) -> Any:
    """Run a session operation, also from inside a running loop (``main()`` in a notebook)."""
    from atlas_graph.runner import run_sync as run_to_end  # imported late: fast CLI start

    return run_to_end(coroutine)


def scrubbed_json(result: Any) -> str:
    """A ``Result`` as one JSON line, secrets scrubbed (``redaction.scrub``)."""
    import json

    from atlas_graph.redaction import scrub

    return json.dumps(scrub(result.model_dump(mode="json")), ensure_ascii=False)


def plot_unavailable(folder: str | None) -> bool:
    """``--plot`` was given but matplotlib is missing: say so on stderr, before anything runs.

    The caller returns ``EXIT_USAGE`` when this is true; the check does not import matplotlib.
    """
    if folder is None or importlib.util.find_spec("matplotlib") is not None:
        return False
    print("atlas-graph: --plot needs matplotlib: pip install 'atlas-graph[plot]'", file=sys.stderr)
    return True


def print_plots(plots: Sequence[Path], as_json: bool) -> None:
    """The charts written, on one line: on stderr with ``--json``, so stdout stays pure JSON."""
    if plots:
        print("plots: " + ", ".join(str(path) for path in plots),
              file=sys.stderr if as_json else sys.stdout)  # fmt: skip
