"""What adaptive teaching adds to a session, measured with scripted zero-latency models.

Run from the repository root::

    python bench/adaptive.py            # 200 sessions per case after 20 warm-up
    python bench/adaptive.py --quick    # 40 sessions per case
    python bench/adaptive.py --json out.json

A benchmark, not a test: nothing asserts on time. Each case is one compiled graph (no
checkpointer) running paired sessions of one fingerprint one after another, so the store holds
a realistic, growing history. Cases:

- ``defaults``: no store, no probe (the baseline);
- ``defaults + store``: an ``InMemoryStore``; nothing adaptive is configured, so it is untouched;
- ``probe``: a scripted probe model, history read before and written after every session;
- ``probe + memory + drift``: adds persona memory (one guidance lesson per session) and drift;
- ``+ prompt rewrite``: adds a rewrite block, served from the store after the first session.

Columns: median and p90 milliseconds per session, and supersteps (nodes run) per session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from typing import Any

from langgraph.store.memory import InMemoryStore

from atlas_graph.graph import create_atlas_graph
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

VERDICT = {"valid": True, "score": 0.9, "rationale": "ok", "guidance": "keep answers short"}
PROBE = {"mode": "paired", "confidence": 0.7, "evidence": ["steady rewards"]}
PERSONAS = {"planner": "plan it", "executor": "do it", "teacher": "judge it"}
AGENT = {"type": "python", "import_path": "bench.adaptive:unused", "system_prompt": "Be brief."}

CASES: dict[str, tuple[dict[str, Any], bool]] = {
    "defaults": ({}, False),
    "defaults + store": ({}, True),
    "probe": ({"adaptive_teaching": {"probe": {"llm": {"model": "probe"}}}}, True),
    "probe + memory + drift": (
        {"adaptive_teaching": {"probe": {"llm": {"model": "probe"}}},
         "learning": {"enabled": True}, "runtime_safety": {"drift": {"enabled": True}}},
        True,
    ),
    "+ prompt rewrite": (
        {"adaptive_teaching": {"probe": {"llm": {"model": "probe"}}},
         "learning": {"enabled": True}, "runtime_safety": {"drift": {"enabled": True}},
         "agent": AGENT, "prompt_rewrite": {"llm": {"model": "rewrite"}}},
        True,
    ),
}  # fmt: skip


def unused(request: Any) -> str:  # the config's agent; the scripted agent is passed instead
    return ""


def build(config: dict[str, Any], with_store: bool) -> Any:
    """One compiled graph (no checkpointer) with scripted agent, teacher and adaptive models."""
    models = {"teacher": ScriptedChatModel(responses=[VERDICT], repeat_last=True)}
    if "adaptive_teaching" in config:  # a probe model counts as configuring the probe
        models["probe"] = ScriptedChatModel(responses=[PROBE], repeat_last=True)
    if "prompt_rewrite" in config:
        models["prompt_rewrite"] = ScriptedChatModel(responses=[PERSONAS], repeat_last=True)
    builder = create_atlas_graph(
        {"storage": {"backend": "memory"}, **config}, agent=ScriptedAgent(), models=models
    )
    return builder.compile(store=InMemoryStore() if with_store else None)


async def session(graph: Any, index: int) -> tuple[float, int]:
    """One paired session: wall time in ms and nodes run."""
    run_config = {"configurable": {"thread_id": f"s{index}"}}
    started = time.perf_counter()
    ran = 0
    async for _ in graph.astream({"task": "benchmark task"}, run_config, stream_mode="updates"):
        ran += 1
    return (time.perf_counter() - started) * 1000, ran


async def measure(sessions: int, warmup: int = 20) -> dict[str, dict[str, Any]]:
    """Median/p90 ms and nodes per session for every case.

    Cases take turns session by session, so load on a shared machine hits them alike.
    """
    graphs = {name: build(config, store) for name, (config, store) in CASES.items()}
    times: dict[str, list[float]] = {name: [] for name in graphs}
    nodes: dict[str, int] = {}
    for index in range(sessions + warmup):
        for name, graph in graphs.items():
            elapsed, nodes[name] = await session(graph, index)
            if index >= warmup:
                times[name].append(elapsed)
    results = {}
    for name, values in times.items():
        values.sort()
        results[name] = {
            "median_ms": round(statistics.median(values), 3),
            "p90_ms": round(values[int(len(values) * 0.9) - 1], 3),
            "nodes_per_session": nodes[name],
            "sessions": sessions,
        }
    return results


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="write the JSON document here instead of stdout")
    args = parser.parse_args(argv)
    sessions = 40 if args.quick else 200
    results = await measure(sessions)
    print(f"{'case':<26} {'median ms':>10} {'p90 ms':>8} {'nodes':>6}")
    for name, row in results.items():
        print(
            f"{name:<26} {row['median_ms']:>10.2f} {row['p90_ms']:>8.2f} "
            f"{row['nodes_per_session']:>6}"
        )
    document = {
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0]},
        "lane": "paired",
        "results": results,
    }
    text = json.dumps(document, indent=2)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
