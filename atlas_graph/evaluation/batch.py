"""Batch evaluation: run a JSONL file of tasks as sessions and keep one result line per task.

A task line is ``{"task": ..., "session_metadata": {...}, "ground_truth": ..., "id": ...,
"mode": ...}``; only ``task`` is required. Atlas's task files load as they are: the expected
answer may be ``expected_answer``, session metadata may be ``metadata``, and lines starting
with ``#`` are comments (``atlas_task_line``). The whole file is checked before any session
starts, so a typo on line 900 costs nothing.

With an expected answer, a scorer (``scoring.py``) marks each result ``correct``; with
``baseline=True`` every task also runs with the student alone (``baseline.py``) and the report
holds the lift of supervision.

Every task has a stable id: its ``id`` field when given, else a hash of its task text,
session metadata, mode and line number (so editing lines above a task without ``id`` gives it
a new id). Results are appended to the output file as each session ends, flushed line by line,
and a rerun skips every task whose session already finished (``succeeded`` or ``failed``).
Tasks whose session stopped with an error (or waits for a person) run again under their
previous session id, so a kept checkpoint continues where it stopped.

An executor runs the sessions (``atlas_graph.executors``): in this process by default, where
all sessions share one graph, built and compiled once, and one persistence (one pool, one
SQLite file), opened once for the batch; or on Ray workers, each with its own graph and pool
on the shared PostgreSQL storage. Either way the result lines come back here to be written.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar, cast

from langchain_core.language_models import BaseChatModel
from langgraph.graph.state import CompiledStateGraph

from atlas_graph.config import AtlasConfig, load_config
from atlas_graph.errors import (
    AtlasError,
    AtlasRunError,
    AtlasUserError,
    SessionStateError,
    TaskFileError,
    one_line,
)
from atlas_graph.evaluation.baseline import baseline_config, format_lift, lift
from atlas_graph.evaluation.scoring import Scorer, ascore_answer, make_scorer
from atlas_graph.evaluation.stats import Interval, wilson
from atlas_graph.executors import EXECUTORS, ExecutorName, Job
from atlas_graph.executors.local import run_local
from atlas_graph.lanes import LANES, Lane
from atlas_graph.result import Result
from atlas_graph.runner import ConfigSource, arun, one_line_error, run_sync
from atlas_graph.state import AtlasState
from atlas_graph.storage.ledger import arecord_final_checkpoint
from atlas_graph.storage.persistence import Persistence

TASK_KEYS = frozenset({"id", "task", "session_metadata", "ground_truth", "mode"})
FINISHED = frozenset({"succeeded", "failed"})
"""Statuses of sessions that ran to the end; their tasks are skipped on a rerun."""


@dataclass(frozen=True)
class EvalTask:
    """One validated line of a task file."""

    id: str
    task: str
    line: int
    session_metadata: dict[str, Any] = field(default_factory=dict)
    ground_truth: Any = None
    mode: Lane | None = None

    @property
    def expected(self) -> Any:
        """The answer to score against (Atlas's ``expected_answer`` is read as this)."""
        return self.ground_truth


ItemT = TypeVar("ItemT")
OutT = TypeVar("OutT")


class EvalProgress(Protocol):
    """Receives the batch's progress (the CLI draws a bar with it)."""

    def start(self, total: int, skipped: int) -> None:
        """``total`` tasks in the file, ``skipped`` of them already done."""

    def update(self, result: Mapping[str, Any]) -> None:
        """One task finished (its result line)."""

    def close(self) -> None:
        """The batch ended (also after an interruption)."""


async def amap_progress(
    items: Sequence[ItemT],
    work: Callable[[ItemT], Awaitable[OutT]],
    *,
    concurrency: int,
    progress: EvalProgress | None,
    status: Callable[[OutT], str],
) -> list[OutT]:
    """``work`` on every item, at most ``concurrency`` at once; results in item order.

    The harnesses over datasets (probe, reward) share it: ``progress`` hears the start, each
    finished item as a result line whose status ``status`` gives, and the end, also when the
    run is interrupted.

    Raises:
        AtlasUserError: ``concurrency`` is below 1.
    """
    if concurrency < 1:
        raise AtlasUserError(
            f"concurrency must be at least 1, got {concurrency}", concurrency=concurrency
        )
    limit = asyncio.Semaphore(concurrency)
    if progress is not None:
        progress.start(len(items), 0)

    async def one(item: ItemT) -> OutT:
        async with limit:
            out = await work(item)
        if progress is not None:
            progress.update({"status": status(out)})
        return out

    try:
        return list(await asyncio.gather(*(one(item) for item in items)))
    finally:
        if progress is not None:
            progress.close()


# --------------------------------------------------------------------------- task files


def task_id(task: str, session_metadata: Mapping[str, Any], mode: str | None, line: int) -> str:
    """The id of a task line without an ``id``: a hash of what it asks and where it stands."""
    canonical = json.dumps(
        {"task": task, "session_metadata": session_metadata, "mode": mode, "line": line},
        sort_keys=True, ensure_ascii=False, default=str,
    )  # fmt: skip
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


ATLAS_TASK_KEYS = {"expected_answer": "ground_truth", "metadata": "session_metadata"}
"""Atlas's task-line keys and the native keys they are read as."""


def atlas_task_line(data: Any, line: int, where: str = "tasks") -> Any:
    """An Atlas-format task line with Atlas's keys renamed to the native ones.

    Raises:
        TaskFileError: The line has both an Atlas key and its native twin.
    """
    if not isinstance(data, dict) or not any(key in data for key in ATLAS_TASK_KEYS):
        return data
    renamed = dict(data)
    for atlas_key, native_key in ATLAS_TASK_KEYS.items():
        if atlas_key in renamed:
            if native_key in renamed:
                raise TaskFileError(
                    where, line, f'"{atlas_key}" and "{native_key}" are the same field; keep one'
                )
            renamed[native_key] = renamed.pop(atlas_key)
    return renamed


def parse_task(data: Any, line: int, where: str = "tasks") -> EvalTask:
    """Validate one decoded task line.

    Raises:
        TaskFileError: The line is not a usable task; the message names the line.
    """
    data = atlas_task_line(data, line, where)
    if not isinstance(data, dict):
        raise TaskFileError(where, line, 'expected a JSON object like {"task": "..."}')
    unknown = sorted(set(data) - TASK_KEYS)
    if unknown:
        allowed = ", ".join(sorted(TASK_KEYS))
        raise TaskFileError(
            where,
            line,
            f"unknown key(s) {', '.join(unknown)}; allowed: {allowed} "
            "(put extra fields in session_metadata)",
        )
    task = data.get("task")
    if not isinstance(task, str) or not task.strip():
        raise TaskFileError(where, line, '"task" must be a non-empty string')
    metadata = data.get("session_metadata") or {}
    if not isinstance(metadata, dict):
        raise TaskFileError(where, line, '"session_metadata" must be a JSON object')
    mode = data.get("mode")
    if mode is not None and mode not in LANES:
        raise TaskFileError(where, line, f'"mode" must be one of {", ".join(LANES)}, got {mode!r}')
    given = data.get("id")
    if given is not None and (isinstance(given, bool) or not isinstance(given, str | int)):
        raise TaskFileError(where, line, '"id" must be a string or an integer')
    if isinstance(given, str) and not given.strip():
        raise TaskFileError(where, line, '"id" must not be empty')
    identity = str(given) if given is not None else task_id(task, metadata, mode, line)
    return EvalTask(
        id=identity, task=task, line=line, session_metadata=metadata,
        ground_truth=data.get("ground_truth"), mode=mode,
    )  # fmt: skip


def read_jsonl(
    path: str | Path, *, kind: str = "task file", error: type[TaskFileError] = TaskFileError
) -> list[tuple[int, Any]]:
    """The decoded lines of a JSONL file with their line numbers; blank and ``#`` lines skipped.

    Every harness reads its input this way, so Atlas's files (which open with a comment line)
    load the same everywhere.

    Raises:
        TaskFileError: The file is missing or not UTF-8, or a line is not JSON (``error``
            names the subclass to raise); the message names the file (as ``kind``) and line.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as problem:
        raise error(
            str(source), None, f"cannot read {kind} {source}: {problem.strerror or problem}"
        ) from None
    except UnicodeDecodeError:
        raise error(str(source), None, f"{kind} {source} is not UTF-8 text") from None
    lines: list[tuple[int, Any]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue  # Atlas's files open with a comment line
        try:
            lines.append((number, json.loads(raw)))
        except json.JSONDecodeError as problem:
            raise error(
                str(source), number, f"not JSON ({problem.msg}); each line must be one JSON object"
            ) from None
    return lines


def read_tasks(path: str | Path) -> list[EvalTask]:
    """Every task of a JSONL file (blank and ``#`` lines skipped), checked before anything runs.

    Raises:
        TaskFileError: The file is missing, empty, or a line is not a task; the message names
            the file and line number.
    """
    where = str(Path(path))
    return _checked([parse_task(data, number, where) for number, data in read_jsonl(path)], where)


def _checked(tasks: list[EvalTask], where: str) -> list[EvalTask]:
    if not tasks:
        raise TaskFileError(
            where, None, f'{where} has no tasks; write one JSON object a line: {{"task": ...}}'
        )
    seen: dict[str, int] = {}
    for item in tasks:
        if item.id in seen:
            raise TaskFileError(
                where, item.line, f"id {item.id!r} repeats line {seen[item.id]}; ids must be unique"
            )
        seen[item.id] = item.line
    return tasks


def tasks_from(tasks: str | Path | Iterable[EvalTask | Mapping[str, Any]]) -> list[EvalTask]:
    """Checked tasks from a task file, or from task mappings / ``EvalTask`` objects.

    Raises:
        TaskFileError: A task is unusable or two share an id.
    """
    if isinstance(tasks, str | Path):
        return read_tasks(tasks)
    items = [
        item if isinstance(item, EvalTask) else parse_task(dict(item), number)
        for number, item in enumerate(tasks, 1)
    ]
    return _checked(items, "tasks")


# --------------------------------------------------------------------------- result files


def read_results(path: str | Path) -> dict[str, dict[str, Any]]:
    """Result lines of an earlier run by task id (the last line of an id wins).

    A missing file reads as empty. A torn last line (the process died while writing it) is
    ignored; ``ResultsWriter`` cuts it off before appending.

    Raises:
        TaskFileError: A complete line is not a result line.
    """
    source = Path(path)
    if not source.exists():
        return {}
    results: dict[str, dict[str, Any]] = {}
    # the text after the last newline is empty, or a line cut short by a crash: leave it out
    try:
        lines = source.read_text(encoding="utf-8").split("\n")[:-1]
    except OSError as error:
        raise TaskFileError(
            str(source), None, f"cannot read results file {source}: {error.strerror or error}"
        ) from None
    except UnicodeDecodeError:
        raise TaskFileError(
            str(source), None, f"results file {source} is not UTF-8 text; choose another --output"
        ) from None
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as error:
            raise TaskFileError(
                str(source),
                number,
                f"not JSON ({error.msg}); fix or remove that line, or choose another --output",
                results=True,
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise TaskFileError(
                str(source),
                number,
                'not a result line (no "id"); choose another --output',
                results=True,
            )
        results[data["id"]] = data
    return results


class ResultsWriter:
    """Appends result lines and flushes each, so a crash loses no finished task."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _cut_torn_line(self.path)
        self._file: IO[str] = self.path.open("a", encoding="utf-8")

    def write(self, result: Mapping[str, Any]) -> None:
        """Append one line and flush it."""
        self._file.write(json.dumps(result, ensure_ascii=False, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _cut_torn_line(path: Path) -> None:
    """Drop a partial last line left by a crash, so the next line starts on its own."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


# --------------------------------------------------------------------------- result lines


def result_line(
    item: EvalTask, result: Result, *, correct: bool | None = None, wall_seconds: float = 0.0
) -> dict[str, Any]:
    """The result line of a session that ended (finished, or paused for a decision)."""
    status = "waiting" if result.waiting else result.status
    error = None
    if result.waiting:
        error = (
            f"session waits for plan approval; answer it with `atlas-graph approve "
            f"{result.session_id}`, then run the batch again"
        )
    elif result.status != "succeeded":
        error = _step_error(result)
    return {
        "id": item.id,
        "task": item.task,
        "session_id": result.session_id,
        "status": status,
        "lane": result.lane,
        "final_answer": result.final_answer,
        "reward": result.reward["score"] if result.reward else None,
        "retries": result.retries,
        "tokens": sum(int(usage.get("total_tokens", 0)) for usage in result.usage.values()),
        "usage": result.usage,
        # no priced role: no money figure rather than a false zero
        "cost": result.cost["total"] if len(result.cost) > 1 else None,
        "wall_seconds": round(wall_seconds, 3),
        "ground_truth": item.expected,
        "correct": correct,
        "error": error,
    }


def _step_error(result: Result) -> str | None:
    """The last error an attempt of a failed step met (e.g. the agent raised), if any."""
    for step in result.steps:
        errors = [attempt.error for attempt in step.attempt_history if attempt.error]
        if step.status != "succeeded" and errors:
            return f"step {step.step_id}: {errors[-1]}"
    return None


def error_line(item: EvalTask, session_id: str, error: BaseException) -> dict[str, Any]:
    """The result line of a session that stopped with an error (it runs again on a rerun)."""
    # our errors' messages are written for people; another error needs its type to be read
    message = one_line(error) if isinstance(error, AtlasError) else one_line_error(error)
    return {
        "id": item.id,
        "task": item.task,
        "session_id": getattr(error, "session_id", None) or session_id,
        "status": "error",
        "lane": None,
        "final_answer": "",
        "reward": None,
        "retries": 0,
        "tokens": 0,
        "usage": {},
        "cost": None,
        "wall_seconds": 0.0,
        "ground_truth": item.expected,
        "correct": None if item.expected is None else False,
        "error": message,
    }


@dataclass(frozen=True)
class BatchSessions:
    """Runs one task's session on a shared graph and turns it into its result line.

    Executors call it wherever the session runs (this process or a Ray worker), so it holds
    only the config and pickles.
    """

    config: AtlasConfig
    mode: Lane | None = None
    """Forces every session's lane over the task lines' own (the student-alone arm)."""
    scorer: Scorer | None = None

    async def run(self, graph: CompiledStateGraph[Any, Any, Any, Any], job: Job) -> dict[str, Any]:
        """The job's result line; a session error becomes an error line, never an exception."""
        item: EvalTask = job.item
        started = time.perf_counter()
        try:
            result = await arun(
                item.task, config=self.config, mode=self.mode or item.mode,
                thread_id=job.session_id, session_metadata=item.session_metadata, graph=graph,
                stream_progress=False,
            )  # fmt: skip
        except SessionStateError as error:
            # a worker lost after its session ended: the result is in the last checkpoint
            finished = await _finished(graph, job.session_id) if job.tries else None
            if finished is None:
                return error_line(item, job.session_id, error)
            result = finished
        except Exception as error:  # one broken session must not stop the batch
            return error_line(item, job.session_id, error)
        wall = time.perf_counter() - started
        correct = await ascore_answer(
            self.scorer, result.final_answer, item.expected, item.task,
            answered=not result.waiting,
        )  # fmt: skip
        return result_line(item, result, correct=correct, wall_seconds=wall)

    def lost(self, job: Job, message: str) -> dict[str, Any]:
        """The error line of a job whose workers were lost (a rerun continues its session)."""
        return error_line(job.item, job.session_id, AtlasRunError(message))


async def _finished(graph: CompiledStateGraph[Any, Any, Any, Any], thread_id: str) -> Result | None:
    """The ``Result`` of a session that ran to its end, from its checkpoint; else ``None``."""
    snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
    if not snapshot.values or snapshot.next:
        return None
    checkpoint_id = snapshot.config.get("configurable", {}).get("checkpoint_id")
    if graph.store is not None:
        final = cast(AtlasState, snapshot.values)  # the state of an Atlas graph
        await arecord_final_checkpoint(graph.store, final, checkpoint_id)
    return Result.from_state(snapshot.values, checkpoint_id=checkpoint_id)


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class LaneSummary:
    """Totals over a group of result lines (one lane, or all of them)."""

    lane: str
    sessions: int = 0
    succeeded: int = 0
    failed: int = 0
    errors: int = 0
    rewards: tuple[float, ...] = ()
    retries: int = 0
    tokens: int = 0
    scored: int = 0
    correct: int = 0

    @property
    def accuracy(self) -> Interval | None:
        """Correct over scored sessions with its Wilson 95 % interval; None if none scored."""
        return wilson(self.correct, self.scored)

    @property
    def success_rate(self) -> float:
        """Succeeded sessions over all sessions (errors count as not succeeded)."""
        return self.succeeded / self.sessions if self.sessions else 0.0

    @property
    def mean_reward(self) -> float | None:
        """Mean reward of the sessions that have one."""
        return sum(self.rewards) / len(self.rewards) if self.rewards else None

    def add(self, result: Mapping[str, Any]) -> LaneSummary:
        """These totals with one more result line."""
        status = result.get("status")
        reward = result.get("reward")
        return LaneSummary(
            lane=self.lane,
            sessions=self.sessions + 1,
            succeeded=self.succeeded + (status == "succeeded"),
            failed=self.failed + (status == "failed"),
            errors=self.errors + (status not in FINISHED),
            rewards=self.rewards + ((float(reward),) if reward is not None else ()),
            retries=self.retries + int(result.get("retries") or 0),
            tokens=self.tokens + int(result.get("tokens") or 0),
            scored=self.scored + (result.get("correct") is not None),
            correct=self.correct + (result.get("correct") is True),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "lane": self.lane, "sessions": self.sessions, "succeeded": self.succeeded,
            "failed": self.failed, "errors": self.errors, "success_rate": self.success_rate,
            "mean_reward": self.mean_reward, "retries": self.retries, "tokens": self.tokens,
            "scored": self.scored, "correct": self.correct,
            "accuracy": accuracy.as_dict() if (accuracy := self.accuracy) else None,
        }  # fmt: skip


@dataclass(frozen=True)
class EvalSummary:
    """Totals by lane and overall; ``lanes`` keeps the lane order of ``LANES``."""

    lanes: dict[str, LaneSummary]
    total: LaneSummary

    def as_dict(self) -> dict[str, Any]:
        return {
            "lanes": {name: row.as_dict() for name, row in self.lanes.items()},
            "total": self.total.as_dict(),
        }


NO_LANE = "-"
"""Lane label of sessions that stopped before a lane was chosen."""


def summarize(results: Iterable[Mapping[str, Any]]) -> EvalSummary:
    """Sessions by lane, success rate, mean reward, retries and tokens of result lines."""
    lanes: dict[str, LaneSummary] = {}
    total = LaneSummary("all")
    for result in results:
        lane = result.get("lane") or NO_LANE
        lanes[lane] = lanes.get(lane, LaneSummary(lane)).add(result)
        total = total.add(result)
    order = [*LANES, NO_LANE]
    ordered = sorted(lanes, key=lambda name: order.index(name) if name in order else len(order))
    return EvalSummary({name: lanes[name] for name in ordered}, total)


def format_summary(summary: EvalSummary) -> str:
    """The summary as a plain-text table, one row per lane and a total row."""
    header = ("lane", "sessions", "succeeded", "failed", "errors", "success", "mean reward",
              "retries", "tokens", "accuracy (95% CI)")  # fmt: skip
    rows = [header]
    for row in [*summary.lanes.values(), summary.total]:
        reward = row.mean_reward
        rows.append((
            row.lane, str(row.sessions), str(row.succeeded), str(row.failed), str(row.errors),
            f"{row.success_rate:.1%}", "-" if reward is None else f"{reward:.3f}",
            str(row.retries), str(row.tokens), format_interval(row.accuracy),
        ))  # fmt: skip
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)


def format_interval(interval: Interval | None) -> str:
    """``62.5% [40.1–80.2]``, or ``-`` when nothing was scored."""
    if interval is None:
        return "-"
    return f"{interval.estimate:.1%} [{interval.low:.1%}–{interval.high:.1%}]"


# --------------------------------------------------------------------------- the batch


@dataclass(frozen=True)
class EvalReport:
    """What a batch did: every task's latest result line, in task file order.

    With ``baseline=True``, ``baseline`` holds the student-alone result lines and ``lift``
    the comparison (see ``baseline.lift``).
    """

    results: list[dict[str, Any]]
    ran: int
    skipped: int
    summary: EvalSummary
    output: Path | None
    baseline: list[dict[str, Any]] | None = None
    lift: dict[str, Any] | None = None

    @property
    def errors(self) -> int:
        """Tasks whose session stopped with an error or waits for a decision."""
        return self.summary.total.errors

    @property
    def failed(self) -> int:
        """Tasks whose session finished without meeting its bar."""
        return self.summary.total.failed

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON: counts, the summary and, with a baseline, the lift."""
        data: dict[str, Any] = {"ran": self.ran, "skipped": self.skipped, **self.summary.as_dict()}
        if self.lift is not None:
            data["lift"] = self.lift
        return data


def write_report(report: EvalReport, output: str | Path) -> tuple[Path, Path]:
    """The report as ``<output>.report.json`` and ``<output>.report.md`` beside the results."""
    path = Path(output)
    json_path = path.with_name(f"{path.stem}.report.json")
    markdown_path = path.with_name(f"{path.stem}.report.md")
    json_path.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    parts = ["# Evaluation", "", f"Tasks: {len(report.results)} (results in `{path.name}`)",
             "", "```", format_summary(report.summary), "```"]  # fmt: skip
    if report.lift is not None:
        parts += ["", "## Supervised vs the student alone", "", format_lift(report.lift)]
    markdown_path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return json_path, markdown_path


def baseline_output(output: str | Path) -> Path:
    """Where the student-alone results of ``output`` go: ``r.jsonl`` → ``r.baseline.jsonl``."""
    path = Path(output)
    return path.with_name(f"{path.stem}.baseline{path.suffix or '.jsonl'}")


async def aevaluate(
    tasks: str | Path | Iterable[EvalTask | Mapping[str, Any]],
    *,
    config: ConfigSource | None = None,
    output: str | Path | None = None,
    concurrency: int = 4,
    models: Mapping[str, BaseChatModel] | None = None,
    agent: Any = None,
    persistence: Persistence | None = None,
    progress: EvalProgress | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    executor: ExecutorName = "local",
    ray_address: str | None = None,
    workers: int | None = None,
    scorer: str | Scorer | None = None,
    tolerance: float = 1e-6,
    baseline: bool = False,
) -> EvalReport:
    """Run every task not yet done as a session, at most ``concurrency`` at a time.

    Args:
        tasks: A JSONL task file, or task mappings / ``EvalTask`` objects.
        config: Config path, mapping or ``AtlasConfig`` used for every session.
        output: JSONL file of result lines; tasks it already holds as finished are skipped.
            ``None`` keeps results in memory only (nothing to resume from).
        concurrency: Sessions running at the same time (at least 1); with Ray, per worker.
        models: Chat models by role, as in ``arun``.
        agent: The student's agent, as in ``arun`` (shared by all sessions).
        persistence: An open ``Persistence`` to use; default: the config's storage, opened
            once for the whole batch.
        progress: Told when the batch starts, after each task and at the end (once per arm).
        on_result: Called with each result line as it is written.
        executor: ``local`` runs every session in this process; ``ray`` spreads them over the
            worker processes of a Ray cluster (the ``ray`` extra), which all open the config's
            storage, so it must be PostgreSQL.
        ray_address: With ``ray``: ``local`` starts a cluster on this machine, one worker per
            core; an address (``ray://host:10001``, ``host:6379``, ``auto``) joins a running
            one; ``None`` uses this process's Ray connection, or what ``ray.init()`` finds.
        workers: With ``ray``: worker processes (default: one per CPU of the cluster).
        scorer: How answers are marked ``correct`` against the task's expected answer: a
            name of ``scoring.SCORERS``, ``module:function`` or a ``Scorer``; default
            ``numeric`` for numeric expected answers, else ``exact``.
        tolerance: The ``numeric`` scorer's tolerance.
        baseline: Also run every task with the student alone (results next to ``output`` as
            ``*.baseline.jsonl``) and report the lift.

    Raises:
        TaskFileError: A task line (or a line of ``output``) is unusable; nothing ran.
        AtlasUserError: ``concurrency`` or ``workers`` is below 1, ``executor`` is unknown,
            the scorer is unusable, or Ray was asked for with storage its workers cannot
            share (``SharedStorageError``).
        RayNotInstalledError: ``executor="ray"`` without Ray installed.
        ConfigError: The config is invalid.
        StorageError: The storage cannot be opened.
    """
    if concurrency < 1:
        raise AtlasUserError(
            f"concurrency must be at least 1, got {concurrency}", concurrency=concurrency
        )
    if executor not in EXECUTORS:
        raise AtlasUserError(
            f"unknown executor {executor!r}; expected one of {', '.join(EXECUTORS)}",
            executor=executor,
        )
    if workers is not None and workers < 1:
        raise AtlasUserError(f"workers must be at least 1, got {workers}", workers=workers)
    items = tasks_from(tasks)
    atlas_config: AtlasConfig = load_config(config if config is not None else {})
    chosen = (
        make_scorer(scorer, tolerance=tolerance, config=atlas_config, models=models)
        if scorer is not None
        else None
    )
    if executor == "ray":  # refused before anything runs or prints
        from atlas_graph.executors.ray import shared_storage

        if persistence is not None:
            raise AtlasUserError(
                "aevaluate(executor='ray') takes no persistence=: every Ray worker opens the "
                "config's storage itself"
            )
        atlas_config = shared_storage(atlas_config)
    batch = _Batch(
        items, concurrency, models, agent, persistence, progress, on_result, chosen,
        executor, ray_address, workers,
    )  # fmt: skip
    results, ran = await batch.arun(atlas_config, output, None)
    report = EvalReport(
        results=results, ran=ran, skipped=len(items) - ran,
        summary=summarize(results), output=Path(output) if output is not None else None,
    )  # fmt: skip
    if not baseline:
        return report
    alone_output = baseline_output(output) if output is not None else None
    # the task line's own mode would bring supervision back: the student alone is "auto"
    alone, _ = await batch.arun(baseline_config(atlas_config), alone_output, "auto")
    return replace(report, baseline=alone, lift=lift(results, alone))


@dataclass
class _Batch:
    """One batch's tasks and shared arguments, run once per arm (supervised, baseline)."""

    items: list[EvalTask]
    concurrency: int
    models: Mapping[str, BaseChatModel] | None
    agent: Any
    persistence: Persistence | None
    progress: EvalProgress | None
    on_result: Callable[[dict[str, Any]], None] | None
    scorer: Scorer | None
    executor: ExecutorName
    ray_address: str | None
    workers: int | None

    async def arun(
        self, atlas_config: AtlasConfig, output: str | Path | None, mode: Lane | None
    ) -> tuple[list[dict[str, Any]], int]:
        """Latest result lines in task order, and how many sessions ran now.

        ``mode`` forces every session's lane over the task lines' ``mode``.
        """
        items, progress = self.items, self.progress
        previous = read_results(output) if output is not None else {}
        pending = [
            item for item in items if previous.get(item.id, {}).get("status") not in FINISHED
        ]
        latest = {item.id: previous[item.id] for item in items if item.id in previous}
        # an unfinished earlier session continues from its checkpoint under its old id
        jobs = [
            Job(item.id, previous.get(item.id, {}).get("session_id") or uuid.uuid4().hex, item)
            for item in pending
        ]
        async with AsyncExitStack() as stack:
            writer = ResultsWriter(output) if output is not None else None
            if writer is not None:
                stack.callback(writer.close)
            if progress is not None:
                progress.start(len(items), len(items) - len(pending))
                stack.callback(progress.close)

            def emit(line: dict[str, Any]) -> None:
                latest[line["id"]] = line
                if writer is not None:
                    writer.write(line)
                if progress is not None:
                    progress.update(line)
                if self.on_result is not None:
                    self.on_result(line)

            work = BatchSessions(atlas_config, mode=mode, scorer=self.scorer)
            if self.executor == "ray":
                from atlas_graph.executors.ray import run_on_ray

                await run_on_ray(
                    jobs, work, emit, config=atlas_config, concurrency=self.concurrency,
                    address=self.ray_address, workers=self.workers, models=self.models,
                    agent=self.agent,
                )  # fmt: skip
            else:
                await run_local(
                    jobs, work, emit, config=atlas_config, concurrency=self.concurrency,
                    models=self.models, agent=self.agent, persistence=self.persistence,
                )  # fmt: skip
        return [latest[item.id] for item in items if item.id in latest], len(pending)


def evaluate(
    tasks: str | Path | Iterable[EvalTask | Mapping[str, Any]],
    *,
    config: ConfigSource | None = None,
    output: str | Path | None = None,
    concurrency: int = 4,
    models: Mapping[str, BaseChatModel] | None = None,
    agent: Any = None,
    persistence: Persistence | None = None,
    progress: EvalProgress | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    executor: ExecutorName = "local",
    ray_address: str | None = None,
    workers: int | None = None,
    scorer: str | Scorer | None = None,
    tolerance: float = 1e-6,
    baseline: bool = False,
) -> EvalReport:
    """Synchronous ``aevaluate`` (works in a notebook too); takes the same arguments.

    It runs on its own event loop, so pass no ``persistence`` opened on another loop.
    """
    return run_sync(aevaluate(
        tasks, config=config, output=output, concurrency=concurrency, models=models,
        agent=agent, persistence=persistence, progress=progress, on_result=on_result,
        executor=executor, ray_address=ray_address, workers=workers,
        scorer=scorer, tolerance=tolerance, baseline=baseline,
    ))  # fmt: skip
