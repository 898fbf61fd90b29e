"""The demo student for the Ray tests: logs every finished call with the node that made it.

It runs inside Ray workers, which import it from the test folder (Ray gives workers the
driver's ``sys.path``). The log and the hold marker live in ``session_metadata``:

- ``log``: a JSONL file; each finished call appends ``{session, mode, step, attempt, round, node}``
  (flushed and fsynced before the call returns), so the test can prove that no finished
  call ran twice;
- ``hold``: a marker path; the first execution of step 1 writes its node id there and then
  waits (without finishing) until the test kills that node.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from atlas_graph import demo
from atlas_graph.agents import AgentRequest

HOLD_SECONDS = 120.0


def _node() -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id())


async def student(request: AgentRequest) -> dict[str, Any]:
    """``demo.student``, logged, holding once where the session's metadata asks it to."""
    metadata = request.metadata
    step = (request.step or {}).get("id")
    hold = metadata.get("hold")
    if hold and request.mode == "execute" and step == 1 and not os.path.exists(hold):
        Path(hold).write_text(_node(), encoding="utf-8")
        await asyncio.sleep(HOLD_SECONDS)  # the node dies here; the call never finishes
    reply = demo.student(request)
    entry = {"session": metadata.get("session_id"), "mode": request.mode, "step": step,
             "attempt": request.attempt, "round": len(request.tool_rounds),
             "node": _node()}  # fmt: skip
    with open(metadata["log"], "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return reply
