"""What every ``atlas-graph`` command shares: exit codes and the sync bridge.

Exit codes: 0 the session succeeded (or the command did its job), 1 a session finished but
failed, 2 bad usage, config or input, 3 the session stopped with an error (it can be resumed).
"""

from __future__ import annotations

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
