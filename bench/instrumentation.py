"""What keeping events costs: the same sessions with the node wrapper on and off.

Not a test: nothing asserts on time. Both variants build the graph the same way; "off" skips
``instrument_nodes`` (so no ``trajectory_events``, no LangSmith labels). Sessions are timed in
CPU time of this process (``time.process_time``), which other load on a shared machine
disturbs less than wall time; runs alternate in rounds so that noise hits both alike. Prints a
table and a JSON document.

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

STEPS = [{"id": i, "description": f"step {i}", "depends_on": []} for i in range(1, 21)]
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
        start = time.process_time()
        state = await graph.ainvoke({"task": f"task {n}", "mode": lane})
        times.append((time.process_time() - start) * 1000)
        assert state["status"] == "succeeded", state.get("status")
    return statistics.median(times)


async def per_call_us(calls: int) -> dict[str, float]:
    """The wrapper alone around a no-op node, without and with one event per call."""
    from atlas_graph.telemetry.events import emit
    from atlas_graph.telemetry.instrument import _wrap_async

    async def quiet(state: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def one_event(state: dict[str, Any]) -> dict[str, Any]:
        emit(None, "retry", session_id="s", actor="system", step_id=1, attempt=1)
        return {}

    results = {}
    for name, node in (("no event", quiet), ("one event", one_event)):
        wrapped = _wrap_async(node, "teacher", 500)
        timings = {}
        for label, func in (("raw", node), ("wrapped", wrapped)):
            start = time.process_time()
            for _ in range(calls):
                await func({})
            timings[label] = (time.process_time() - start) / calls * 1e6
        results[name] = round(timings["wrapped"] - timings["raw"], 2)
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    for lane in ("paired", "escalate"):  # escalate: 20 independent steps
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
    micro = await per_call_us(20_000)
    for name, added in micro.items():
        print(f"wrapper cost per node call, {name}: {added:.2f} us")
    print(json.dumps({"sessions": args.sessions, "rounds": args.rounds, "results": results,
                      "wrapper_us_per_call": micro}))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
