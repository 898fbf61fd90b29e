"""Framework overhead of the atlas-graph supervision loop, measured with scripted models.

Run from the repository root::

    python bench/overhead.py                 # full run (200 sessions per lane after 20 warm-up)
    python bench/overhead.py --quick         # ~30 sessions per lane, fewer repeats
    python bench/overhead.py --json out.json # write the JSON document to a file
    python bench/overhead.py --profile paired  # cProfile one lane's session loop, nothing else

This is a benchmark, not a test: it never asserts on time. The only hard checks are that the
scripted sessions succeed (otherwise the numbers would describe a broken run).

Measures:

1. Framework time per session for each lane (auto, paired, coach, escalate with 3 steps, and
   escalate with 20 steps) with zero-latency scripted models, graph compiled once without a
   checkpointer. Time per session is the wall time of ``await graph.ainvoke(...)``.
2. 100 concurrent paired sessions with 50 ms latency on the student agent and on the teacher
   model: wall time of ``asyncio.gather`` over 100 ``ainvoke`` divided by one session's time.
3. Escalate with 5 independent steps: wall time divided by the critical path (see
   ``run_parallel_steps`` for exactly which calls carry latency in each variant).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import importlib.metadata
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.graph.state import CompiledStateGraph

from atlas_graph.graph import create_atlas_graph
from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

LATENCY = 0.05  # seconds, the scripted latency of measures 2 and 3
CONCURRENT_SESSIONS = 100
VERDICT = {"valid": True, "score": 0.9, "rationale": "ok", "guidance": ""}
APPROVAL = {"approved": True, "concerns": []}
Step = dict[str, Any]

# -- plans -----------------------------------------------------------------------------------

PLAN_3: list[Step] = [
    {"id": 1, "description": "gather facts A"},
    {"id": 2, "description": "gather facts B"},
    {"id": 3, "description": "combine A and B", "depends_on": [1, 2]},
]

# 20 steps: 8 independent roots, three chains and a fan-in; critical path 5 steps.
PLAN_20_DEPENDS: dict[int, list[int]] = {
    **{i: [] for i in range(1, 9)},
    9: [1], 10: [9], 11: [10],  # chain 1 → 9 → 10 → 11
    12: [2, 3], 13: [12],  # fan-in then chain
    14: [4], 15: [5], 16: [6],  # one-hop dependants
    17: [14, 15, 16], 18: [17],  # fan-in then chain
    19: [7, 8],
    20: [11, 13, 18, 19],  # final fan-in
}  # fmt: skip
PLAN_20: list[Step] = [
    {"id": i, "description": f"work item {i}", "depends_on": deps}
    for i, deps in PLAN_20_DEPENDS.items()
]

PLAN_5_INDEPENDENT: list[Step] = [{"id": i, "description": f"part {i} of 5"} for i in range(1, 6)]


# -- scripted teacher ------------------------------------------------------------------------


def _is_validation(messages: Sequence[BaseMessage]) -> bool:
    """Validation prompts show the student's output; plan reviews show the plan instead."""
    content = messages[-1].content
    return isinstance(content, str) and "Student output:" in content


def teacher_reply(messages: list[BaseMessage]) -> dict[str, Any]:
    """Approve every plan and pass every attempt, so no session ever retries."""
    return VERDICT if _is_validation(messages) else APPROVAL


async def slow_validation_reply(messages: list[BaseMessage]) -> dict[str, Any]:
    """Like ``teacher_reply``, but validations take ``LATENCY`` and plan reviews take none."""
    if _is_validation(messages):
        await asyncio.sleep(LATENCY)
        return VERDICT
    return APPROVAL


async def slow_step_output(request: Any) -> str:
    """A step output that takes ``LATENCY`` (planning and synthesis stay instant)."""
    await asyncio.sleep(LATENCY)
    return f"result of step {request.step['id']}"


def build(
    *,
    plan: list[Step] | None = None,
    agent_latency: float = 0.0,
    teacher_latency: float = 0.0,
    outputs: Callable[[Any], Awaitable[str]] | None = None,
    responder: Callable[[list[BaseMessage]], Any] = teacher_reply,
    config: Mapping[str, Any] | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """One compiled graph (no checkpointer) with a scripted agent and teacher."""
    agent = ScriptedAgent(plan=plan, outputs=outputs, latency=agent_latency)
    teacher = ScriptedChatModel(responder=responder, latency=teacher_latency, name="teacher")
    builder = create_atlas_graph(dict(config or {}), agent=agent, models={"teacher": teacher})
    return builder.compile()


async def session(
    graph: CompiledStateGraph[Any, Any, Any, Any], lane: str, steps: int = 1
) -> float:
    """Run one session; return its wall time in ms.

    Raises:
        RuntimeError: the scripted session failed or ran another number of steps than
            ``steps``, so its time would not measure what the row says.
    """
    started = time.perf_counter()
    result = await graph.ainvoke({"task": "benchmark task", "mode": lane})
    elapsed = (time.perf_counter() - started) * 1000
    ran = len(result.get("steps") or {})
    if result.get("status") != "succeeded" or ran != steps:
        raise RuntimeError(
            f"{lane} session: status {result.get('status')!r}, {ran} step(s), expected "
            f"'succeeded' and {steps}"
        )
    return elapsed


# -- results ---------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table: a measured value and its target, if it has one."""

    measure: str
    value: float
    unit: str
    target: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool | None:
        return None if self.target is None else self.value <= self.target


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (``fraction`` in 0..1)."""
    ordered = sorted(samples)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "median_ms": round(statistics.median(samples), 3),
        "p90_ms": round(percentile(samples, 0.9), 3),
        "mean_ms": round(statistics.fmean(samples), 3),
        "min_ms": round(min(samples), 3),
        "max_ms": round(max(samples), 3),
    }


# -- measure 1: framework time per session ---------------------------------------------------

LANE_CASES: dict[str, tuple[str, list[Step] | None]] = {
    "auto": ("auto", None),
    "paired": ("paired", None),
    "coach": ("coach", None),
    "escalate-3": ("escalate", PLAN_3),
    "escalate-20": ("escalate", PLAN_20),
}
TARGETS_MS: dict[str, float] = {"escalate-20": 35.0}


async def time_lane(name: str, sessions: int, warmup: int) -> list[float]:
    """Sequential zero-latency sessions of one lane on one compiled graph; ms per session."""
    lane, plan = LANE_CASES[name]
    graph, steps = build(plan=plan), len(plan or [None])
    for _ in range(warmup):
        await session(graph, lane, steps)
    gc.collect()
    return [await session(graph, lane, steps) for _ in range(sessions)]


async def run_lanes(sessions: int, warmup: int) -> list[Row]:
    rows: list[Row] = []
    for name in LANE_CASES:
        stats = summary(await time_lane(name, sessions, warmup))
        target = TARGETS_MS.get(name)
        rows.append(Row(f"{name}: median ms/session", stats["median_ms"], "ms", target, stats))
        rows.append(Row(f"{name}: p90 ms/session", stats["p90_ms"], "ms"))
    return rows


# -- measure 2: concurrent paired sessions ---------------------------------------------------


async def concurrent_walls(
    graph: CompiledStateGraph[Any, Any, Any, Any], repeats: int
) -> list[float]:
    """Wall time (ms) of ``asyncio.gather`` over 100 paired sessions, ``repeats`` times."""
    walls: list[float] = []
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        await asyncio.gather(*(session(graph, "paired") for _ in range(CONCURRENT_SESSIONS)))
        walls.append((time.perf_counter() - started) * 1000)
    return walls


async def run_concurrency(repeats: int) -> list[Row]:
    """100 paired sessions at once vs one, both with 50 ms agent and 50 ms teacher latency.

    The same gather at zero latency is reported too (informational): it is the CPU cost of
    100 sessions on one event loop, the floor under the latency run's wall time.
    """
    graph = build(agent_latency=LATENCY, teacher_latency=LATENCY)
    for _ in range(3):
        await session(graph, "paired")
    singles = [await session(graph, "paired") for _ in range(max(5, repeats))]
    walls = await concurrent_walls(graph, repeats)
    zero_latency = build()
    for _ in range(10):
        await session(zero_latency, "paired")
    cpu_walls = await concurrent_walls(zero_latency, repeats)
    single, wall = statistics.median(singles), statistics.median(walls)
    cpu_wall = statistics.median(cpu_walls)
    detail = {
        "sessions": CONCURRENT_SESSIONS,
        "latency_s": {"agent_execute": LATENCY, "teacher_validation": LATENCY},
        "single_session_ms": [round(v, 3) for v in singles],
        "concurrent_wall_ms": [round(v, 3) for v in walls],
        "single_median_ms": round(single, 3),
        "concurrent_median_ms": round(wall, 3),
        "zero_latency_concurrent_wall_ms": [round(v, 3) for v in cpu_walls],
    }
    n = CONCURRENT_SESSIONS
    return [
        Row("paired: 1 session wall (50ms+50ms latency)", round(single, 3), "ms"),
        Row(f"paired: {n} concurrent wall", round(wall, 3), "ms"),
        Row(f"paired: {n} concurrent / 1 session", wall / single, "x", 2.5, detail),
        Row(f"paired: {n} concurrent wall at zero latency", round(cpu_wall, 3), "ms"),
        Row(f"paired: {n} concurrent at zero latency, per session", cpu_wall / n, "ms"),
    ]


# -- measure 3: parallel steps ---------------------------------------------------------------


async def run_parallel_steps(repeats: int) -> list[Row]:
    """Escalate with 5 independent steps vs its critical path, in two variants.

    The default ``orchestration.max_parallel_steps`` (8) lets all five steps run at once.

    * ``exec+validate latency`` (the headline): only execute calls (agent) and validation calls
      (teacher) sleep 50 ms; planning, plan review and synthesis are instant. Critical path =
      one step's execute + validate = 100 ms.
    * ``uniform latency``: every agent call (plan, execute, synthesize) and every teacher call
      (review, validate) sleeps 50 ms. Critical path = plan + review + execute + validate +
      synthesize = 250 ms.
    """
    split = {"outputs": slow_step_output, "responder": slow_validation_reply}
    uniform = {"agent_latency": LATENCY, "teacher_latency": LATENCY}
    variants: list[tuple[str, dict[str, Any], float, float | None]] = [
        ("exec+validate latency", split, 2 * LATENCY, 1.3),
        ("uniform latency", uniform, 5 * LATENCY, 1.3),
    ]
    rows: list[Row] = []
    for label, options, critical_s, target in variants:
        graph, steps = build(plan=PLAN_5_INDEPENDENT, **options), len(PLAN_5_INDEPENDENT)
        await session(graph, "escalate", steps)
        walls = [await session(graph, "escalate", steps) for _ in range(repeats)]
        wall, critical_ms = statistics.median(walls), critical_s * 1000
        detail = {
            "critical_path_ms": critical_ms,
            "wall_ms": [round(v, 3) for v in walls],
            "wall_median_ms": round(wall, 3),
        }
        rows.append(Row(f"escalate 5 indep. ({label}) wall", round(wall, 3), "ms"))
        rows.append(Row(f"escalate 5 indep. ({label}) / critical path {critical_ms:g}ms",
                        wall / critical_ms, "x", target, detail))  # fmt: skip
    return rows


# -- machine, table, profile -----------------------------------------------------------------


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    """``platform.processor()`` is often empty on Linux; fall back to /proc/cpuinfo."""
    name = platform.processor()
    if name and name not in ("x86_64", "aarch64"):
        return name
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return name or "unknown"


PACKAGES = (
    "atlas-graph", "langgraph", "langgraph-checkpoint", "langgraph-checkpoint-postgres",
    "langgraph-checkpoint-sqlite", "langchain-core", "langchain-openai", "openai", "httpx",
    "psycopg", "pydantic",
)  # fmt: skip


def _ram_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def machine() -> dict[str, Any]:
    """What the numbers were measured on; the load average says how busy the machine was."""
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(affinity(0)) if affinity else None,
        "processor": _cpu_model(),
        "ram_gib": _ram_gib(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "versions": {name: _version(name) for name in PACKAGES},
    }


def report(document: Any, json_path: str | os.PathLike[str] | None) -> None:
    """Print a script's JSON document and, when asked, write it to ``json_path`` as well."""
    text = json.dumps(document, indent=2, default=str)
    print(text)
    if json_path:
        Path(json_path).write_text(text + "\n", encoding="utf-8")


def table(rows: Sequence[Row]) -> str:
    header = ("measure", "value", "target", "ok?")
    lines = [
        (
            row.measure,
            f"{row.value:.2f} {row.unit}",
            "" if row.target is None else f"<= {row.target:g} {row.unit}",
            {None: "", True: "yes", False: "NO"}[row.ok],
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(4)]
    render = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in [header, tuple("-" * width for width in widths), *lines]
    ]
    return "\n".join(render)


def profile(name: str, sessions: int) -> None:
    """cProfile a lane's session loop; print the top cumulative entries of atlas_graph and
    langgraph (plus the unfiltered top, for context)."""
    asyncio.run(time_lane(name, sessions=5, warmup=5))  # imports and first-call costs
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(time_lane(name, sessions=sessions, warmup=0))
    profiler.disable()
    for label, pattern, limit in (
        ("all", "", 25),
        ("atlas_graph", "atlas_graph", 10),
        ("langgraph", "langgraph/", 10),
    ):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
        restrictions: tuple[str | int, ...] = (pattern, limit) if pattern else (limit,)
        stats.print_stats(*restrictions)
        body = out.getvalue()
        print(f"===== {name} x{sessions}: top {limit} cumulative ({label}) =====")
        print(body[body.find("   ncalls") :].rstrip(), end="\n\n")


# -- main ------------------------------------------------------------------------------------


async def run(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    sessions, warmup = (30, 5) if quick else (200, 20)
    concurrency_repeats, parallel_repeats = (2, 5) if quick else (5, 15)
    rows = await run_lanes(sessions, warmup)
    rows += await run_concurrency(concurrency_repeats)
    rows += await run_parallel_steps(parallel_repeats)
    settings = {
        "quick": quick,
        "sessions_per_lane": sessions,
        "warmup_per_lane": warmup,
        "concurrency_repeats": concurrency_repeats,
        "parallel_step_repeats": parallel_repeats,
        "latency_s": LATENCY,
        "checkpointer": None,
        "plans": {"escalate-3": PLAN_3, "escalate-20": PLAN_20, "parallel": PLAN_5_INDEPENDENT},
    }
    return rows, settings


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~30 sessions per lane")
    parser.add_argument("--json", metavar="PATH", help="write the JSON document here")
    parser.add_argument(
        "--profile", choices=sorted(LANE_CASES), help="only cProfile this lane's session loop"
    )
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.profile, sessions=50 if args.quick else 300)
        return
    started = time.perf_counter()
    rows, settings = asyncio.run(run(args.quick))
    print(table(rows))
    document = {
        "benchmark": "atlas-graph framework overhead",
        "machine": machine(),
        "settings": settings,
        "results": [{**asdict(row), "ok": row.ok} for row in rows],
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    text = json.dumps(document, indent=2, default=str)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        print(f"\nJSON written to {args.json}")
    else:
        print()
        print(text)


if __name__ == "__main__":
    main()
