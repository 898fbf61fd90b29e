"""``atlas-graph export`` and ``atlas-graph review``: training data out of the session ledger.

Both read the storage the other commands use (default: the embedded SQLite file under
``.atlas_graph/`` of the current folder), or the one named by ``--config`` or
``--database-url``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, get_args

from atlas_graph.cli.common import EXIT_FAILED, EXIT_OK, run_sync
from atlas_graph.errors import AtlasUserError, StorageError
from atlas_graph.state import ReviewStatus, SessionStatus

_SESSION_STATUSES = get_args(SessionStatus)
_REVIEW_STATUSES = get_args(ReviewStatus)


def add_export_commands(commands: Any) -> None:
    """Register ``export`` and ``review`` on the main parser's subparsers."""
    export = commands.add_parser(
        "export", help="write sessions as AtlasSessionTrace JSON lines (training data)"
    )
    _storage_flags(export)
    export.add_argument("--output", "-o", required=True, metavar="FILE",
                        help="JSONL file to write, or - for stdout")  # fmt: skip
    export.add_argument("--session-id", action="append", dest="session_ids", metavar="ID",
                        help="this session (repeatable; any status unless --status)")  # fmt: skip
    export.add_argument("--status", action="append", dest="statuses", choices=_SESSION_STATUSES,
                        help="session status (repeatable; default: succeeded)")  # fmt: skip
    export.add_argument(
        "--review-status", "--include-status", action="append", dest="review_statuses",
        choices=_REVIEW_STATUSES,
        help="review status (repeatable; default: any, or the config's "
        "runtime_safety.review.default_export_statuses when require_approval is true)",
    )  # fmt: skip
    export.add_argument("--include-all-statuses", action="store_true",
                        help="every review status, whatever the config's defaults")  # fmt: skip
    export.add_argument("--quiet", "-q", action="store_true",
                        help="no summary line on stderr")  # fmt: skip
    export.add_argument("--since", metavar="ISO", help="sessions started at or after this time")
    export.add_argument("--min-reward", type=float, metavar="X", help="session reward >= X")
    export.add_argument("--limit", type=int, metavar="N", help="write at most N sessions")
    export.add_argument("--offset", type=int, default=0, metavar="N",
                        help="skip the first N matching sessions")  # fmt: skip
    export.add_argument("--batch-size", type=int, default=200, metavar="N",
                        help="records read per storage query (default: 200)")  # fmt: skip
    export.add_argument("--trajectory-event-limit", "--trajectory-limit", type=int, metavar="N",
                        help="keep the newest N trajectory events per session")  # fmt: skip
    export.add_argument("--fail-if-empty", action="store_true",
                        help="exit 1 when no session matched")  # fmt: skip

    review = commands.add_parser("review", help="approve or quarantine finished sessions")
    actions = review.add_subparsers(dest="review_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="finished sessions with their review status")
    _storage_flags(listing)
    listing.add_argument("--status", action="append", dest="statuses", choices=_REVIEW_STATUSES,
                         help="review status to list (repeatable; default: all)")  # fmt: skip
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    grouped = actions.add_parser(
        "sessions", help="finished sessions grouped by review status, with drift (as Atlas)"
    )
    _storage_flags(grouped)
    grouped.add_argument("--limit", type=int, default=50, help="sessions per review status")
    grouped.add_argument("--json", action="store_true")
    for name, help_text in (
        ("approve", "mark a finished session as approved training data"),
        ("quarantine", "keep a finished session out of training data"),
        ("reset", "put a finished session back to pending review"),
    ):
        action = actions.add_parser(name, help=help_text)
        _storage_flags(action)
        action.add_argument("session_id", metavar="ID", help="session (thread) id")
        action.add_argument("--note", help="why (kept with the decision)")


def _storage_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", help="YAML config file (default: embedded SQLite)")
    parser.add_argument("--database-url", metavar="URL",
                        help="PostgreSQL URL (overrides the config's storage)")  # fmt: skip


def _config(args: argparse.Namespace) -> Any:
    """The config to use: ``--config`` (or defaults), with ``--database-url`` as storage."""
    from atlas_graph.config import StorageConfig, load_config

    config = load_config(args.config if args.config else {})
    if args.database_url:
        storage = StorageConfig.model_validate(
            {**config.storage.model_dump(exclude={"backend", "database_url"}),
             "backend": "postgres", "database_url": args.database_url}
        )  # fmt: skip
        config = config.model_copy(update={"storage": storage})
    return config


@asynccontextmanager
async def _ledger(config: Any) -> AsyncIterator[Any]:
    """The Store with the session ledger: storage only, no graph, so no model keys needed."""
    from atlas_graph.sessions import aopen_session_storage

    async with aopen_session_storage(config) as opened:
        if opened.store is None:
            raise StorageError("this storage has no store, so no session ledger")
        yield opened.store


def default_review_statuses(config: Any) -> list[str] | None:
    """The review statuses exported when none are asked for (``None``: any)."""
    review = config.runtime_safety.review
    return list(review.default_export_statuses) if review.require_approval else None


def _export(args: argparse.Namespace) -> int:
    from atlas_graph.export import ExportFilters, ExportQuery, aexport_sessions

    config = _config(args)
    review_statuses = args.review_statuses
    if args.include_all_statuses:
        if review_statuses:
            raise AtlasUserError("--include-all-statuses and --include-status exclude each other")
        review_statuses = list(_REVIEW_STATUSES)
    if review_statuses is None and not args.session_ids:
        review_statuses = default_review_statuses(config)
    filters: ExportFilters = {
        "session_ids": args.session_ids, "statuses": args.statuses,
        "review_statuses": review_statuses, "since": args.since, "min_reward": args.min_reward,
        "limit": args.limit, "offset": args.offset, "batch_size": args.batch_size,
        "trajectory_event_limit": args.trajectory_event_limit,
    }  # fmt: skip
    ExportQuery.build(**filters)  # a bad filter fails before the storage opens or a file is made
    _refuse_storage_files(config, args.output)
    target = "stdout" if args.output == "-" else args.output
    if args.output == "-" and (sys.stdout is None or sys.stdout.closed):
        raise AtlasUserError("--output -: standard output is closed; write to a file with -o FILE")

    async def export() -> Any:
        async with _ledger(config) as store:
            return await aexport_sessions(store, args.output, **filters)

    try:
        counts = run_sync(export())
    except OSError as error:
        raise AtlasUserError(f"--output {args.output}: cannot write: {error.strerror}") from None
    sessions = f"{counts.sessions} session{'' if counts.sessions == 1 else 's'}"
    steps = f"{counts.steps} step{'' if counts.steps == 1 else 's'}"
    if not args.quiet:
        print(f"{sessions}, {steps} written to {target}", file=sys.stderr)
    if counts.sessions == 0 and args.fail_if_empty:
        return EXIT_FAILED
    return EXIT_OK


def _print_grouped(groups: dict[str, list[dict[str, Any]]]) -> None:
    for status, rows in groups.items():
        print(f"{status} ({len(rows)})")
        for row in rows:
            reward = f"{row['reward']:.2f}" if isinstance(row["reward"], int | float) else "-"
            drift = row.get("drift") or {}
            z = drift.get("z_score")
            flag = "DRIFT" if row["drift_alert"] else ""
            z_text = f"z={z:+.2f}" if isinstance(z, int | float) else ""
            print(f"  {row['session_id']:<34} {row['status']:<10} {reward:>6} {z_text:>8} {flag}")


def _refuse_storage_files(config: Any, output: str) -> None:
    """Refuse ``--output`` naming the SQLite storage file (or its journal) itself."""
    from pathlib import Path

    from atlas_graph.errors import ExportError
    from atlas_graph.storage.persistence import sqlite_files

    if output == "-":
        return
    target = Path(output).resolve()
    if target in sqlite_files(config.storage):
        raise ExportError(
            f"--output {output} is the session storage itself; write the export elsewhere",
            output=output,
        )


def _review(args: argparse.Namespace) -> int:
    from atlas_graph.review import alist_reviews, areview_sessions, aset_review_status

    config = _config(args)
    if args.review_command == "sessions":

        async def grouped() -> Any:
            async with _ledger(config) as store:
                return await areview_sessions(store, limit=args.limit)

        groups = run_sync(grouped())
        if args.json:
            print(json.dumps(groups))
        else:
            _print_grouped(groups)
        return EXIT_OK

    async def act() -> Any:
        async with _ledger(config) as store:
            if args.review_command == "list":
                statuses = tuple(args.statuses) if args.statuses else None
                return await alist_reviews(store, statuses=statuses, limit=args.limit)
            status = {"approve": "approved", "quarantine": "quarantined", "reset": "pending"}[
                args.review_command
            ]
            return await aset_review_status(store, args.session_id, status, note=args.note)

    result = run_sync(act())
    if args.review_command != "list":
        note = f" ({result['review_notes']})" if result.get("review_notes") else ""
        print(f"session {result['session_id']}: {result['review_status']}{note}")
        return EXIT_OK
    if args.json:
        print(json.dumps(result))
        return EXIT_OK
    if not result:
        print("no finished sessions")
        return EXIT_OK
    print(f"{'SESSION':<34} {'STATUS':<10} {'REVIEW':<12} {'REWARD':>6}  TASK")
    for row in result:
        reward = f"{row['reward']:.2f}" if isinstance(row["reward"], int | float) else "-"
        task = " ".join(str(row["task"]).split())
        task = task if len(task) <= 50 else task[:47] + "..."
        print(f"{row['session_id']:<34} {row['status']:<10} {row['review_status']:<12} "
              f"{reward:>6}  {task}")  # fmt: skip
    return EXIT_OK


EXPORT_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "export": _export,
    "review": _review,
}
