"""The ``atlas-graph`` command line.

Exit codes: 0 the session succeeded (or the command did its job), 1 a session finished but
failed, 2 bad usage or config, 3 the session stopped with an error (it can be resumed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from atlas_graph.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STOPPED,
    EXIT_USAGE,
    scrubbed_json,
)
from atlas_graph.cli.completion import COMPLETION_COMMANDS, add_completion_command
from atlas_graph.cli.eval import EVAL_COMMANDS, add_eval_command
from atlas_graph.cli.export import EXPORT_COMMANDS, add_export_commands
from atlas_graph.cli.harness import HARNESS_COMMANDS, add_harness_commands
from atlas_graph.cli.learning import LEARNING_COMMANDS, add_learning_commands
from atlas_graph.cli.sessions import SESSION_COMMANDS, add_session_commands, progress, report_result
from atlas_graph.errors import AtlasRunError, AtlasUserError, one_line
from atlas_graph.redaction import scrub_text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atlas-graph",
        description="Supervise any agent with a teacher: plan review, step validation, "
        "guided retries and rewards, as a LangGraph state machine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run one task, or continue an unfinished session")
    run.add_argument("task", nargs="?", help="the task text (omit to continue --thread-id)")
    run.add_argument("--config", "-c", required=True, help="YAML config file")
    run.add_argument("--mode", choices=["auto", "paired", "coach", "escalate"], help="lane")
    run.add_argument("--thread-id", help="session id (reuse an unfinished one to resume it)")
    run.add_argument("--metadata", help="session metadata as a JSON object")
    run.add_argument("--json", action="store_true", help="print the Result as JSON")
    _stream_flags(run, default="when stdout is a terminal and not --json")
    _telemetry_flags(run)

    demo = commands.add_parser("demo", help="run the offline demo (no API key, no network)")
    demo.add_argument("--json", action="store_true", help="print the Results as JSON lines")
    _stream_flags(demo, default="unless --json")
    _telemetry_flags(demo)

    graph = commands.add_parser("graph", help="print the graph as a Mermaid drawing")
    graph.add_argument("--config", "-c", help="YAML config file (default: the offline demo)")

    config = commands.add_parser("config", help="work with config files")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    validate = config_commands.add_parser("validate", help="check a config file")
    validate.add_argument("file")
    add_session_commands(commands)
    add_eval_command(commands)
    add_harness_commands(commands)
    add_export_commands(commands)
    add_learning_commands(commands)
    add_completion_command(commands, parser)
    return parser


def _stream_flags(parser: argparse.ArgumentParser, *, default: str) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--stream", dest="stream", action="store_true", default=None,
                       help=f"print live progress (default: {default})")  # fmt: skip
    group.add_argument("--no-stream", dest="stream", action="store_false")


def _telemetry_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events-jsonl", metavar="FILE",
                        help="append every event as a JSON line to FILE")  # fmt: skip


def _publishers(args: argparse.Namespace) -> list[Any]:
    """Publishers the command line asks for (``--events-jsonl``)."""
    if not args.events_jsonl:
        return []
    from atlas_graph.telemetry.publishers import JsonlFilePublisher

    return [JsonlFilePublisher(args.events_jsonl)]


def _flush_traces() -> None:
    """Send buffered LangSmith runs before the process exits (nothing to do untraced)."""
    from langchain_core.tracers.langchain import wait_for_all_tracers

    wait_for_all_tracers()


def _fail(message: str, code: int) -> int:
    print(f"atlas-graph: {scrub_text(message)}", file=sys.stderr)
    return code


def _summary(result: Any) -> str:
    reward = f"{result.reward['score']:.2f}" if result.reward else "-"
    return (
        f"{result.status}: lane {result.lane}, {len(result.steps)} step(s), "
        f"{result.retries} retr{'y' if result.retries == 1 else 'ies'}, reward {reward}, "
        f"session {result.session_id}"
    )


def _print_result(result: Any, as_json: bool, streamed: bool) -> None:
    if as_json:
        print(scrubbed_json(result))
        return
    if not streamed and result.final_answer:
        print(result.final_answer)
    print(_summary(result))


def _command_run(args: argparse.Namespace) -> int:
    from atlas_graph.runner import run

    if args.task is None and args.thread_id is None:
        return _fail("run needs a TASK, or --thread-id of an unfinished session", EXIT_USAGE)
    metadata = _metadata(args.metadata) if args.metadata else {}
    stream = args.stream if args.stream is not None else (sys.stdout.isatty() and not args.json)
    result = run(
        args.task,
        config=args.config,
        mode=args.mode,
        thread_id=args.thread_id,
        session_metadata=metadata,
        on_event=progress(stream, args.json),
        stream_progress=False,  # the console above already prints, on stderr under --json
        publishers=_publishers(args),
    )
    if result.waiting:
        return report_result(result, args.json)  # paused for plan approval: exit 3
    _print_result(result, args.json, stream)
    return EXIT_OK if result.success else EXIT_FAILED


def _metadata(text: str) -> dict[str, Any]:
    """``--metadata``: a JSON object, or an error saying what is wrong with the text."""
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as error:
        raise AtlasUserError(f"--metadata is not JSON: {error}") from None
    if not isinstance(metadata, dict):
        raise AtlasUserError("--metadata must be a JSON object")
    return metadata


def _command_demo(args: argparse.Namespace) -> int:
    from atlas_graph.demo import DEMO_TASKS, demo_config_path
    from atlas_graph.runner import run

    stream = args.stream if args.stream is not None else not args.json
    if not args.json:
        print("atlas-graph offline demo: a deterministic Python student, a programmatic "
              "teacher and judge; no API key, no network.\n")  # fmt: skip
    failed = 0
    publishers = _publishers(args)
    for lane, task in DEMO_TASKS:
        if stream:
            print(f"── {lane} lane " + "─" * 50, file=sys.stderr if args.json else sys.stdout)
        result = run(
            task,
            config=demo_config_path(),
            mode=lane,
            session_metadata={"demo": True},
            on_event=progress(stream, args.json),
            stream_progress=False,
            publishers=publishers,
        )
        _print_result(result, args.json, stream)
        if stream:
            print()
        failed += not result.success
    return EXIT_OK if failed == 0 else EXIT_FAILED


def _command_graph(args: argparse.Namespace) -> int:
    from atlas_graph.demo import demo_config_path
    from atlas_graph.graph import GRAPH_NAME, create_atlas_graph

    builder = create_atlas_graph(args.config or demo_config_path())
    print(builder.compile(name=GRAPH_NAME).get_graph().draw_mermaid())
    return EXIT_OK


def _command_config(args: argparse.Namespace) -> int:
    from atlas_graph.config import load_config

    config = load_config(args.file)
    agent = config.agent.type if config.agent else "none (pass agent= in code)"
    teacher = "llm" if config.teacher.llm else "python" if config.teacher.validator else "none"
    print(
        f"{args.file}: ok (agent: {agent}, teacher: {teacher}, storage: {config.storage.backend})"
    )
    return EXIT_OK


_COMMANDS = {
    "run": _command_run,
    "demo": _command_demo,
    "graph": _command_graph,
    "config": _command_config,
    **SESSION_COMMANDS,
    **EVAL_COMMANDS,
    **HARNESS_COMMANDS,
    **EXPORT_COMMANDS,
    **LEARNING_COMMANDS,
    **COMPLETION_COMMANDS,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``atlas-graph`` script.

    Errors of the package end the command with one line and an exit code that says what to do:
    a user error (bad config, input or thread) exits 2, a stopped session 3. Anything else is a
    bug and keeps its traceback.
    """
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except AtlasUserError as error:
        return _fail(one_line(error), EXIT_USAGE)
    except AtlasRunError as error:
        return _fail(one_line(error), EXIT_STOPPED)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        # The reader (e.g. `head`) went away; stop quietly like other command-line tools.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - must outlive this frame
        return EXIT_OK
    finally:
        _flush_traces()


if __name__ == "__main__":
    sys.exit(main())


def _version() -> str:
    import atlas_graph

    return str(atlas_graph.__version__)
