"""What keeping events costs: the same sessions with the node wrapper on and off.

Not a test: nothing asserts on time. Both variants build the graph the same way; "off" skips
``instrument_nodes`` (so no ``trajectory_events``, no LangSmith labels). Runs alternate in
rounds so that machine noise hits both alike. Prints a table and a JSON document.

    python bench/instrumentation.py [--sessions 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any
from unittest import mock

from atlas_graph import graph as graph_module
from atlas_graph.graph import create_atlas_graph
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

STEPS = [{"id": i, "description": f"step {i}", "depends_on": []} for i in range(1, 4)]
VERDICT = json.dumps({"approved": True, "concerns": [], "valid": True, "score": 0.9,
                      "rationale": "ok", "guidance": ""})  # fmt: skip


def build(instrumented: bool) -> Any:
    config = {"storage": {"backend": "memory"}}
    kwargs = {
        "agent": ScriptedAgent(plan=STEPS),
        "models": {"teacher": ScriptedChatModel(responder=lambda _: VERDICT)},
    }
    if instrumented:
        return create_atlas_graph(config, **kwargs).compile()
    with mock.patch.object(graph_module, "instrument_nodes", lambda *a, **k: None):
        return create_atlas_graph(config, **kwargs).compile()


async def per_session_ms(graph: Any, lane: str, sessions: int) -> float:
    times = []
    for n in range(sessions):
        start = time.perf_counter()
        state = await graph.ainvoke({"task": f"task {n}", "mode": lane})
        times.append((time.perf_counter() - start) * 1000)
        assert state["status"] == "succeeded", state.get("status")
    return statistics.median(times)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    for lane in ("paired", "escalate"):
        graphs = {on: build(on) for on in (True, False)}
        for graph in graphs.values():
            await per_session_ms(graph, lane, 20)  # warm up
        medians: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.rounds):
            for on, graph in graphs.items():
                medians[on].append(await per_session_ms(graph, lane, args.sessions))
        on, off = statistics.median(medians[True]), statistics.median(medians[False])
        results[lane] = {"on_ms": round(on, 3), "off_ms": round(off, 3),
                         "added_ms": round(on - off, 3)}  # fmt: skip
    print(f"{'lane':<10} {'wrapper on':>12} {'wrapper off':>12} {'added':>10}")
    for lane, row in results.items():
        print(f"{lane:<10} {row['on_ms']:>9.3f} ms {row['off_ms']:>9.3f} ms "
              f"{row['added_ms']:>7.3f} ms")  # fmt: skip
    print(json.dumps({"sessions": args.sessions, "rounds": args.rounds, "results": results}))


if __name__ == "__main__":
    asyncio.run(main())
