"""Every measure of the performance targets, one function each, for ``python -m bench``.

Each measure returns ``Result`` rows (value, unit, target, how the value meets the target).
A measure that cannot run here (no PostgreSQL server, no export benchmark) gives a row marked
"not available" with the reason, and one that breaks gives a row marked "error", so the suite
always prints its whole table.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import footprint
import http_load
import overhead
import persistence
from overhead import LATENCY, PLAN_5_INDEPENDENT, PLAN_20

from atlas_graph.state import AtlasState

BENCH = Path(__file__).resolve().parent
CONCURRENT = 100
Comparison = Literal["<=", ">=", "=="]


@dataclass
class Result:
    """One table row: a measured value against the target it must meet."""

    measure: str
    value: float | None
    unit: str
    target: float | None = None
    compare: Comparison = "<="
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    status_override: str | None = None

    @property
    def status(self) -> str:
        if self.status_override is not None:
            return self.status_override
        if self.target is None or self.value is None:
            return ""
        met = {
            "<=": self.value <= self.target,
            ">=": self.value >= self.target,
            "==": abs(self.value - self.target) < 1e-9,
        }[self.compare]
        return "pass" if met else "FAIL"

    def as_json(self) -> dict[str, Any]:
        return {
            "measure": self.measure,
            "value": None if self.value is None else round(self.value, 4),
            "unit": self.unit,
            "target": self.target,
            "compare": self.compare,
            "status": self.status,
            "note": self.note,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Settings:
    """How much of each measure to run; ``quick`` trades precision for a short run."""

    quick: bool = False
    database_url: str = persistence.DEFAULT_SERVER

    @property
    def sessions(self) -> int:
        return 40 if self.quick else 200

    @property
    def warmup(self) -> int:
        return 5 if self.quick else 20

    @property
    def repeats(self) -> int:
        return 3 if self.quick else 7


# -- framework time per session --------------------------------------------------------------


async def lane_times(settings: Settings) -> list[Result]:
    """Median wall time of sequential zero-latency sessions, one compiled graph per case."""
    cases = [
        ("auto", "auto", None, 3.0),
        ("paired", "paired", None, 4.0),
        ("coach", "coach", None, 5.0),
        ("escalate, 20-step plan", "escalate", PLAN_20, 35.0),
    ]
    rows = []
    for label, lane, plan, target in cases:
        graph, steps = overhead.build(plan=plan), len(plan or [None])
        for _ in range(settings.warmup):
            await overhead.session(graph, lane, steps)
        gc.collect()
        times = [await overhead.session(graph, lane, steps) for _ in range(settings.sessions)]
        stats = overhead.summary(times)
        rows.append(Result(f"{label}: framework ms/session (median)", stats["median_ms"], "ms",
                           target, detail=stats))  # fmt: skip
    return rows


async def parallel_steps(settings: Settings) -> list[Result]:
    """Escalate, 5 independent steps; execute and validation sleep 50 ms, the rest is instant.

    The critical path is one step's execute + validation: 100 ms.
    """
    graph = overhead.build(
        plan=PLAN_5_INDEPENDENT,
        outputs=overhead.slow_step_output,
        responder=overhead.slow_validation_reply,
    )
    steps = len(PLAN_5_INDEPENDENT)
    await overhead.session(graph, "escalate", steps)
    walls = [await overhead.session(graph, "escalate", steps) for _ in range(settings.repeats * 2)]
    critical = 2 * LATENCY * 1000
    wall = statistics.median(walls)
    detail = {"critical_path_ms": critical, "wall_ms": [round(w, 3) for w in walls]}
    return [Result("escalate, 5 independent steps at 50 ms: wall / critical path",
                   wall / critical, "x", 1.3, detail=detail)]  # fmt: skip


# -- concurrency -----------------------------------------------------------------------------


async def concurrent_in_process(settings: Settings) -> list[Result]:
    """100 paired sessions in one gather vs one session; 50 ms on the agent and the teacher."""
    graph = overhead.build(agent_latency=LATENCY, teacher_latency=LATENCY)
    for _ in range(3):
        await overhead.session(graph, "paired")
    singles = [await overhead.session(graph, "paired") for _ in range(max(5, settings.repeats))]
    cpu = time.process_time()
    walls = await overhead.concurrent_walls(graph, settings.repeats)
    cpu_ms = (time.process_time() - cpu) * 1000 / (settings.repeats * CONCURRENT)
    single, wall = statistics.median(singles), statistics.median(walls)
    detail = {
        "cpu_ms_per_session": round(cpu_ms, 3),
        "single_ms": [round(v, 3) for v in singles],
        "concurrent_wall_ms": [round(v, 3) for v in walls],
        "single_median_ms": round(single, 3),
        "concurrent_median_ms": round(wall, 3),
    }
    note = f"{wall:.0f} ms / {single:.0f} ms; CPU {cpu_ms:.2f} ms per session"
    return [Result(f"{CONCURRENT} concurrent paired sessions, in-process: wall / one session",
                   wall / single, "x", 2.5, note=note, detail=detail)]  # fmt: skip


async def concurrent_run_api(settings: Settings) -> list[Result]:
    """The same 100 sessions through ``arun()``: building a graph per call, and sharing one.

    Informational: it shows what the convenience API adds on top of a compiled graph (config,
    graph build, compile, in-memory storage, result) and how that scales, and what
    ``aopen_graph`` saves a host that runs many sessions.
    """
    from atlas_graph.runner import aopen_graph, arun
    from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

    agent = ScriptedAgent(latency=LATENCY)
    teacher = ScriptedChatModel(responder=overhead.teacher_reply, latency=LATENCY, name="teacher")
    config = {"storage": {"backend": "memory"}}

    async def measure(label: str, **how: Any) -> list[Result]:
        async def once() -> float:
            started = time.perf_counter()
            result = await arun("benchmark task", config=config, mode="paired",
                                stream_progress=False, **how)  # fmt: skip
            if result.status != "succeeded":
                raise RuntimeError(f"paired session through arun ended {result.status!r}")
            return (time.perf_counter() - started) * 1000

        for _ in range(3):
            await once()
        cpu = time.process_time()
        singles = [await once() for _ in range(max(5, settings.repeats))]
        single_cpu = (time.process_time() - cpu) * 1000 / len(singles)
        walls: list[float] = []
        for _ in range(max(1, settings.repeats // 2)):
            gc.collect()
            started = time.perf_counter()
            await asyncio.gather(*(once() for _ in range(CONCURRENT)))
            walls.append((time.perf_counter() - started) * 1000)
        single, wall = statistics.median(singles), statistics.median(walls)
        detail = {"single_ms": singles, "concurrent_wall_ms": walls,
                  "cpu_ms_per_session": single_cpu}  # fmt: skip
        return [
            Result(f"arun(), {label}: CPU per paired session", single_cpu, "ms",
                   note="compiled-graph rows above exclude this"),
            Result(f"arun(), {label}: {CONCURRENT} concurrent, wall / one session",
                   wall / single, "x", note=f"{wall:.0f} ms / {single:.0f} ms", detail=detail),
        ]  # fmt: skip

    rows = await measure("graph built per call", agent=agent, models={"teacher": teacher})
    async with aopen_graph(config, agent=agent, models={"teacher": teacher}) as graph:
        rows += await measure("one aopen_graph", graph=graph)
    return rows


def concurrent_http(settings: Settings) -> list[Result]:
    """The same over HTTP: ``ChatOpenAI`` student and teacher against the loopback stub."""
    result = http_load.run(CONCURRENT, LATENCY, settings.repeats)
    note = (
        f"{result['concurrent_median_ms']:.0f} ms / {result['single_median_ms']:.0f} ms; "
        f"CPU {result['cpu_ms_per_session']:.1f} ms per session; "
        f"{result['calls_per_session']:g} requests per session"
    )
    return [Result(f"{CONCURRENT} concurrent paired sessions, HTTP: wall / one session",
                   result["ratio"], "x", 5.0, note=note, detail=result)]  # fmt: skip


def _bare_paired(latency: float) -> Any:
    """LangGraph alone in a paired session's shape, each node an empty coroutine.

    The same state schema and supersteps as ``create_atlas_graph`` runs for a paired session
    (triage, probe, execute, validate, reward, learn, finalize), routed the same way: probe's
    and reward's routes are conditional edges run inline (``graph.inline``), probe sends the
    step's branch, execute and validate hand it on with ``Command(goto=...)``. Execute and
    validate sleep ``latency``.
    """
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Command, Send

    from atlas_graph.graph import inline

    async def empty(state: AtlasState) -> dict[str, Any]:
        return {}

    async def execute(task: dict[str, Any]) -> Command[Any]:
        if latency:
            await asyncio.sleep(latency)
        return Command(goto=Send("validate", task))

    async def validate(task: dict[str, Any]) -> Command[Any]:
        if latency:
            await asyncio.sleep(latency)
        return Command(goto="reward")

    def after_probe(state: AtlasState) -> Any:
        return [Send("execute", {"task": state["task"], "attempt": 1})]

    def after_reward(state: AtlasState) -> Any:
        return "learn"

    builder = StateGraph(AtlasState)
    for name in ("triage", "probe", "reward", "learn", "finalize"):
        builder.add_node(name, empty)
    builder.add_node("execute", execute, destinations=("validate",))
    builder.add_node("validate", validate, destinations=("reward",))
    builder.add_edge(START, "triage")
    builder.add_edge("triage", "probe")
    builder.add_conditional_edges("probe", inline(after_probe), ["execute"])
    builder.add_conditional_edges("reward", inline(after_reward), ["learn"])
    builder.add_edge("learn", "finalize")
    builder.add_edge("finalize", END)
    return builder.compile()


async def langgraph_floor(settings: Settings) -> list[Result]:
    """What LangGraph itself costs for a paired session's shape, with nothing of ours in it.

    No target: it is the floor under the paired and concurrency rows (informational).
    """
    bare = _bare_paired(0.0)

    async def once(graph: Any) -> float:
        started = time.perf_counter()
        await graph.ainvoke({"task": "benchmark task"})
        return (time.perf_counter() - started) * 1000

    for _ in range(settings.warmup):
        await once(bare)
    gc.collect()
    times = [await once(bare) for _ in range(settings.sessions)]
    slow = _bare_paired(LATENCY)
    await once(slow)
    singles = [await once(slow) for _ in range(max(5, settings.repeats))]
    walls: list[float] = []
    for _ in range(settings.repeats):
        gc.collect()
        started = time.perf_counter()
        await asyncio.gather(*(once(slow) for _ in range(CONCURRENT)))
        walls.append((time.perf_counter() - started) * 1000)
    single, wall = statistics.median(singles), statistics.median(walls)
    return [
        Result("LangGraph alone, paired's 7 supersteps with empty nodes: ms/session",
               statistics.median(times), "ms", note="floor under the paired row",
               detail=overhead.summary(times)),
        Result(f"LangGraph alone, {CONCURRENT} concurrent at 50 ms: wall / one session",
               wall / single, "x", note=f"floor under the in-process ratio ({wall:.0f} ms / "
               f"{single:.0f} ms)", detail={"single_ms": singles, "concurrent_wall_ms": walls}),
    ]  # fmt: skip


# -- persistence -----------------------------------------------------------------------------


async def postgres_sync(settings: Settings) -> list[Result]:
    """Paired sessions with PostgreSQL and ``durability="sync"`` minus the same without storage.

    The two run in alternating blocks, so a change in machine load hits both alike.
    """
    from atlas_graph.config import StorageConfig
    from atlas_graph.storage.persistence import aopen_persistence

    label = "PostgreSQL durability=sync: added ms per paired session"
    block, rounds = (10, 3) if settings.quick else (20, 5)
    async with persistence.postgres_database(settings.database_url) as database_url:
        if database_url is None:
            return [_unavailable(label, "ms", 15.0, "no PostgreSQL server answered")]
        storage = StorageConfig(backend="postgres", database_url=database_url)
        async with aopen_persistence(storage) as opened:
            plain, stored = persistence.compiled(None), persistence.compiled(opened)
            await persistence.paired_sessions(plain, None, 0, 5)
            await persistence.paired_sessions(stored, "sync", 0, 5)
            base: list[float] = []
            sync: list[float] = []
            for _ in range(rounds):
                base += await persistence.paired_sessions(plain, None, block, 0)
                sync += await persistence.paired_sessions(stored, "sync", block, 0)
    cost = statistics.median(sync) - statistics.median(base)
    detail = {"none": overhead.summary(base), "postgres_sync": overhead.summary(sync)}
    note = f"{statistics.median(sync):.1f} ms vs {statistics.median(base):.1f} ms"
    return [Result(label, cost, "ms", 15.0, note=note, detail=detail)]


def export_throughput(settings: Settings) -> list[Result]:
    """Sessions per second exported from PostgreSQL, measured by ``bench/export.py``.

    The script runs in its own process (its seeding and memory stay out of this one) and
    reports ``results.sessions_per_second`` in its ``--json`` document.
    """
    label = "export from PostgreSQL, 5-step sessions"
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "export.json"
        command = [sys.executable, str(BENCH / "export.py"), "--json", str(output),
                   "--database-url", settings.database_url]  # fmt: skip
        if settings.quick:
            command += ["--sessions", "1000", "--repeats", "2"]
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, cwd=BENCH.parent, timeout=1800
        )
        if done.returncode != 0 or not output.exists():
            reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return [_failed(label, "sessions/s", 1000.0, f"bench/export.py: {reason[0]}", ">=")]
        document = json.loads(output.read_text(encoding="utf-8"))
    rate = float(document["results"]["sessions_per_second"])
    return [Result(label, rate, "sessions/s", 1000.0, ">=", detail={"export": document})]


# -- footprint and calls ---------------------------------------------------------------------


def import_time(settings: Settings) -> list[Result]:
    """``python -c "import atlas_graph"`` in fresh interpreters; the median counts."""
    times = footprint.import_times(5 if settings.quick else 11)
    note = f"best {min(times):.3f} s"
    return [Result('python -c "import atlas_graph"', statistics.median(times), "s", 1.0,
                   note=note, detail={"seconds": [round(t, 4) for t in times]})]  # fmt: skip


def peak_rss(settings: Settings) -> list[Result]:
    """Peak RSS of a process running 100 concurrent paired sessions."""
    result = footprint.peak_rss(CONCURRENT)
    note = f"{result['rss_before_mb']:.0f} MB before the sessions"
    return [Result(f"peak RSS, {CONCURRENT} concurrent paired sessions", result["peak_rss_mb"],
                   "MB", 150.0, note=note, detail=result)]  # fmt: skip


async def llm_calls(settings: Settings) -> list[Result]:
    """Model calls of a paired session (agent + teacher): the reward reuses the verdict."""
    from atlas_graph.graph import create_atlas_graph
    from atlas_graph.testing import ScriptedAgent, ScriptedChatModel

    agent = ScriptedAgent()
    teacher = ScriptedChatModel(responder=overhead.teacher_reply, name="teacher")
    judge = ScriptedChatModel(responder=lambda _: {"score": 0.9}, name="judge")
    graph = create_atlas_graph(
        {"rim": {"reuse_validation_as_reward": True}},
        agent=agent,
        models={"teacher": teacher, "judge": judge},
    ).compile()
    sessions = 10
    for _ in range(sessions):
        await overhead.session(graph, "paired")
    calls = agent.call_count + teacher.call_count + judge.call_count
    detail = {"agent": agent.call_count, "teacher": teacher.call_count, "judge": judge.call_count,
              "sessions": sessions}  # fmt: skip
    return [Result("LLM calls per paired session (reward reuses the verdict)",
                   calls / sessions, "calls", 2.0, "==", detail=detail)]  # fmt: skip


# -- plumbing --------------------------------------------------------------------------------


def _unavailable(
    measure: str, unit: str, target: float, reason: str, compare: Comparison = "<="
) -> Result:
    return Result(measure, None, unit, target, compare, note=reason,
                  status_override="not available")  # fmt: skip


def _failed(
    measure: str, unit: str, target: float, reason: str, compare: Comparison = "<="
) -> Result:
    return Result(measure, None, unit, target, compare, note=reason, status_override="error")


Measure = Callable[[Settings], Awaitable[list[Result]] | list[Result]]
MEASURES: dict[str, Measure] = {
    "lanes": lane_times,
    "parallel": parallel_steps,
    "concurrent": concurrent_in_process,
    "floor": langgraph_floor,
    "run-api": concurrent_run_api,
    "http": concurrent_http,
    "postgres": postgres_sync,
    "import": import_time,
    "rss": peak_rss,
    "calls": llm_calls,
    "export": export_throughput,
}


def run_measure(name: str, settings: Settings) -> list[Result]:
    """One measure; an exception becomes an ``error`` row rather than ending the suite."""
    started = time.perf_counter()
    try:
        outcome = MEASURES[name](settings)
        rows = asyncio.run(outcome) if asyncio.iscoroutine(outcome) else outcome
    except Exception as error:  # a broken measure is reported, the others still run
        first = str(error).strip().splitlines()[:1] or [""]
        rows = [Result(name, None, "", note=f"{type(error).__name__}: {first[0]}",
                       status_override="error")]  # fmt: skip
    for row in rows:  # type: ignore[union-attr]
        row.detail.setdefault("measure_seconds", round(time.perf_counter() - started, 1))
    return rows  # type: ignore[return-value]
