"""``atlas-graph`` commands for stored sessions: resume, sessions, show, history, fork,
approve and prune. Each takes ``--config`` to find the storage (default: the embedded SQLite
file under ``.atlas_graph/`` of the current folder).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from atlas_graph.cli.common import EXIT_FAILED, EXIT_OK, EXIT_STOPPED, scrubbed_json
from atlas_graph.errors import AtlasUserError
from atlas_graph.redaction import scrub


def add_session_commands(commands: Any) -> None:
    """Register the session subcommands on the main parser's subparsers."""

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text)
        parser.add_argument("--config", "-c", help="YAML config file (default: embedded SQLite)")
        return parser

    resume = command("resume", "continue an unfinished session from its last checkpoint")
    resume.add_argument("thread", help="session (thread) id")
    resume.add_argument(
        "--answer", metavar="JSON",
        help="answer to the interrupt() the session waits on (a JSON value)",
    )  # fmt: skip
    resume.add_argument("--json", action="store_true", help="print the Result as JSON")
    _stream_flag(resume)

    sessions = command("sessions", "list sessions with status, lane, reward and age")
    sessions.add_argument("--limit", type=int, default=50)
    sessions.add_argument("--json", action="store_true")

    show = command("show", "show one session: state, steps, pending nodes, errors")
    show.add_argument("thread")
    show.add_argument("--json", action="store_true", help="print the whole state as JSON")

    history = command("history", "list a session's checkpoints with node and step")
    history.add_argument("thread")
    history.add_argument("--limit", type=int)
    history.add_argument("--json", action="store_true")

    fork = command("fork", "branch a session at a checkpoint with changed values")
    fork.add_argument("thread")
    fork.add_argument("--checkpoint", required=True, help="checkpoint id (see history)")
    change = fork.add_mutually_exclusive_group(required=True)
    change.add_argument("--guidance", help="guidance for the student's next plan")
    change.add_argument("--set", action="append", metavar="KEY=JSON", dest="values",
                        help="set a state key to a JSON value (repeatable)")  # fmt: skip
    fork.add_argument("--resume", action="store_true", help="run the fork right away")

    approve = command("approve", "answer a pending plan approval and continue the session")
    approve.add_argument("thread")
    decision = approve.add_mutually_exclusive_group()
    decision.add_argument("--plan", metavar="FILE", help="run this edited plan (JSON or YAML)")
    decision.add_argument("--reject", action="store_true", help="send the plan back to redraft")
    approve.add_argument("--notes", help="why (shown to the student on reject)")
    approve.add_argument("--json", action="store_true")
    _stream_flag(approve)

    prune = command("prune", "delete checkpoints of finished sessions older than N days")
    prune.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    prune.add_argument("--ledger", action="store_true", help="delete their ledger records too")
    prune.add_argument(
        "--unrecorded", action="store_true",
        help="also scan all checkpoints for finished threads without a ledger record (slow)",
    )  # fmt: skip


def _stream_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stream", action=argparse.BooleanOptionalAction, default=None,
        help="print live progress (default: when stdout is a terminal)",
    )  # fmt: skip


def progress(stream: bool, as_json: bool) -> Callable[[Any], None] | None:
    """Live progress lines; on stderr when stdout carries JSON."""
    if not stream:
        return None
    from atlas_graph.telemetry.console import ConsoleRenderer

    return ConsoleRenderer(sys.stderr if as_json else sys.stdout).handle


def _on_event(args: argparse.Namespace) -> Callable[[Any], None] | None:
    """Live progress for a continued run (by default only on a terminal without --json)."""
    stream = args.stream if args.stream is not None else (sys.stdout.isatty() and not args.json)
    return progress(stream, args.json)


def report_result(result: Any, as_json: bool) -> int:
    """Print a Result (or the decision it waits for); the exit code it stands for."""
    if as_json:
        print(scrubbed_json(result))
    elif result.waiting_for is not None and result.waiting_for.get("type") != "plan_approval":
        question = json.dumps(result.waiting_for, default=str)
        print(f"session {result.session_id} waits for an answer: {question}")
        print(f"answer: atlas-graph resume {result.session_id} --answer JSON")
    elif result.waiting:
        print(f"session {result.session_id} waits for plan approval:")
        for step in (result.waiting_for.get("plan") or {}).get("steps", []):
            depends = f" (after {', '.join(map(str, step['depends_on']))})" if step.get(
                "depends_on") else ""  # fmt: skip
            print(f"  {step['id']}. {step['description']}{depends}")
        print(f"approve: atlas-graph approve {result.session_id} [--plan FILE | --reject]")
    else:
        if result.final_answer:
            print(result.final_answer)
        reward = f"{result.reward['score']:.2f}" if result.reward else "-"
        print(f"{result.status}: lane {result.lane}, {len(result.steps)} step(s), "
              f"reward {reward}, session {result.session_id}")  # fmt: skip
    if result.waiting:
        return EXIT_STOPPED
    return EXIT_OK if result.success else EXIT_FAILED


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _resume(args: argparse.Namespace) -> int:
    from atlas_graph.sessions import resume_session

    answer = None
    if args.answer is not None:
        try:
            answer = json.loads(args.answer)
        except json.JSONDecodeError as error:
            raise AtlasUserError(f"--answer is not JSON: {error}") from error
    result = resume_session(
        args.thread, config=args.config, on_event=_on_event(args), resume=answer
    )
    return report_result(result, args.json)


def _sessions(args: argparse.Namespace) -> int:
    from atlas_graph.sessions import list_sessions

    rows = scrub(list_sessions(args.config, limit=args.limit))  # tasks may quote a key
    if args.json:
        print(json.dumps(rows, default=str))
        return EXIT_OK
    if not rows:
        print("no sessions")
        return EXIT_OK
    print(f"{'SESSION':<34} {'STATUS':<10} {'LANE':<9} {'REWARD':>6} {'AGE':>5}  TASK")
    for row in rows:
        reward = f"{row['reward']:.2f}" if row["reward"] is not None else "-"
        task = " ".join(str(row["task"]).split())
        task = task if len(task) <= 50 else task[:47] + "..."
        print(f"{row['session_id']:<34} {row['status']:<10} {row['lane'] or '-':<9} "
              f"{reward:>6} {_age(row['age_seconds']):>5}  {task}")  # fmt: skip
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from atlas_graph.sessions import show_session

    view = scrub(show_session(args.thread, args.config))  # old checkpoints, error text
    if args.json:
        print(json.dumps(view, default=str, indent=2))  # timestamps and the like as text
        return EXIT_OK
    values = view["values"]
    print(f"session {view['session_id']}  checkpoint {view['checkpoint_id']}")
    print(f"task: {values.get('task', '')}")
    ledger = view["ledger"] or {}
    reward = (values.get("reward") or {}).get("score")
    reward_text = f"{reward:.2f}" if isinstance(reward, int | float) else "-"
    review = values.get("review_status") or ledger.get("review_status") or "-"
    print(f"status: {values.get('status', '-')}  lane: {values.get('lane') or '-'}  "
          f"reward: {reward_text}  review: {review}")  # fmt: skip
    print(f"started: {values.get('started_at') or '-'}  "
          f"completed: {values.get('completed_at') or '-'}")  # fmt: skip
    if view["checkpoints_pruned"]:
        print("checkpoints: pruned (shown from the session ledger)")
    elif view["finished"]:
        print("pending: none (finished)")
    elif view.get("thread_status") == "interrupted":
        print(f"pending: interrupted, resumable (results of {', '.join(view['tasks'])} saved; "
              f"atlas-graph resume {view['session_id']})")  # fmt: skip
    else:
        print(f"pending: {', '.join(view['next']) or 'nothing (never started)'}")
    for step in (values.get("plan") or {}).get("steps", []):
        record = values.get("steps", {}).get(str(step["id"]), {})
        score = (record.get("validation") or {}).get("score")
        score_text = f", score {score:.2f}" if isinstance(score, int | float) else ""
        attempts = len(record.get("attempts", []))
        status = record.get("status", "pending")
        print(f"  step {step['id']}: {status}, {attempts} attempt(s){score_text}"
              f" - {step['description']}")  # fmt: skip
    for error in view["errors"]:
        print(f"error in {error['node']}: {error['error']}")
    if view["interrupts"]:
        print(f"waiting for: {view['interrupts'][0].get('type', 'a decision')}")
    if values.get("final_answer"):
        print(f"final answer: {values['final_answer']}")
    return EXIT_OK


def _history(args: argparse.Namespace) -> int:
    from atlas_graph.sessions import session_history

    rows = session_history(args.thread, args.config, limit=args.limit)
    if args.json:
        print(json.dumps(rows, default=str))
        return EXIT_OK
    print(f"{'STEP':>4}  {'CHECKPOINT':<38} {'AFTER':<14} NEXT")
    for row in rows:
        print(f"{row['step']:>4}  {row['checkpoint_id']:<38} "
              f"{','.join(row['node']) or '-':<14} {','.join(row['next']) or '-'}")  # fmt: skip
    return EXIT_OK


def _parse_values(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise AtlasUserError(f"--set expects KEY=JSON, got '{pair}'")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError as error:
            raise AtlasUserError(f"--set {key}: value is not JSON: {error}") from None
    return values


def _fork(args: argparse.Namespace) -> int:
    from atlas_graph.sessions import fork_session, resume_session

    values = _parse_values(args.values or [])
    checkpoint = fork_session(
        args.thread, args.checkpoint, config=args.config, values=values, guidance=args.guidance
    )
    print(f"forked session {args.thread} at {args.checkpoint}: new checkpoint {checkpoint}")
    if not args.resume:
        print(f"continue it: atlas-graph resume {args.thread}")
        return EXIT_OK
    return report_result(resume_session(args.thread, config=args.config), False)


def _read_plan(path: str) -> Any:
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise AtlasUserError(f"--plan {path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise AtlasUserError(f"--plan {path}: not UTF-8 text") from None
    try:
        return yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError:
        return text  # let the plan parser report what is wrong


def _approve(args: argparse.Namespace) -> int:
    from atlas_graph.sessions import approve_plan

    action, plan = "approve", None
    if args.reject:
        action = "reject"
    elif args.plan:
        action, plan = "edit", _read_plan(args.plan)
    result = approve_plan(
        args.thread,
        action=action,
        plan=plan,
        notes=args.notes,
        config=args.config,
        on_event=_on_event(args),
    )
    return report_result(result, args.json)


def _prune(args: argparse.Namespace) -> int:
    from atlas_graph.sessions import prune_sessions

    report = prune_sessions(
        args.older_than, config=args.config, ledger=args.ledger, unrecorded=args.unrecorded
    )
    records = f" and {len(report.ledger_records)} ledger record(s)" if args.ledger else ""
    print(f"deleted checkpoints of {len(report.threads)} finished session(s){records}")
    for thread in report.threads:
        print(f"  {thread}")
    return EXIT_OK


SESSION_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "resume": _resume,
    "sessions": _sessions,
    "show": _show,
    "history": _history,
    "fork": _fork,
    "approve": _approve,
    "prune": _prune,
}
