"""``atlas-graph eval-probe`` and ``eval-reward``: the probe and the reward system on datasets.

Both print a summary (Markdown tables, or the JSON report with ``--json``) and can write the
JSON report (``--output``) and the Markdown report (``--markdown``). Exit codes: 0 the run is
done, 2 bad usage, config or data file (nothing ran), 3 some trajectory could not be scored
(a judge or arbiter call failed; the report says which).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from atlas_graph.cli.common import EXIT_OK, EXIT_STOPPED
from atlas_graph.cli.eval import ProgressBar, positive_int


def add_harness_commands(commands: Any) -> None:
    """Register ``eval-probe`` and ``eval-reward`` on the main parser's subparsers."""
    probe: argparse.ArgumentParser = commands.add_parser(
        "eval-probe", help="run the capability probe over a dataset and score its lanes"
    )
    probe.add_argument("data", help="JSONL dataset: task, learning_history, expected_mode")
    _report_flags(probe)
    probe.add_argument("--concurrency", "-j", type=positive_int, default=4, metavar="N",
                       help="probe calls at the same time (default: 4)")  # fmt: skip

    reward: argparse.ArgumentParser = commands.add_parser(
        "eval-reward", help="score recorded trajectories with the judges and the arbiter"
    )
    reward.add_argument("data", help="JSONL trajectories: Atlas's, or `atlas-graph export` output")
    _report_flags(reward)
    reward.add_argument("--concurrency", "-j", type=positive_int, default=4, metavar="N",
                        help="trajectories scored at the same time (default: 4)")  # fmt: skip


def _report_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", required=True, help="YAML config file")
    parser.add_argument("--output", "-o", metavar="REPORT.json", help="write the JSON report")
    parser.add_argument("--markdown", metavar="REPORT.md", help="write the Markdown report")
    parser.add_argument("--json", action="store_true", help="print the JSON report")


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

    report = evaluate_probe(
        args.data, config=args.config, concurrency=args.concurrency,
        progress=ProgressBar(sys.stderr, label="eval-probe", unit="samples"),
    )  # fmt: skip
    _write(report.as_dict(), format_probe_report(report), args)
    return EXIT_OK


def _eval_reward(args: argparse.Namespace) -> int:
    from atlas_graph.evaluation.reward_eval import evaluate_reward, format_reward_report

    report = evaluate_reward(
        args.data, config=args.config, concurrency=args.concurrency,
        progress=ProgressBar(sys.stderr, label="eval-reward", unit="trajectories"),
    )  # fmt: skip
    _write(report.as_dict(), format_reward_report(report), args)
    return EXIT_STOPPED if report.errors else EXIT_OK


HARNESS_COMMANDS = {"eval-probe": _eval_probe, "eval-reward": _eval_reward}
