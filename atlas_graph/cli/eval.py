"""``atlas-graph eval``: run a task file as a batch, with a progress bar and a summary table.

Exit codes follow the rest of the command line: 0 every session succeeded, 1 some session
finished but failed, 2 bad usage, config or task file, or Ray workers that cannot start
(nothing ran), 3 some session stopped with an error or waits for a decision (run the same
command again to continue those).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from atlas_graph.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STOPPED,
    EXIT_USAGE,
    plot_unavailable,
    print_plots,
)

_BAR_WIDTH = 24


def add_eval_command(commands: Any) -> None:
    """Register ``eval`` on the main parser's subparsers."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "eval", help="run every task of a JSONL file as a session and summarize the results"
    )
    parser.add_argument("tasks", help='JSONL file, one {"task": ...} object per line')
    parser.add_argument("--config", "-c", required=True, help="YAML config file")
    parser.add_argument("--output", "-o", required=True, metavar="RESULTS",
                        help="JSONL file of results; tasks done in it are skipped")  # fmt: skip
    parser.add_argument("--concurrency", "-j", type=positive_int, default=4, metavar="N",
                        help="sessions running at the same time, per worker with --ray "
                             "(default: 4)")  # fmt: skip
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="run the sessions on Ray workers (needs PostgreSQL storage): "
                             "'local' starts a cluster here, one worker per core; an "
                             "address joins a running cluster; none: RAY_ADDRESS, else a "
                             "cluster `ray start` began here, else a new local one")  # fmt: skip
    parser.add_argument("--workers", type=positive_int, default=None, metavar="N",
                        help="with --ray: worker processes (default: one per CPU)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--scorer", default=None, metavar="NAME",
                        help="exact, numeric, contains, regex, judge or module:function "
                        "(default: numeric for numeric expected answers, else exact)")  # fmt: skip
    parser.add_argument("--tolerance", type=float, default=1e-6,
                        help="the numeric scorer's tolerance (default: 1e-6)")  # fmt: skip
    parser.add_argument("--baseline", action="store_true",
                        help="also run every task with the student alone and report the lift "
                        "(results in RESULTS with .baseline before the suffix)")  # fmt: skip
    matrix = parser.add_argument_group(
        "runtime matrix", "run the task file for every (student, teacher) pair of models; "
        "each pair's results go to RESULTS with the pair before the suffix"
    )  # fmt: skip
    matrix.add_argument("--student-model", type=_names, default=[], metavar="A,B",
                        help="student models, comma-separated, in place of the config's "
                        "agent.llm.model")  # fmt: skip
    matrix.add_argument("--teacher-model", type=_names, default=[], metavar="X,Y",
                        help="teacher models, comma-separated, in place of the config's "
                        "teacher.llm.model")  # fmt: skip
    matrix.add_argument("--matrix", metavar="FILE",
                        help="YAML or JSON file of the pairs: students: [...] and teachers: "
                        "[...], or pairs: [{student: ..., teacher: ...}]")  # fmt: skip
    matrix.add_argument("--repeats", type=positive_int, default=1, metavar="N",
                        help="runs of the whole task file per pair (default: 1); alone, it "
                        "repeats the config's own pair")  # fmt: skip
    parser.add_argument("--plot", metavar="DIR",
                        help="write charts as PNG files into DIR (needs matplotlib): "
                        "rewards in order, the lift with --baseline, a matrix's pairs")  # fmt: skip


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected model names separated by commas, got {text!r}")
    return names


class ProgressBar:
    """Batch progress on a stream: a redrawn bar on a terminal, else a line every tenth."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        label: str = "eval",
        unit: str = "tasks",
    ) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.label, self.unit = label, unit
        self.total = self.done = self.errors = 0
        self._next_line = 0
        self._started = time.monotonic()

    def stage(self, label: str) -> None:
        """A new batch of a matrix starts: say which pair and repeat it is."""
        self._print(f"eval: {label}")

    def start(self, total: int, skipped: int) -> None:
        self.total, self.done = total, skipped
        self._started = time.monotonic()
        if skipped:
            self._print(f"{self.label}: {skipped} of {total} {self.unit} already done, skipped")
        self._draw()

    def update(self, result: Mapping[str, Any]) -> None:
        self.done += 1
        self.errors += result.get("status") not in ("succeeded", "failed")
        self._draw()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self) -> None:
        elapsed = int(time.monotonic() - self._started)
        errors = f", {self.errors} error{'s' * (self.errors != 1)}" if self.errors else ""
        counts = (
            f"{self.done}/{self.total} {self.unit}{errors}, {elapsed // 60}m{elapsed % 60:02d}s"
        )
        if self.tty:
            filled = _BAR_WIDTH * self.done // max(self.total, 1)
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            self.stream.write(f"\r{self.label} [{bar}] {counts}")
            self.stream.flush()
        elif self.done >= self._next_line or self.done == self.total:
            self._print(f"{self.label}: {counts}")
            step = max(1, self.total // 10)
            self._next_line = (self.done // step + 1) * step

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def _eval(args: argparse.Namespace) -> int:
    from atlas_graph.evaluation.baseline import format_lift
    from atlas_graph.evaluation.batch import evaluate, format_summary, write_report

    ray: dict[str, Any] = {}
    if args.ray is not None:
        if importlib.util.find_spec("ray") is None:
            print("atlas-graph: --ray needs Ray: pip install 'atlas-graph[ray]'", file=sys.stderr)
            return EXIT_USAGE
        ray = {"executor": "ray", "ray_address": args.ray or None, "workers": args.workers}
    elif args.workers is not None:
        print("atlas-graph: --workers needs --ray", file=sys.stderr)
        return EXIT_USAGE
    if plot_unavailable(args.plot):
        return EXIT_USAGE
    is_matrix = bool(args.student_model or args.teacher_model or args.matrix or args.repeats > 1)
    if is_matrix:
        if args.matrix and (args.student_model or args.teacher_model):
            print("atlas-graph: --matrix takes the place of --student-model and --teacher-model; "
                  "give one or the other", file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
        if args.baseline:
            print("atlas-graph: --baseline runs one pair; leave it out of a matrix run",
                  file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
        return _eval_matrix(args, ray)
    # a cluster that cannot start is a RayWorkerError (a user error: exit 2, one line)
    report = evaluate(
        args.tasks, config=args.config, output=args.output, concurrency=args.concurrency,
        progress=ProgressBar(sys.stderr), scorer=args.scorer, tolerance=args.tolerance,
        baseline=args.baseline, **ray,
    )  # fmt: skip
    json_path, markdown_path = write_report(report, args.output)
    plots = _plot_batch(args.plot, report.results, report.lift) if args.plot else []
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(format_summary(report.summary))
        if report.lift is not None:
            print()
            print(format_lift(report.lift))
        print(f"{report.ran} ran, {report.skipped} skipped; results in {args.output}")
        print(f"report: {json_path}, {markdown_path}")
    print_plots(plots, args.json)
    if report.errors:
        return EXIT_STOPPED
    return EXIT_FAILED if report.failed else EXIT_OK


def _eval_matrix(args: argparse.Namespace, ray: dict[str, Any]) -> int:
    from atlas_graph.evaluation.matrix import (
        cross,
        format_matrix,
        read_matrix,
        run_matrix,
        write_matrix_report,
    )

    pairs = (
        read_matrix(args.matrix) if args.matrix else cross(args.student_model, args.teacher_model)
    )
    report = run_matrix(
        args.tasks, pairs, config=args.config, output=args.output, repeats=args.repeats,
        concurrency=args.concurrency, progress=ProgressBar(sys.stderr), scorer=args.scorer,
        tolerance=args.tolerance, **ray,
    )  # fmt: skip
    json_path, markdown_path = write_matrix_report(report, args.output)
    plots: list[Path] = []
    if args.plot:
        from atlas_graph.evaluation.charts import matrix_chart

        plots.append(matrix_chart(report.pairs, Path(args.plot) / "matrix.png"))
        for pair in report.pairs:
            plots += _plot_batch(
                args.plot, report.results[pair.pair.label], None, f".{pair.pair.slug}",
                f"Rewards of {pair.pair.label}",
            )  # fmt: skip
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(format_matrix(report))
        print(f"{report.ran} ran, {report.skipped} skipped; results in "
              + ", ".join(str(pair.output) for pair in report.pairs))  # fmt: skip
        print(f"report: {json_path}, {markdown_path}")
    print_plots(plots, args.json)
    if report.errors:
        return EXIT_STOPPED
    return EXIT_FAILED if report.failed else EXIT_OK


def _plot_batch(
    folder: str,
    results: list[dict[str, Any]],
    lift: dict[str, Any] | None,
    suffix: str = "",
    title: str = "Rewards",
) -> list[Path]:
    """The batch's charts in ``folder``; a chart with nothing to draw is skipped with a note."""
    from atlas_graph.errors import ChartError
    from atlas_graph.evaluation.charts import lift_chart, reward_sequence_chart

    written = []
    rewards = [line.get("reward") for line in results]
    try:
        written.append(reward_sequence_chart(rewards, Path(folder) / f"rewards{suffix}.png", title))
    except ChartError as error:
        print(f"eval: rewards{suffix}.png not drawn: {error}", file=sys.stderr)
    if lift is not None:
        written.append(lift_chart(lift, Path(folder) / "lift.png"))
    return written


EVAL_COMMANDS = {"eval": _eval}
