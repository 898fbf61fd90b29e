"""``atlas-graph learning show | report | reset``: the learning registry from the shell."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from atlas_graph.cli.common import EXIT_OK, EXIT_USAGE


def add_learning_commands(commands: Any) -> None:
    """Register ``learning`` and its actions on the main parser's subparsers."""
    learning = commands.add_parser("learning", help="inspect or reset learning playbooks")
    actions = learning.add_subparsers(dest="learning_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="playbook entries with gates, rubric and stats")
    report = actions.add_parser("report", help="per entry usage, per key the learning curve")
    report.add_argument("--plot", metavar="FILE", help="draw reward and tokens per session (PNG)")
    reset = actions.add_parser("reset", help="delete a learning key's playbook and history")
    reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    for parser in (show, report, reset):
        parser.add_argument("--config", "-c", help="YAML config file (default: embedded SQLite)")
        parser.add_argument("--learning-key", metavar="KEY", help="this key only (default: all)")
        if parser is not reset:
            parser.add_argument("--json", action="store_true", help="print JSON")


def _number(value: float | None, places: int = 2) -> str:
    return "-" if value is None else f"{value:.{places}f}"


def _show(args: argparse.Namespace) -> int:
    from atlas_graph.learning.api import learning_show

    shown = learning_show(args.config or {}, learning_key=args.learning_key)
    if args.json:
        print(json.dumps(shown, indent=2, default=str))
        return EXIT_OK
    for item in shown:
        print(f"learning key {item['learning_key']}: {len(item['entries'])} entries")
        for entry in item["entries"]:
            usage, gate = entry["usage"], entry.get("gate") or {}
            print(f"  {entry['id']} v{entry.get('version', 1)} {entry['status']:<11} "
                  f"{entry['audience']:<7} when {entry['cue']['type']} "
                  f"`{entry['cue']['pattern']}`: {entry['action']['imperative']}")  # fmt: skip
            print(f"      rubric {_number((entry.get('rubric') or {}).get('total'))}"
                  f" | gates {'passed' if gate.get('passed') else 'failed'}"
                  f" | sessions {usage['sessions']} hit rate {_number(usage['cue_hit_rate'])}"
                  f" adoption {_number(usage['adoption_rate'])}"
                  f" delta {_number(usage['reward_delta'], 3)}"
                  f" | {entry.get('reason') or ''}")  # fmt: skip
    if not shown:
        print("no learning keys in this storage")
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from atlas_graph.learning.api import LearningPlotError, learning_report, plot_learning_curve

    report = learning_report(args.config or {}, learning_key=args.learning_key)
    if args.plot:
        try:
            plot_learning_curve(report, args.plot)
        except LearningPlotError as error:
            print(f"atlas-graph: {error}", file=sys.stderr)
            return EXIT_USAGE
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return EXIT_OK
    for item in report:
        print(f"learning key {item['learning_key']}")
        print("  entry            status      hit rate  adoption  delta   transfer  sessions")
        for e in item["entries"]:
            print(f"  {e['id']:<16} {e['status']:<11} {_number(e['cue_hit_rate']):>8}  "
                  f"{_number(e['adoption_rate']):>8}  {_number(e['reward_delta'], 3):>6}  "
                  f"{e['transfer_sessions']:>8}  {e['sessions']:>8}")  # fmt: skip
        print("  session  reward  tokens")
        for n, s in enumerate(item["sessions"], 1):
            print(f"  {n:>7}  {_number(s['reward']):>6}  {s['tokens'] or 0:>6}")
    if not report:
        print("no learning keys in this storage")
    return EXIT_OK


def _reset(args: argparse.Namespace) -> int:
    from atlas_graph.learning.api import learning_reset

    which = f"learning key {args.learning_key}" if args.learning_key else "EVERY learning key"
    if not args.yes:
        if not sys.stdin.isatty():
            print("atlas-graph: learning reset needs --yes when not run interactively",
                  file=sys.stderr)  # fmt: skip
            return EXIT_USAGE
        answer = input(f"Delete the playbook, history and sessions of {which}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return EXIT_OK
    deleted = learning_reset(args.config or {}, learning_key=args.learning_key)
    for key, count in deleted.items():
        print(f"{key}: {count} items deleted")
    return EXIT_OK


def _learning(args: argparse.Namespace) -> int:
    action = {"show": _show, "report": _report, "reset": _reset}[args.learning_command]
    return action(args)


LEARNING_COMMANDS = {"learning": _learning}
