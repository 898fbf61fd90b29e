"""One error tree: every error of the package is an ``AtlasError`` in exactly one branch, carries
its data as attributes, has a one-line message, and the command line turns it into an exit code
and one line on stderr."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from pathlib import Path
from typing import Any

import pytest

import atlas_graph
from atlas_graph.callables import load_object
from atlas_graph.cli import EXIT_STOPPED, EXIT_USAGE, main
from atlas_graph.config import load_config
from atlas_graph.errors import (
    AgentError,
    ApprovalError,
    AtlasError,
    AtlasInputError,
    AtlasRunError,
    AtlasUserError,
    ConfigError,
    DatasetError,
    ExportError,
    ImportReferenceError,
    ModelConfigError,
    ModelOutputError,
    PlanParseError,
    ReviewError,
    ScriptExhaustedError,
    SessionNotFoundError,
    SessionStateError,
    StorageError,
    TaskFileError,
    one_line,
    one_line_error,
)
from atlas_graph.evaluation.batch import parse_task, read_results
from atlas_graph.testing import ScriptedChatModel

BRANCHES = (AtlasUserError, AtlasRunError)


def package_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class defined in a module of the package, found by importing them all."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(atlas_graph.__path__, "atlas_graph."):
        if info.name == "atlas_graph.server":
            continue  # builds the served graph on import, from ATLAS_GRAPH_CONFIG; defines none
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == info.name
            ):
                found[f"{info.name}.{value.__qualname__}"] = value
    return found


EXCEPTIONS = package_exceptions()


def test_the_walk_finds_the_tree() -> None:
    names = {cls.__name__ for cls in EXCEPTIONS.values()}
    assert {"AtlasError", "ConfigError", "SessionStateError", "ScriptExhaustedError"} <= names


@pytest.mark.parametrize("where", sorted(EXCEPTIONS))
def test_every_error_is_an_atlas_error_in_exactly_one_branch(where: str) -> None:
    cls = EXCEPTIONS[where]
    assert issubclass(cls, AtlasError), f"{where} is outside the error tree"
    if cls in (AtlasError, *BRANCHES):
        return
    branches = [branch.__name__ for branch in BRANCHES if issubclass(cls, branch)]
    assert len(branches) == 1, (where, branches)


@pytest.mark.parametrize(
    ("cls", "branch"),
    [
        (ConfigError, AtlasUserError),
        (ImportReferenceError, AtlasUserError),
        (ModelConfigError, AtlasUserError),
        (SessionNotFoundError, AtlasUserError),
        (SessionStateError, AtlasUserError),
        (StorageError, AtlasUserError),
        (TaskFileError, AtlasUserError),
        (DatasetError, AtlasUserError),
        (ReviewError, AtlasUserError),
        (ExportError, AtlasUserError),
        (ApprovalError, AtlasUserError),
        (AtlasInputError, AtlasUserError),
        (AgentError, AtlasRunError),
        (ModelOutputError, AtlasRunError),
        (PlanParseError, AtlasRunError),
        (ScriptExhaustedError, AtlasRunError),
    ],
)
def test_branch_of_each_error(cls: type[AtlasError], branch: type[AtlasError]) -> None:
    assert issubclass(cls, branch)


@pytest.mark.parametrize(
    ("cls", "base"),
    [
        # what each error was before the tree: callers' ``except`` clauses keep working
        (ConfigError, ValueError),
        (ImportReferenceError, ValueError),
        (ModelConfigError, ValueError),
        (ModelOutputError, ValueError),
        (TaskFileError, ValueError),
        (ReviewError, ValueError),
        (ExportError, ValueError),
        (ApprovalError, ValueError),
        (AtlasInputError, ValueError),
        (PlanParseError, ValueError),
        (SessionNotFoundError, LookupError),
        (StorageError, RuntimeError),
        (AgentError, RuntimeError),
        (ScriptExhaustedError, RuntimeError),
        (AtlasRunError, RuntimeError),
        (AtlasUserError, ValueError),
    ],
)
def test_errors_keep_their_builtin_bases(cls: type[AtlasError], base: type[Exception]) -> None:
    assert issubclass(cls, base)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("atlas_graph.config", "ConfigError"),
        ("atlas_graph.callables", "ImportReferenceError"),
        ("atlas_graph.models", "ModelConfigError"),
        ("atlas_graph.models", "ModelOutputError"),
        ("atlas_graph.runner", "AtlasRunError"),
        ("atlas_graph.runner", "SessionStateError"),
        ("atlas_graph.sessions", "SessionNotFoundError"),
        ("atlas_graph.storage.persistence", "StorageError"),
        ("atlas_graph.evaluation.batch", "TaskFileError"),
        ("atlas_graph.review", "ReviewError"),
        ("atlas_graph.export", "ExportError"),
        ("atlas_graph.nodes.approval", "ApprovalError"),
        ("atlas_graph.state", "AtlasInputError"),
        ("atlas_graph.plans", "PlanParseError"),
        ("atlas_graph.agents.base", "AgentError"),
        ("atlas_graph.agents", "AgentError"),
        ("atlas_graph.testing", "ScriptExhaustedError"),
        ("atlas_graph", "AtlasError"),
        ("atlas_graph", "AtlasUserError"),
    ],
)
def test_old_homes_still_export_the_class(module: str, name: str) -> None:
    from atlas_graph import errors

    assert getattr(importlib.import_module(module), name) is getattr(errors, name)


# --------------------------------------------------------------------------- one_line


def test_one_line_of_an_empty_message_is_the_class_name() -> None:
    assert one_line(ValueError()) == "ValueError"
    assert one_line(ReviewError()) == "ReviewError"
    assert one_line(AtlasRunError("  \n\n")) == "AtlasRunError"
    assert str(AtlasUserError()) == "AtlasUserError"


def test_one_line_of_a_multi_line_message_is_its_first_non_empty_line() -> None:
    assert one_line(RuntimeError("\n  first line  \nsecond line")) == "first line"
    assert str(ConfigError("bad\ndetails")) == "bad"
    assert one_line_error(RuntimeError("boom\ntrace")) == "RuntimeError: boom"
    assert one_line_error(RuntimeError()) == "RuntimeError"


# --------------------------------------------------------------------------- data


def test_errors_carry_their_data_as_attributes() -> None:
    missing = SessionNotFoundError("t-1")
    assert (missing.session_id, missing.checkpoint_id) == ("t-1", None)
    assert str(missing) == "no session t-1 in this storage"
    assert str(SessionNotFoundError("t-1", checkpoint_id="c9")) == "no checkpoint c9 in session t-1"

    finished = SessionStateError("t-1", "already finished")
    assert (finished.session_id, finished.reason) == ("t-1", "already finished")
    assert str(finished) == "session t-1 already finished"

    config = ConfigError("required field is missing", source="a.yaml", key="agent.type")
    assert (config.source, config.key, config.problem) == (
        "a.yaml", "agent.type", "required field is missing"
    )  # fmt: skip
    assert str(config) == "a.yaml: agent.type: required field is missing"

    model = ModelConfigError("environment variable K is not set", role="teacher", model="m")
    assert (model.role, model.model) == ("teacher", "m")
    assert str(model) == "teacher model 'm': environment variable K is not set"

    output = ModelOutputError("unreadable", {"total_tokens": 7})
    assert output.usage == {"total_tokens": 7}
    assert ModelOutputError("unreadable").usage == {
        "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "calls": 0,
    }  # fmt: skip

    assert AtlasRunError("stopped", session_id="s").session_id == "s"
    assert AgentError("no answer").session_id is None


def test_task_file_errors_name_the_file_and_line() -> None:
    with pytest.raises(TaskFileError) as caught:
        parse_task({"task": ""}, 3, "tasks.jsonl")
    error = caught.value
    assert (error.path, error.line) == ("tasks.jsonl", 3)
    assert error.problem == '"task" must be a non-empty string'
    assert str(error) == 'tasks.jsonl line 3: "task" must be a non-empty string'


def test_config_errors_from_a_file_name_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert caught.value.source == str(tmp_path / "nope.yaml")
    assert caught.value.problem == "file not found"
    with pytest.raises(ConfigError) as caught:
        load_config({"storage": {"path": "${ATLAS_TEST_UNSET_VARIABLE}"}}, environ={})
    assert caught.value.key == "storage.path"
    assert str(caught.value) == (
        "<config>: storage.path: environment variable ATLAS_TEST_UNSET_VARIABLE is not set"
    )


def test_import_reference_errors_keep_the_reference() -> None:
    with pytest.raises(ImportReferenceError) as caught:
        load_object("json:no_such_function")
    assert caught.value.reference == "json:no_such_function"
    assert str(caught.value) == "module 'json' has no attribute 'no_such_function'"


def test_an_exhausted_script_says_which_model_and_how_far() -> None:
    model = ScriptedChatModel(responses=["only"], name="teacher-fake")
    model.invoke("one")
    with pytest.raises(ScriptExhaustedError) as caught:
        model.invoke("two")
    assert (caught.value.model, caught.value.served) == ("teacher-fake", 1)
    assert "ran out of scripted responses" in str(caught.value)


def test_errors_survive_pickling_with_their_data() -> None:
    for error in (
        SessionStateError("t-1", "already finished"),
        TaskFileError("f.jsonl", 2, "not JSON"),
        ModelOutputError("unreadable", {"total_tokens": 3}),
        ScriptExhaustedError("m", 2),
        ConfigError("x", source="a.yaml"),
    ):
        copy: Any = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert vars(copy) == vars(error)


# --------------------------------------------------------------------------- command line


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing a command might write (the default SQLite file) lands in the repository."""
    monkeypatch.chdir(tmp_path)


def one_line_stderr(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("atlas-graph: ") and "Traceback" not in err
    return lines[0]


def test_cli_config_that_does_not_exist_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "validate", str(tmp_path / "nope.yaml")]) == EXIT_USAGE
    assert one_line_stderr(capsys).endswith("nope.yaml: file not found")


def test_cli_config_with_a_bad_key_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("storage:\n  backend: memory\n  bogus: 1\n", encoding="utf-8")
    assert main(["config", "validate", str(config)]) == EXIT_USAGE
    assert "storage.bogus: unknown field" in one_line_stderr(capsys)


def test_cli_config_that_is_not_utf8_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "latin1.yaml"
    config.write_bytes(b"metadata:\n  owner: \xe9\n")
    assert main(["config", "validate", str(config)]) == EXIT_USAGE
    assert one_line_stderr(capsys).endswith("latin1.yaml: not UTF-8 text")


def test_cli_plan_file_that_is_not_utf8_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.json"
    plan.write_bytes(b'{"steps": ["caf\xe9"]}')
    assert main(["approve", "t-1", "--plan", str(plan)]) == EXIT_USAGE
    assert one_line_stderr(capsys).endswith("plan.json: not UTF-8 text")


def test_results_file_that_is_not_utf8_is_a_task_file_error(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    results.write_bytes(b'{"id": "caf\xe9"}\n')
    with pytest.raises(TaskFileError, match="is not UTF-8 text; choose another --output"):
        read_results(results)


def test_cli_bad_metadata_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("storage:\n  backend: memory\n", encoding="utf-8")
    assert main(["run", "Hi.", "-c", str(config), "--metadata", "[1]"]) == EXIT_USAGE
    assert one_line_stderr(capsys) == "atlas-graph: --metadata must be a JSON object"


def _command_raising(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """Make ``atlas-graph graph`` raise ``error``."""

    def command(_args: Any) -> int:
        raise error

    cli_main = importlib.import_module("atlas_graph.cli.main")
    monkeypatch.setitem(cli_main._COMMANDS, "graph", command)


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (AtlasUserError(), EXIT_USAGE, "atlas-graph: AtlasUserError"),
        (ReviewError(""), EXIT_USAGE, "atlas-graph: ReviewError"),
        (AtlasRunError(), EXIT_STOPPED, "atlas-graph: AtlasRunError"),
        (StorageError("cannot connect\ndetails"), EXIT_USAGE, "atlas-graph: cannot connect"),
        (ModelOutputError("unreadable reply"), EXIT_STOPPED, "atlas-graph: unreadable reply"),
    ],
)
def test_cli_turns_each_branch_into_its_exit_code_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: AtlasError,
    code: int,
    line: str,
) -> None:
    _command_raising(monkeypatch, error)
    assert main(["graph"]) == code
    assert one_line_stderr(capsys) == line


def test_cli_lets_other_errors_through_as_bugs(monkeypatch: pytest.MonkeyPatch) -> None:
    _command_raising(monkeypatch, ValueError("a bug, not bad input"))
    with pytest.raises(ValueError, match="a bug"):
        main(["graph"])
