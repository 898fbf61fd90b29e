"""``atlas-graph eval-probe`` and ``eval-reward``: the probe and the reward system on datasets.

Both print a summary (Markdown tables, or the JSON report with ``--json``) and can write the
JSON report (``--output``), the Markdown report (``--markdown``) and a chart (``--plot DIR``:
the probe's confusion matrix, the rewards in file order). Exit codes: 0 the run is done, 2 bad
usage, config or data file, or ``--plot`` without matplotlib (nothing ran), 3 some trajectory
could not be scored (a judge or arbiter call failed; the report says which).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atlas_graph.cli.common import (
    EXIT_OK,
    EXIT_STOPPED,
    EXIT_USAGE,
    plot_unavailable,
    print_plots,
)
from atlas_graph.cli.eval import ProgressBar, positive_int

if TYPE_CHECKING:
    from atlas_graph.evaluation.probe_eval import ProbeEvalReport
    from atlas_graph.evaluation.reward_eval import RewardEvalReport

PROBE_CHART = "probe-confusion.png"
REWARD_CHART = "reward-sequence.png"


def add_harness_commands(commands: Any) -> None:
    """Register ``eval-probe`` and ``eval-reward`` on the main parser's subparsers."""
    probe: argparse.ArgumentParser = commands.add_parser(
        "eval-probe", help="run the capability probe over a dataset and score its lanes"
    )
    probe.add_argument("data", help="JSONL dataset: task, learning_history, expected_mode")
    _report_flags(probe, f"the confusion matrix of expected and chosen lanes ({PROBE_CHART})")
    probe.add_argument("--concurrency", "-j", type=positive_int, default=4, metavar="N",
                       help="probe calls at the same time (default: 4)")  # fmt: skip

    reward: argparse.ArgumentParser = commands.add_parser(
        "eval-reward", help="score recorded trajectories with the judges and the arbiter"
    )
    reward.add_argument("data", help="JSONL trajectories: Atlas's, or `atlas-graph export` output")
    _report_flags(reward, f"the reward of each trajectory in file order ({REWARD_CHART})")
    reward.add_argument("--concurrency", "-j", type=positive_int, default=4, metavar="N",
                        help="trajectories scored at the same time (default: 4)")  # fmt: skip


def _report_flags(parser: argparse.ArgumentParser, chart: str) -> None:
    parser.add_argument("--config", "-c", required=True, help="YAML config file")
    parser.add_argument("--output", "-o", metavar="REPORT.json", help="write the JSON report")
    parser.add_argument("--markdown", metavar="REPORT.md", help="write the Markdown report")
    parser.add_argument("--json", action="store_true", help="print the JSON report")
    parser.add_argument("--plot", metavar="DIR",
                        help=f"write a PNG chart into DIR (needs matplotlib): {chart}")  # fmt: skip


def _write(report: dict[str, Any], markdown: str, args: argparse.Namespace) -> None:
    """Print the report and write the files asked for."""
    if args.output:
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        path = Path(args.markdown)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(markdown + "\n", encoding="utf-8")
    print(json.dumps(report) if args.json else markdown)


def _eval_probe(args: argparse.Namespace) -> int:
    from atlas_graph.evaluation.probe_eval import evaluate_probe, format_probe_report

    if plot_unavailable(args.plot):
        return EXIT_USAGE
    report = evaluate_probe(
        args.data, config=args.config, concurrency=args.concurrency,
        progress=ProgressBar(sys.stderr, label="eval-probe", unit="samples"),
    )  # fmt: skip
    plots = _plot_probe(args.plot, report) if args.plot else []
    _write(report.as_dict(), format_probe_report(report), args)
    print_plots(plots, args.json)
    return EXIT_OK


def _eval_reward(args: argparse.Namespace) -> int:
    from atlas_graph.evaluation.reward_eval import evaluate_reward, format_reward_report

    if plot_unavailable(args.plot):
        return EXIT_USAGE
    report = evaluate_reward(
        args.data, config=args.config, concurrency=args.concurrency,
        progress=ProgressBar(sys.stderr, label="eval-reward", unit="trajectories"),
    )  # fmt: skip
    plots = _plot_reward(args.plot, report) if args.plot else []
    _write(report.as_dict(), format_reward_report(report), args)
    print_plots(plots, args.json)
    return EXIT_STOPPED if report.errors else EXIT_OK


def _plot_probe(folder: str, report: ProbeEvalReport) -> list[Path]:
    """The confusion matrix of expected (rows) and chosen lanes; skipped with a note when no
    line of the dataset names an expected lane."""
    from atlas_graph.evaluation.charts import confusion_chart
    from atlas_graph.lanes import LANES

    if not any(outcome.expected is not None for outcome in report.outcomes):
        print(f"eval-probe: {PROBE_CHART} not drawn: no line has an expected_mode",
              file=sys.stderr)  # fmt: skip
        return []
    confusion = report.summary["confusion"]
    counts = [[int(confusion[expected][chosen]) for chosen in LANES] for expected in LANES]
    title = f"Probe lanes of {report.model}: expected (rows) and chosen"
    return [confusion_chart(list(LANES), counts, Path(folder) / PROBE_CHART, title)]


def _plot_reward(folder: str, report: RewardEvalReport) -> list[Path]:
    """The final reward of each trajectory in file order (unscored ones keep their place);
    skipped with a note when none was scored."""
    from atlas_graph.errors import ChartError
    from atlas_graph.evaluation.charts import reward_sequence_chart

    rewards = [outcome.score for outcome in report.outcomes]
    try:
        path = reward_sequence_chart(rewards, Path(folder) / REWARD_CHART, "Rewards of the judges")
    except ChartError as error:
        print(f"eval-reward: {REWARD_CHART} not drawn: {error}", file=sys.stderr)
        return []
    return [path]


HARNESS_COMMANDS = {"eval-probe": _eval_probe, "eval-reward": _eval_reward}
