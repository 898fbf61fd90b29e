"""Every error atlas-graph raises, in one tree, so a caller can catch by what went wrong.

``AtlasError`` is the root. Below it are two branches, and every error is in exactly one:

* ``AtlasUserError`` (a ``ValueError``): the caller asked for something that cannot be done
  (a bad config, bad input, a thread that cannot do what was asked). Nothing ran; fix the
  input and ask again. The command line exits 2.
* ``AtlasRunError`` (a ``RuntimeError``): something went wrong while a session ran (the agent,
  a model's reply); the session stopped and its checkpoints remain, so it can be resumed. The
  command line exits 3.

Each error keeps its data as attributes and builds its message from them, always one line, so
the command line, events and result files can show ``str(error)`` as it is. The classes are
re-exported by the modules that raise them (``from atlas_graph.config import ConfigError``
keeps working).
"""

from __future__ import annotations

from typing import Any

from atlas_graph.usage import Usage, sum_usage


def _first_line(text: str) -> str:
    """The first line of ``text`` that holds more than whitespace, stripped; ``""`` if none."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def one_line(error: BaseException) -> str:
    """The first non-empty line of an error's message, or its class name when it has none.

    Reports (the command line, events, result files) want one line, and ``str(error)`` may be
    empty or span several lines (a pydantic ``ValidationError``, a traceback in a message).
    """
    return _first_line(str(error)) or type(error).__name__


def one_line_error(error: BaseException) -> str:
    """``Type: first line``, for errors from code we do not own, whose type says a lot."""
    name = type(error).__name__
    text = _first_line(str(error))
    return f"{name}: {text}" if text and text != name else name


def _restore(cls: type[AtlasError], args: tuple[Any, ...], data: dict[str, Any]) -> AtlasError:
    """Rebuild a pickled error without calling its ``__init__``, whose arguments may differ."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(data)
    return error


class AtlasError(Exception):
    """Root of every atlas-graph error: ``except AtlasError`` catches all of them.

    ``data`` become attributes, so a caller reads ``error.session_id`` instead of parsing the
    message; ``str()`` is the message's first line, or the class name when it is empty.
    """

    def __init__(self, message: str = "", **data: Any) -> None:
        super().__init__(message)
        for name, value in data.items():
            setattr(self, name, value)

    def __str__(self) -> str:
        return _first_line(super().__str__()) or type(self).__name__

    def __reduce__(self) -> tuple[Any, ...]:
        # typed __init__s take other arguments than ``args`` holds: restore, do not re-call
        return _restore, (type(self), self.args, dict(self.__dict__))


class AtlasUserError(AtlasError, ValueError):
    """The caller asked for something that cannot be done; nothing ran (CLI exit 2).

    A ``ValueError``, so ``except ValueError`` around a call keeps working.
    """


class AtlasRunError(AtlasError, RuntimeError):
    """A session stopped before it finished; its checkpoints remain for ``resume`` (CLI exit 3).

    ``session_id`` names the session to resume (``None`` when the error is not about one).
    """

    session_id: str | None

    def __init__(self, message: str = "", *, session_id: str | None = None, **data: Any) -> None:
        super().__init__(message, session_id=session_id, **data)


# --------------------------------------------------------------------------- user errors


class ConfigError(AtlasUserError):
    """A config that cannot be used; the message names the file, the key and the problem."""

    source: str | None
    key: str | None
    problem: str

    def __init__(
        self, problem: str = "", *, source: str | None = None, key: str | None = None
    ) -> None:
        message = ": ".join(part for part in (source, key, problem) if part)
        super().__init__(message, source=source, key=key, problem=problem)


class ImportReferenceError(AtlasUserError):
    """A ``module:attribute`` named in config cannot be loaded; ``reason`` says why."""

    reference: str
    reason: str

    def __init__(self, reference: str, reason: str) -> None:
        super().__init__(reason, reference=reference, reason=reason)


class ModelConfigError(AtlasUserError):
    """A role's model cannot be built from config (missing key, unsupported provider)."""

    role: str | None
    model: str | None
    problem: str

    def __init__(
        self, problem: str = "", *, role: str | None = None, model: str | None = None
    ) -> None:
        if role is None:
            message = problem
        else:
            message = f"{role} model '{model}': {problem}" if model else f"{role} model: {problem}"
        super().__init__(message, role=role, model=model, problem=problem)


class SessionNotFoundError(AtlasUserError, LookupError):
    """No checkpoints for this session (or this checkpoint of it) in the storage.

    Also a ``LookupError``, as before the tree: it is a failed lookup.
    """

    session_id: str
    checkpoint_id: str | None

    def __init__(
        self,
        session_id: str,
        *,
        checkpoint_id: str | None = None,
        where: str = "in this storage",
    ) -> None:
        if checkpoint_id is not None:
            message = f"no checkpoint {checkpoint_id} in session {session_id}"
        else:
            message = f"no session {session_id} {where}"
        super().__init__(message, session_id=session_id, checkpoint_id=checkpoint_id)


class SessionStateError(AtlasUserError):
    """The session cannot do what was asked: it is finished, or waits for nothing.

    Raised before anything runs, so nothing changed; the caller named the wrong session (or
    checkpoint) or the wrong operation for it.
    """

    session_id: str
    reason: str
    checkpoint_id: str | None

    def __init__(self, session_id: str, reason: str, *, checkpoint_id: str | None = None) -> None:
        subject = f"checkpoint {checkpoint_id}" if checkpoint_id else f"session {session_id}"
        super().__init__(
            f"{subject} {reason}", session_id=session_id, reason=reason, checkpoint_id=checkpoint_id
        )


class ThreadBusyError(SessionStateError):
    """Another runner holds the session's thread (``holder`` names it: pid and host).

    One runner per thread: a second ``run``/``resume``/``approve``/``fork`` of a thread that
    is being run refuses before anything runs.
    """

    holder: str

    def __init__(self, session_id: str, holder: str) -> None:
        super().__init__(
            session_id, f"is being run by {holder}; wait for it to end, or stop that process"
        )
        self.holder = holder


class StorageError(AtlasUserError, RuntimeError):
    """Storage cannot be opened; the message has any password redacted.

    Usually the config names storage that is not there (exit 2). Also a ``RuntimeError``, as
    before the tree.
    """


class ChartError(AtlasUserError):
    """A chart cannot be drawn: matplotlib is missing (``missing``), or there is nothing to draw."""


class MatrixError(AtlasUserError):
    """A runtime matrix cannot run as asked: no pairs, a bad matrix file, or a model name for a
    role the config has no ``llm`` block for (``pair``)."""


class LearningPlotError(ChartError):
    """The learning curve cannot be drawn (matplotlib missing, or nothing to draw)."""


class SharedStorageError(AtlasUserError):
    """The config's storage cannot be shared by Ray workers (it must be PostgreSQL)."""


class MissingExtraError(AtlasUserError, ImportError):
    """A feature needs an optional dependency that is not installed.

    ``extra`` names the extra that brings it (``pip install 'atlas-graph[<extra>]'``),
    ``module`` the module that is missing.
    """

    extra: str
    module: str

    def __init__(self, feature: str, *, extra: str, module: str) -> None:
        super().__init__(
            f"{feature} needs the '{extra}' extra: pip install 'atlas-graph[{extra}]'",
            extra=extra,
            module=module,
        )


class RayNotInstalledError(AtlasUserError, ImportError):
    """Ray was asked for but is not installed; the message says how to install it."""


class RayWorkerError(AtlasUserError, RuntimeError):
    """The cluster could not be reached or its workers could not start; ``str()`` is one line."""


class TaskFileError(AtlasUserError):
    """A task file (or a results file to resume) cannot be used; names the file and line.

    ``path`` is the file (``"tasks"`` for tasks given in code); ``line`` is ``None`` when the
    problem is the whole file.
    """

    path: str
    line: int | None
    problem: str
    results: bool

    def __init__(self, path: str, line: int | None, problem: str, *, results: bool = False) -> None:
        if line is None:
            message = problem  # about the whole file, which the problem names
        else:
            message = f"{'results file ' if results else ''}{path} line {line}: {problem}"
        super().__init__(message, path=path, line=line, problem=problem, results=results)


class DatasetError(TaskFileError):
    """A probe dataset or trajectory file cannot be used; names the file and line.

    A ``TaskFileError``, so code that catches bad input files catches these too.
    """


class ReviewError(AtlasUserError):
    """A review decision cannot be recorded; the message says why and what to do."""


class ExportError(AtlasUserError):
    """An export filter is malformed; the message names the filter and what it accepts."""


class ApprovalError(AtlasUserError):
    """A plan approval decision that cannot be applied; nothing is changed."""


class AtlasInputError(AtlasUserError):
    """The graph was started with input it cannot run; raised before any work is done."""


# --------------------------------------------------------------------------- run errors


class StorageFaultError(AtlasRunError):
    """The storage failed while in use: connection lost, pool timed out, database locked,
    disk full or file corrupted. Checkpoints already written stay, so the session resumes
    from its last one once the storage is back (CLI exit 3). Passwords are redacted."""


class AgentError(AtlasRunError):
    """The agent could not answer; the step records it as a failed attempt."""


class ModelOutputError(AtlasRunError, ValueError):
    """A model's reply could not be parsed into the expected schema, even leniently.

    ``usage`` keeps the tokens the unreadable reply still cost. Also a ``ValueError``, as
    before the tree: callers parse replies under ``except ValueError``.
    """

    usage: Usage

    def __init__(self, message: str = "", usage: Usage | None = None, **data: Any) -> None:
        super().__init__(message, usage=usage if usage is not None else sum_usage([]), **data)


class PlanParseError(AtlasRunError, ValueError):
    """The student's plan text could not be turned into at least one usable step.

    The message is a single line saying what was wrong, so it can be fed back to the student.
    Also a ``ValueError``, as before the tree.
    """


class ScriptExhaustedError(AtlasRunError):
    """A scripted fake (``atlas_graph.testing``) was called more often than its script allows.

    A distinct type lets tests assert "the graph made more model calls than expected" precisely,
    instead of matching on a generic error.
    """

    model: str
    served: int

    def __init__(self, model: str, served: int) -> None:
        super().__init__(
            f"ScriptedChatModel {model!r} ran out of scripted responses: it had served "
            f"{served} call(s) and received another. Add responses, set repeat_last=True, or "
            "use a responder.",
            model=model,
            served=served,
        )
