"""Export sessions as AtlasSessionTrace JSON lines, the format Atlas's offline trainers read.

Sessions come from the session ledger in the LangGraph Store (``("atlas", "sessions")``), read
a page at a time with ``search(limit=, offset=)``, so memory stays flat however many sessions
there are: at most two pages of records (the async form reads the next page while the current
one is written) and one trace are alive at a time. The ledger record holds
everything the trace needs (see ``ledger.py``), so pruned checkpoints do not matter.

Filters are checked in Python on each record, not by the Store: a Store filter on a JSON
field makes every page test every record again (PostgreSQL decompresses each stored value to
do it), so an export would cost the square of the ledger's size; read once and filtered here,
it costs its size. ``offset`` and ``limit`` count matching sessions. With no status given, only
``succeeded`` sessions are exported; with explicit ``session_ids``, every status is.

Pages follow the Store's order (most recently updated first). A session that finishes or is
reviewed during an export moves to the front, which shifts later pages by one: export a ledger
that is not being written to when every session must appear exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sys
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypedDict, Unpack, get_args

import orjson
from langgraph.store.base import BaseStore, GetOp, Item, Result

from atlas_graph.errors import ExportError
from atlas_graph.redaction import may_hold_secrets, scrub
from atlas_graph.state import ReviewStatus, SessionStatus
from atlas_graph.storage.ledger import NAMESPACE
from atlas_graph.trace import session_trace, unscrubbed_trace

SESSION_STATUSES: tuple[str, ...] = get_args(SessionStatus)
REVIEW_STATUSES: tuple[str, ...] = get_args(ReviewStatus)
DEFAULT_STATUSES = ("succeeded",)
DEFAULT_BATCH_SIZE = 200
_YIELD_EVERY = 8  # records between turns of the event loop while a page is prefetched


@dataclass(frozen=True)
class ExportCounts:
    """What an export wrote."""

    sessions: int
    steps: int


class ExportFilters(TypedDict, total=False):
    """The export filters, all optional (see ``iter_session_traces`` for their meaning)."""

    session_ids: Iterable[str] | None
    statuses: Iterable[str] | None
    review_statuses: Iterable[str] | None
    since: str | datetime | None
    min_reward: float | None
    limit: int | None
    offset: int
    batch_size: int
    trajectory_event_limit: int | None


@dataclass(frozen=True)
class ExportQuery:
    """Validated export filters (see ``iter_session_traces`` for their meaning)."""

    session_ids: tuple[str, ...] | None = None
    statuses: tuple[str, ...] | None = None
    review_statuses: tuple[str, ...] | None = None
    since: str | None = None
    min_reward: float | None = None
    limit: int | None = None
    offset: int = 0
    batch_size: int = DEFAULT_BATCH_SIZE
    trajectory_event_limit: int | None = None

    @classmethod
    def build(
        cls,
        *,
        session_ids: Iterable[str] | None = None,
        statuses: Iterable[str] | None = None,
        review_statuses: Iterable[str] | None = None,
        since: str | datetime | None = None,
        min_reward: float | None = None,
        limit: int | None = None,
        offset: int = 0,
        batch_size: int = DEFAULT_BATCH_SIZE,
        trajectory_event_limit: int | None = None,
    ) -> ExportQuery:
        """Check and normalise the filters.

        Raises:
            ExportError: A value is out of range or unknown.
        """
        ids = _strings(session_ids, "session_ids")
        if statuses is None:
            statuses = None if ids else DEFAULT_STATUSES
        return cls(
            session_ids=ids,
            statuses=_choices(statuses, SESSION_STATUSES, "status"),
            review_statuses=_choices(review_statuses, REVIEW_STATUSES, "review status"),
            since=parse_since(since),
            min_reward=_number(min_reward, "min_reward"),
            limit=_count(limit, "limit", minimum=0),
            offset=_count(offset, "offset", minimum=0) or 0,
            batch_size=_count(batch_size, "batch_size", minimum=1) or DEFAULT_BATCH_SIZE,
            trajectory_event_limit=_count(
                trajectory_event_limit, "trajectory_event_limit", minimum=0
            ),
        )

    def matches(self, record: dict[str, Any]) -> bool:
        """Whether a ledger record passes every filter (the Store is not asked to filter)."""
        if self.statuses is not None and record.get("status") not in self.statuses:
            return False
        review = record.get("review_status") or "pending"
        if self.review_statuses is not None and review not in self.review_statuses:
            return False
        if self.since is not None and not _started_since(record, self.since):
            return False
        if self.min_reward is not None:
            score = (record.get("reward_summary") or {}).get("score")
            if not isinstance(score, int | float) or score < self.min_reward:
                return False
        return True

    def trace(self, record: dict[str, Any]) -> dict[str, Any]:
        """The trace of a matching record as a new JSON-only dict, secrets scrubbed."""
        return session_trace(record, trajectory_event_limit=self.trajectory_event_limit)

    def encode(self, record: dict[str, Any]) -> tuple[str, int]:
        """The JSON line of a matching record's trace (secrets scrubbed) and its step count.

        The trace is encoded first and walked for secrets only when the text may hold one,
        which keeps scrubbing off the hot path.
        """
        trace = unscrubbed_trace(record, trajectory_event_limit=self.trajectory_event_limit)
        line = _dumps(trace)
        if may_hold_secrets(line):
            line = _dumps(scrub(trace))
        return line + "\n", len(trace["steps"])


def _dumps(trace: dict[str, Any]) -> str:
    """Compact JSON, UTF-8 text as is; orjson is several times faster than ``json``."""
    try:
        return orjson.dumps(trace, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):  # e.g. an integer beyond 64 bits
        return json.dumps(trace, ensure_ascii=False, separators=(",", ":"), default=str)


def _started_since(record: dict[str, Any], since: str) -> bool:
    try:
        started = datetime.fromisoformat(record.get("started_at") or "")
    except ValueError:
        return False
    return started >= datetime.fromisoformat(since)


def parse_since(value: str | datetime | None) -> str | None:
    """An ISO 8601 time as the ledger writes it (UTC, ``+00:00``); naive times are UTC.

    Raises:
        ExportError: The text is not an ISO 8601 date or time.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ExportError(
                f"since: '{value}' is not an ISO 8601 date or time "
                "(e.g. 2026-01-31 or 2026-01-31T08:00:00Z)",
                field="since",
            ) from None
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _strings(values: Iterable[str] | None, name: str) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    items = tuple(dict.fromkeys(str(value) for value in values))
    if not items or not all(items):
        raise ExportError(f"{name}: give at least one non-empty id", field=name)
    return items


def _choices(
    values: Iterable[str] | None, allowed: tuple[str, ...], name: str
) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    items = tuple(dict.fromkeys(values))
    unknown = [item for item in items if item not in allowed]
    if unknown or not items:
        raise ExportError(
            f"unknown {name} '{', '.join(unknown) or '(none)'}'; use one of {', '.join(allowed)}",
            field=name,
        )
    return items


def _number(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExportError(
            f"{name} must be a number (a reward between 0 and 1), got {value!r}", field=name
        )
    return float(value)


def _count(value: int | None, name: str, *, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ExportError(f"{name} must be a whole number >= {minimum}, got {value!r}", field=name)
    return value


def _window(query: ExportQuery, records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The matching records, after skipping ``offset`` of them and up to ``limit``."""
    end = None if query.limit is None else query.offset + query.limit
    matching = (record for record in records if query.matches(record))
    return itertools.islice(matching, query.offset, end)


# --------------------------------------------------------------------------- sync


def iter_session_traces(
    store: BaseStore, **filters: Unpack[ExportFilters]
) -> Iterator[dict[str, Any]]:
    """AtlasSessionTrace dicts of the ledger's sessions, one page of records at a time.

    Filters (all optional): ``session_ids``, ``statuses`` (default ``("succeeded",)``, or all
    with ``session_ids``), ``review_statuses``, ``since`` (ISO 8601, on the start time),
    ``min_reward``, ``limit``, ``offset``, ``batch_size`` (records per Store read, default
    200) and ``trajectory_event_limit`` (newest events kept per session).

    Raises:
        ExportError: A filter is malformed (raised before anything is read).
    """
    query = ExportQuery.build(**filters)
    return (query.trace(record) for record in _window(query, _records(store, query)))


def _records(store: BaseStore, query: ExportQuery) -> Iterator[dict[str, Any]]:
    if query.session_ids is not None:
        for chunk in _chunks(query.session_ids, query.batch_size):
            yield from _values(store.batch([GetOp(NAMESPACE, key) for key in chunk]))
        return
    offset = 0
    while True:
        items = store.search(NAMESPACE, limit=query.batch_size, offset=offset)
        full = len(items) == query.batch_size
        yield from _values(items)
        del items  # let this page go before the next one is read
        if not full:
            break
        offset += query.batch_size


def _chunks(items: tuple[str, ...], size: int) -> Iterator[tuple[str, ...]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _values(items: Iterable[Result]) -> Iterator[dict[str, Any]]:
    """The values of the items a get (``Item | None``) or a search returned."""
    for item in items:
        if isinstance(item, Item):
            yield item.value


def export_sessions(
    store: BaseStore, destination: str | Path | IO[str], **filters: Unpack[ExportFilters]
) -> ExportCounts:
    """Write matching sessions as JSON lines to a path or an open text file.

    A path is created or replaced, atomically (a temporary file beside it, renamed at the
    end); an open file is written to and left open. Filters as in ``iter_session_traces``.

    Raises:
        ExportError: A filter is malformed, or the path is a SQLite database (the destination
            is not touched).
    """
    query = ExportQuery.build(**filters)
    with _output(destination) as out:
        sessions = steps = 0
        for record in _window(query, _records(store, query)):
            line, step_count = query.encode(record)
            out.write(line)
            sessions += 1
            steps += step_count
        out.flush()
    return ExportCounts(sessions=sessions, steps=steps)


_SQLITE_HEADER = b"SQLite format 3\x00"


@contextlib.contextmanager
def _output(destination: str | Path | IO[str]) -> Iterator[IO[str]]:
    """Open a path for writing (``-`` is stdout), or borrow an open file without closing it.

    A path is written as a temporary file beside it and renamed over it at the end, so a
    failed export leaves the old file as it was; a SQLite database is never replaced (the
    session storage itself, named by mistake).
    """
    if isinstance(destination, str | Path):
        if str(destination) == "-":
            yield sys.stdout
            return
        target = Path(destination)
        refuse_database(target)
        fd, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".partial"
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as owned:
                yield owned
                owned.flush()
                os.fsync(owned.fileno())
            os.replace(temporary, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        return
    if not hasattr(destination, "write"):
        raise ExportError("destination must be a path, '-' or an open text file")
    yield destination


def refuse_database(target: Path) -> None:
    """Refuse an output path that is a SQLite database (the session storage, most likely).

    Raises:
        ExportError: ``target`` (or the file it links to) starts with the SQLite header.
    """
    try:
        with open(target, "rb") as existing:
            header = existing.read(len(_SQLITE_HEADER))
    except OSError:
        return  # nothing there yet, or a path the write will report on
    if header == _SQLITE_HEADER:
        raise ExportError(
            f"--output {target} is a SQLite database (the session storage?); refusing to "
            "replace it with an export",
            output=str(target),
        )


# --------------------------------------------------------------------------- async


def aiter_session_traces(
    store: BaseStore, **filters: Unpack[ExportFilters]
) -> AsyncIterator[dict[str, Any]]:
    """Async ``iter_session_traces`` (``asearch`` pages; same filters).

    Raises:
        ExportError: A filter is malformed (raised on the call, before anything is read).
    """
    return _atraces(store, ExportQuery.build(**filters))


async def _atraces(store: BaseStore, query: ExportQuery) -> AsyncGenerator[dict[str, Any], None]:
    async with contextlib.aclosing(_awindow(store, query)) as records:
        async for record in records:
            yield query.trace(record)


async def _awindow(store: BaseStore, query: ExportQuery) -> AsyncGenerator[dict[str, Any], None]:
    """Async ``_window`` over the ledger's pages."""
    end = None if query.limit is None else query.offset + query.limit
    seen = 0
    # closed on the way out, so a prefetched page is settled before the caller moves on
    async with contextlib.aclosing(_arecords(store, query)) as records:
        async for record in records:
            if not query.matches(record):
                continue
            seen += 1
            if seen <= query.offset:
                continue
            yield record
            if end is not None and seen >= end:
                return


async def _arecords(store: BaseStore, query: ExportQuery) -> AsyncGenerator[dict[str, Any], None]:
    if query.limit == 0:
        return
    if query.session_ids is not None:
        for chunk in _chunks(query.session_ids, query.batch_size):
            for value in _values(await store.abatch([GetOp(NAMESPACE, key) for key in chunk])):
                yield value
        return
    async with contextlib.aclosing(_aprefetched(store, query.batch_size)) as pages:
        async for value in pages:
            yield value


async def _aprefetched(store: BaseStore, batch_size: int) -> AsyncGenerator[dict[str, Any], None]:
    """Pages of the ledger, the next one read while the current one is consumed.

    On PostgreSQL the server spends about as long producing a page as the exporter spends
    turning it into JSON lines; overlapping the two (the consumer yields to the event loop
    every few records, so the pending read can take in rows) nearly doubles throughput.
    """
    offset = 0
    pending = asyncio.ensure_future(_apage(store, batch_size, offset))
    try:
        while True:
            items = await pending
            full = len(items) == batch_size
            if full:
                offset += batch_size
                pending = asyncio.ensure_future(_apage(store, batch_size, offset))
            for index, item in enumerate(items):
                if index % _YIELD_EVERY == _YIELD_EVERY - 1:
                    await asyncio.sleep(0)
                yield item.value
            if not full:
                return
    finally:
        if not pending.done():
            # let an unneeded read finish: cancelling a query midway can spoil its connection
            with contextlib.suppress(Exception):
                await pending


async def _apage(store: BaseStore, batch_size: int, offset: int) -> list[Any]:
    return await store.asearch(NAMESPACE, limit=batch_size, offset=offset)


async def aexport_sessions(
    store: BaseStore, destination: str | Path | IO[str], **filters: Unpack[ExportFilters]
) -> ExportCounts:
    """Async ``export_sessions``."""
    query = ExportQuery.build(**filters)  # a bad filter fails before the file is opened
    sessions = steps = 0
    with _output(destination) as out:
        async with contextlib.aclosing(_awindow(store, query)) as records:
            async for record in records:
                line, step_count = query.encode(record)
                out.write(line)
                sessions += 1
                steps += step_count
        out.flush()
    return ExportCounts(sessions=sessions, steps=steps)
