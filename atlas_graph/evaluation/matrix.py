"""The runtime matrix: the same task file for every (student, teacher) pair, repeated.

Each pair's config is the given config with the student's and the teacher's model names
swapped in (``agent.llm.model``, ``teacher.llm.model``); provider, endpoint, key variable and
every other setting stay as written, so pairs differ only in their models. A name of ``None``
keeps the config's model.

Every pair writes its own results file beside ``output`` (``r.jsonl`` →
``r.<student>--<teacher>.jsonl``) and runs through ``batch.aevaluate``, so a rerun skips what
is done. Repeats run one after another into the same file: repeat 1 keeps each task's id,
repeat ``k`` appends ``#r<k>``, so raising ``repeats`` later runs only the new repeats.

Per pair the report gives what ``baseline.arm_summary`` gives a batch (accuracy with its
Wilson interval, completion, tokens, cost, p50/p95 wall time) over all repeats, the mean
reward and its spread over repeats, and the lanes sessions ran in; then the best pair: the
highest accuracy when tasks have expected answers, else the highest mean reward, ties going
to the cheaper pair (dollars per session when priced, else tokens).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import yaml
from langchain_core.language_models import BaseChatModel

from atlas_graph.config import AtlasConfig, ChatAgentConfig, PythonAgentConfig, load_config
from atlas_graph.errors import MatrixError
from atlas_graph.evaluation.baseline import arm_summary
from atlas_graph.evaluation.batch import (
    FINISHED,
    EvalProgress,
    EvalTask,
    aevaluate,
    tasks_from,
)
from atlas_graph.evaluation.markdown import decimal, interval, percent, seconds, table
from atlas_graph.evaluation.scoring import Scorer
from atlas_graph.evaluation.stats import mean, stdev
from atlas_graph.executors import ExecutorName
from atlas_graph.runner import ConfigSource, run_sync
from atlas_graph.storage.persistence import Persistence

CONFIG_MODEL = "config"
"""How a pair that keeps the config's model names it in labels and file names."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class MatrixPair:
    """One student model and one teacher model; ``None`` keeps the config's model."""

    student: str | None = None
    teacher: str | None = None

    @property
    def label(self) -> str:
        """``student / teacher`` for tables and progress."""
        return f"{self.student or CONFIG_MODEL} / {self.teacher or CONFIG_MODEL}"

    @property
    def slug(self) -> str:
        """The pair in file names: model ids hold ``/`` and ``:``, which paths cannot."""
        parts = (self.student or CONFIG_MODEL, self.teacher or CONFIG_MODEL)
        return "--".join(_UNSAFE.sub("-", part).strip("-") or "model" for part in parts)

    def as_dict(self) -> dict[str, str | None]:
        return {"student": self.student, "teacher": self.teacher}


class MatrixProgress(EvalProgress, Protocol):
    """Batch progress that is also told which pair and repeat each batch is."""

    def stage(self, label: str) -> None:
        """A batch is about to start; ``label`` names its pair and repeat."""


def cross(students: Sequence[str | None], teachers: Sequence[str | None]) -> list[MatrixPair]:
    """Every student with every teacher; an empty side keeps the config's model."""
    return [MatrixPair(s, t) for s in (students or [None]) for t in (teachers or [None])]


def read_matrix(path: str | Path) -> list[MatrixPair]:
    """The pairs of a YAML or JSON matrix file.

    The file holds ``students:`` and ``teachers:`` lists (every student with every teacher),
    or ``pairs:``, a list of ``{student, teacher}`` objects (either may be left out to keep
    the config's model).

    Raises:
        MatrixError: The file cannot be read or does not have that shape.
    """
    source = Path(path)
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as error:
        raise MatrixError(
            f"cannot read matrix file {source}: {error.strerror or error}", path=str(source)
        ) from None
    except (UnicodeDecodeError, yaml.YAMLError):
        raise MatrixError(
            f"matrix file {source} is not YAML or JSON text", path=str(source)
        ) from None
    shape = "students: [...] and teachers: [...], or pairs: [{student: ..., teacher: ...}]"
    if not isinstance(data, dict) or not ({"students", "teachers"} & set(data) or "pairs" in data):
        raise MatrixError(f"matrix file {source} must hold {shape}", path=str(source))
    unknown = sorted(set(data) - {"students", "teachers", "pairs"})
    if unknown or ("pairs" in data and {"students", "teachers"} & set(data)):
        raise MatrixError(f"matrix file {source} must hold {shape}", path=str(source))
    if "pairs" in data:
        rows = data["pairs"]
        if not isinstance(rows, list) or not all(
            isinstance(row, dict) and set(row) <= {"student", "teacher"} for row in rows
        ):
            raise MatrixError(
                f"matrix file {source}: pairs must be a list of {{student: ..., teacher: ...}}",
                path=str(source),
            )
        pairs = [MatrixPair(_name(row.get("student"), source), _name(row.get("teacher"), source))
                 for row in rows]  # fmt: skip
    else:
        pairs = cross(_names(data.get("students"), source), _names(data.get("teachers"), source))
    return checked_pairs(pairs)


def _name(value: Any, source: Path) -> str | None:
    if value is None or (isinstance(value, str) and value.strip()):
        return value.strip() if isinstance(value, str) else None
    raise MatrixError(
        f"matrix file {source}: model names must be non-empty strings, got {value!r}",
        path=str(source),
    )


def _names(value: Any, source: Path) -> list[str | None]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MatrixError(
            f"matrix file {source}: students and teachers must be lists", path=str(source)
        )
    return [_name(item, source) for item in value]


def checked_pairs(pairs: Iterable[MatrixPair | tuple[str | None, str | None]]) -> list[MatrixPair]:
    """Pairs as ``MatrixPair``, refused when empty or when two share a results file.

    Raises:
        MatrixError: No pairs, or two pairs with the same file name.
    """
    items = [pair if isinstance(pair, MatrixPair) else MatrixPair(*pair) for pair in pairs]
    if not items:
        raise MatrixError("the matrix has no pairs; name a student or a teacher model")
    seen: dict[str, MatrixPair] = {}
    for pair in items:
        if pair.slug in seen:
            raise MatrixError(
                f"pairs {seen[pair.slug].label} and {pair.label} would share the results file "
                f"*.{pair.slug}.jsonl; name each pair once",
                pair=pair.as_dict(),
            )
        seen[pair.slug] = pair
    return items


def pair_config(
    config: AtlasConfig, pair: MatrixPair, *, supplied: Iterable[str] = ()
) -> AtlasConfig:
    """``config`` with the pair's student and teacher model names in place of its own.

    ``supplied`` names roles whose model is passed in directly (``models=``); a role passed in
    needs no config block to rename.

    Raises:
        MatrixError: A pair names a model for a role the config gives no ``llm`` block.
    """
    update: dict[str, Any] = {}
    agent = config.agent
    if pair.student is not None:
        if isinstance(agent, ChatAgentConfig | PythonAgentConfig) and agent.llm is not None:
            llm = agent.llm.model_copy(update={"model": pair.student})
            update["agent"] = agent.model_copy(update={"llm": llm})
        elif "student" not in supplied:
            raise MatrixError(
                f"student model {pair.student!r} needs an agent with an llm block in the config "
                "(agent.type openai, litellm, or python with llm)",
                pair=pair.as_dict(),
            )
    if pair.teacher is not None:
        teacher = config.teacher
        if teacher.llm is not None:
            llm = teacher.llm.model_copy(update={"model": pair.teacher})
            update["teacher"] = teacher.model_copy(update={"llm": llm})
        elif "teacher" not in supplied:
            raise MatrixError(
                f"teacher model {pair.teacher!r} needs a teacher.llm block in the config",
                pair=pair.as_dict(),
            )
    return config.model_copy(update=update)


def pair_output(output: str | Path, pair: MatrixPair) -> Path:
    """Where a pair's results go: ``r.jsonl`` → ``r.<student>--<teacher>.jsonl``."""
    path = Path(output)
    return path.with_name(f"{path.stem}.{pair.slug}{path.suffix or '.jsonl'}")


def repeat_tasks(items: Sequence[EvalTask], repeat: int) -> list[EvalTask]:
    """Tasks of repeat ``repeat`` (from 1): the first keeps its ids, later ones add ``#r<k>``."""
    if repeat == 1:
        return list(items)
    return [replace(item, id=f"{item.id}#r{repeat}") for item in items]


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class PairSummary:
    """What one pair did over all its repeats.

    ``accuracy`` pools every scored session of every repeat (a dict of ``stats.Interval``);
    ``repeat_rewards`` and ``repeat_accuracy`` are each repeat's mean, and ``reward_spread``
    the sample standard deviation of the repeat means (None with one repeat).
    """

    pair: MatrixPair
    repeats: int
    sessions: int
    succeeded: int
    failed: int
    errors: int
    mean_reward: float | None
    reward_spread: float | None
    repeat_rewards: tuple[float | None, ...]
    repeat_accuracy: tuple[float | None, ...]
    scored: int
    correct: int
    accuracy: dict[str, float] | None
    completion_rate: float | None
    tokens: int
    tokens_per_session: float | None
    cost: float | None
    cost_per_session: float | None
    wall_p50: float | None
    wall_p95: float | None
    lanes: dict[str, int] = field(default_factory=dict)
    output: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.pair.as_dict(), "label": self.pair.label, "repeats": self.repeats,
            "sessions": self.sessions, "succeeded": self.succeeded, "failed": self.failed,
            "errors": self.errors, "mean_reward": self.mean_reward,
            "reward_spread": self.reward_spread, "repeat_rewards": list(self.repeat_rewards),
            "repeat_accuracy": list(self.repeat_accuracy), "scored": self.scored,
            "correct": self.correct, "accuracy": self.accuracy,
            "completion_rate": self.completion_rate, "tokens": self.tokens,
            "tokens_per_session": self.tokens_per_session, "cost": self.cost,
            "cost_per_session": self.cost_per_session, "wall_p50": self.wall_p50,
            "wall_p95": self.wall_p95, "lanes": self.lanes,
            "output": str(self.output) if self.output is not None else None,
        }  # fmt: skip


def summarize_pair(
    pair: MatrixPair, runs: Sequence[Sequence[Mapping[str, Any]]], output: Path | None = None
) -> PairSummary:
    """One pair's summary from the result lines of each of its repeats."""
    lines = [line for run in runs for line in run]
    arm = arm_summary(lines)
    statuses = Counter(line.get("status") for line in lines)
    repeat_rewards = tuple(mean(_rewards(run)) for run in runs)
    repeat_accuracy = tuple(_accuracy(run) for run in runs)
    priced = [line for line in lines if line.get("cost") is not None]
    return PairSummary(
        pair=pair, repeats=len(runs), sessions=len(lines),
        succeeded=statuses["succeeded"], failed=statuses["failed"],
        errors=sum(count for status, count in statuses.items() if status not in FINISHED),
        mean_reward=mean(_rewards(lines)),
        reward_spread=stdev([r for r in repeat_rewards if r is not None]),
        repeat_rewards=repeat_rewards, repeat_accuracy=repeat_accuracy,
        scored=arm["scored"], correct=arm["correct"], accuracy=arm["accuracy"],
        completion_rate=arm["completion_rate"], tokens=arm["tokens"],
        tokens_per_session=arm["tokens"] / len(lines) if lines else None,
        cost=arm["cost"], cost_per_session=arm["cost"] / len(priced) if priced else None,
        wall_p50=arm["wall_p50"], wall_p95=arm["wall_p95"],
        lanes=dict(sorted(Counter(str(line.get("lane") or "-") for line in lines).items())),
        output=output,
    )  # fmt: skip


def _rewards(lines: Iterable[Mapping[str, Any]]) -> list[float]:
    return [float(line["reward"]) for line in lines if line.get("reward") is not None]


def _accuracy(lines: Sequence[Mapping[str, Any]]) -> float | None:
    scored = [line for line in lines if line.get("correct") is not None]
    return sum(line["correct"] is True for line in scored) / len(scored) if scored else None


def best_pair(pairs: Sequence[PairSummary]) -> PairSummary | None:
    """The pair with the highest accuracy when any pair was scored, else the highest reward.

    Ties go to the cheaper pair: lower dollars per session when every tied pair is priced,
    else fewer tokens per session. None when no pair has the measure at all.
    """
    by_accuracy = any(pair.accuracy is not None for pair in pairs)

    def measure(pair: PairSummary) -> float | None:
        if by_accuracy:
            return pair.accuracy["estimate"] if pair.accuracy is not None else None
        return pair.mean_reward

    ranked = [pair for pair in pairs if measure(pair) is not None]
    if not ranked:
        return None
    top = max(m for pair in ranked if (m := measure(pair)) is not None)
    tied = [pair for pair in ranked if measure(pair) == top]
    if all(pair.cost_per_session is not None for pair in tied):
        return min(tied, key=lambda pair: pair.cost_per_session or 0.0)
    return min(tied, key=lambda pair: pair.tokens_per_session or 0.0)


@dataclass(frozen=True)
class MatrixReport:
    """What a matrix run did: one summary per pair (in the order given) and the best pair.

    ``results`` holds each pair's latest result lines, every repeat in order, by pair label.
    """

    pairs: list[PairSummary]
    best: PairSummary | None
    repeats: int
    tasks: int
    ran: int
    skipped: int
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        """Sessions that stopped with an error or wait for a decision, over every pair."""
        return sum(pair.errors for pair in self.pairs)

    @property
    def failed(self) -> int:
        """Sessions that finished without meeting their bar, over every pair."""
        return sum(pair.failed for pair in self.pairs)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON: counts, every pair's summary and the best pair."""
        return {
            "tasks": self.tasks, "repeats": self.repeats, "ran": self.ran,
            "skipped": self.skipped, "pairs": [pair.as_dict() for pair in self.pairs],
            "best": self.best.pair.as_dict() | {"label": self.best.pair.label}
            if self.best is not None else None,
        }  # fmt: skip


def format_matrix(report: MatrixReport) -> str:
    """The matrix as a Markdown table, one row per pair, then the best pair."""
    header = ("student", "teacher", "repeats", "sessions", "reward (sd)", "accuracy [95% CI]",
              "completion", "tokens/session", "cost $", "p50", "p95", "errors")  # fmt: skip
    rows = []
    for pair in report.pairs:
        reward = decimal(pair.mean_reward, 3)
        if pair.reward_spread is not None:
            reward += f" ({pair.reward_spread:.3f})"
        mark = " *" if pair is report.best else ""
        rows.append((
            (pair.pair.student or CONFIG_MODEL) + mark, pair.pair.teacher or CONFIG_MODEL,
            str(pair.repeats), str(pair.sessions), reward, interval(pair.accuracy),
            percent(pair.completion_rate), decimal(pair.tokens_per_session, 1),
            decimal(pair.cost, 4), seconds(pair.wall_p50), seconds(pair.wall_p95),
            str(pair.errors),
        ))  # fmt: skip
    lines = table(header, rows)
    lines += ["", f"Best pair: {best_line(report.best)}"]
    return "\n".join(lines)


def best_line(best: PairSummary | None) -> str:
    """The best pair and why, in one line."""
    if best is None:
        return "none (no pair has an accuracy or a reward)"
    measure = (
        f"accuracy {best.accuracy['estimate']:.1%}"
        if best.accuracy is not None
        else f"mean reward {best.mean_reward:.3f}"
        if best.mean_reward is not None
        else ""
    )
    cost = (
        f"${best.cost_per_session:.4f} per session"
        if best.cost_per_session is not None
        else f"{decimal(best.tokens_per_session, 1)} tokens per session"
    )
    return f"{best.pair.label} ({measure}, {cost})"


def write_matrix_report(report: MatrixReport, output: str | Path) -> tuple[Path, Path]:
    """The report as ``<output>.report.json`` and ``<output>.report.md`` beside the results."""
    path = Path(output)
    json_path = path.with_name(f"{path.stem}.report.json")
    markdown_path = path.with_name(f"{path.stem}.report.md")
    json_path.write_text(json.dumps(report.as_dict(), indent=2) + "\n", encoding="utf-8")
    files = ", ".join(
        f"`{pair.output.name}`" for pair in report.pairs if pair.output is not None
    )  # fmt: skip
    parts = [
        "# Runtime matrix", "",
        f"Tasks: {report.tasks}, repeats: {report.repeats}, pairs: {len(report.pairs)}"
        + (f" (results in {files})" if files else ""),
        "", format_matrix(report),
    ]  # fmt: skip
    markdown_path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return json_path, markdown_path


# --------------------------------------------------------------------------- running it


PairModels = Mapping[str, BaseChatModel] | Callable[[MatrixPair], Mapping[str, BaseChatModel]]
"""Chat models by role for every pair, or a function giving each pair its own."""


async def arun_matrix(
    tasks: str | Path | Iterable[EvalTask | Mapping[str, Any]],
    pairs: Iterable[MatrixPair | tuple[str | None, str | None]],
    *,
    config: ConfigSource | None = None,
    output: str | Path | None = None,
    repeats: int = 1,
    concurrency: int = 4,
    models: PairModels | None = None,
    agent: Any = None,
    persistence: Persistence | None = None,
    progress: MatrixProgress | None = None,
    on_result: Callable[[MatrixPair, dict[str, Any]], None] | None = None,
    executor: ExecutorName = "local",
    ray_address: str | None = None,
    workers: int | None = None,
    scorer: str | Scorer | None = None,
    tolerance: float = 1e-6,
) -> MatrixReport:
    """Run every task ``repeats`` times for each (student, teacher) pair and compare them.

    Args:
        tasks: A JSONL task file, or task mappings / ``EvalTask`` objects.
        pairs: ``MatrixPair`` objects or ``(student, teacher)`` tuples of model names; a
            ``None`` keeps the config's model for that role.
        config: The config every pair starts from.
        output: JSONL file the per-pair results files are named after (see ``pair_output``);
            ``None`` keeps results in memory only.
        repeats: Runs of the whole task file per pair (at least 1).
        concurrency, persistence, executor, ray_address, workers, scorer, tolerance: As in
            ``batch.aevaluate``, for every batch.
        models: Chat models by role, as in ``aevaluate``; or a function of the pair giving
            them, so each pair can be handed its own models (a role handed in needs no
            config block).
        agent: The student's agent, shared by every pair (the pair's student model reaches
            it only through its config's ``llm``).
        progress: Told the pair and repeat before each batch, then the batch's progress.
        on_result: Called with the pair and each result line as it is written.

    Raises:
        MatrixError: ``repeats`` is below 1, no pairs, two pairs share a file, or a pair names
            a model for a role the config has no ``llm`` block for.
        TaskFileError, AtlasUserError, ConfigError, StorageError: As ``aevaluate`` raises them.
    """
    if repeats < 1:
        raise MatrixError(f"repeats must be at least 1, got {repeats}", repeats=repeats)
    chosen = checked_pairs(pairs)
    items = tasks_from(tasks)
    base = load_config(config if config is not None else {})
    pair_models = [models(pair) if callable(models) else models for pair in chosen]
    configs = [  # every pair is checked before the first session runs
        pair_config(base, pair, supplied=set(given or {}))
        for pair, given in zip(chosen, pair_models, strict=True)
    ]
    summaries: list[PairSummary] = []
    results: dict[str, list[dict[str, Any]]] = {}
    ran = skipped = 0
    for number, (pair, pair_cfg, given) in enumerate(
        zip(chosen, configs, pair_models, strict=True), 1
    ):
        target = pair_output(output, pair) if output is not None else None
        runs: list[list[dict[str, Any]]] = []
        for repeat in range(1, repeats + 1):
            if progress is not None:
                progress.stage(
                    f"pair {number}/{len(chosen)} {pair.label}, repeat {repeat}/{repeats}"
                )
            report = await aevaluate(
                repeat_tasks(items, repeat), config=pair_cfg, output=target,
                concurrency=concurrency, models=given, agent=agent, persistence=persistence,
                progress=progress, on_result=_tagged(on_result, pair), executor=executor,
                ray_address=ray_address, workers=workers, scorer=scorer, tolerance=tolerance,
            )  # fmt: skip
            runs.append(report.results)
            ran += report.ran
            skipped += report.skipped
        summaries.append(summarize_pair(pair, runs, target))
        results[pair.label] = [line for run in runs for line in run]
    return MatrixReport(
        pairs=summaries, best=best_pair(summaries), repeats=repeats, tasks=len(items),
        ran=ran, skipped=skipped, results=results,
    )  # fmt: skip


def _tagged(
    on_result: Callable[[MatrixPair, dict[str, Any]], None] | None, pair: MatrixPair
) -> Callable[[dict[str, Any]], None] | None:
    if on_result is None:
        return None
    return lambda line: on_result(pair, line)


def run_matrix(
    tasks: str | Path | Iterable[EvalTask | Mapping[str, Any]],
    pairs: Iterable[MatrixPair | tuple[str | None, str | None]],
    *,
    config: ConfigSource | None = None,
    output: str | Path | None = None,
    repeats: int = 1,
    concurrency: int = 4,
    models: PairModels | None = None,
    agent: Any = None,
    persistence: Persistence | None = None,
    progress: MatrixProgress | None = None,
    on_result: Callable[[MatrixPair, dict[str, Any]], None] | None = None,
    executor: ExecutorName = "local",
    ray_address: str | None = None,
    workers: int | None = None,
    scorer: str | Scorer | None = None,
    tolerance: float = 1e-6,
) -> MatrixReport:
    """Synchronous ``arun_matrix`` (works in a notebook too); takes the same arguments.

    It runs on its own event loop, so pass no ``persistence`` opened on another loop.
    """
    return run_sync(arun_matrix(
        tasks, pairs, config=config, output=output, repeats=repeats, concurrency=concurrency,
        models=models, agent=agent, persistence=persistence, progress=progress,
        on_result=on_result, executor=executor, ray_address=ray_address, workers=workers,
        scorer=scorer, tolerance=tolerance,
    ))  # fmt: skip
