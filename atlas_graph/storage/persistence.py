"""Open the checkpointer and store that ``run()``, the CLI and hosts use.

Three backends, all built from LangGraph's own savers and stores (no hand-written schema):

- ``memory``: ``InMemorySaver`` + ``InMemoryStore``; nothing outlives the process.
- ``sqlite`` (the embedded default): ``SqliteSaver`` + ``SqliteStore`` in one file under
  ``.atlas_graph/``.
- ``postgres``: ``PostgresSaver`` + ``PostgresStore`` sharing ONE psycopg pool
  (``autocommit=True``, ``prepare_threshold=0``, dict rows, as both classes require), with
  their ``setup()`` run once when the pool opens, under an advisory lock so that workers
  starting together do not race on the migrations.

Open the persistence once per process and hand it to every run (``arun(...,
persistence=...)``): the pool is then shared by all concurrent sessions. Database URLs carry
passwords, so every message that could show one goes through ``redact_dsn``.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
import re
import sqlite3
import time
import warnings
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    AsyncExitStack,
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from atlas_graph.config import StorageConfig
from atlas_graph.deprecation import renamed
from atlas_graph.errors import AtlasError, StorageError, StorageFaultError
from atlas_graph.extras import require_extra
from atlas_graph.storage.claims import FileClaims, PostgresClaims, register_claims

if TYPE_CHECKING:
    import psycopg

DATABASE_URL_ENV = "ATLAS_GRAPH_DATABASE_URL"
Backend = Literal["memory", "sqlite", "postgres"]

# An arbitrary constant: the advisory lock that serialises schema setup across processes.
_SETUP_LOCK_KEY = 0x41544C4153  # "ATLAS"
_TRY_LOCK = "SELECT pg_try_advisory_lock(%s)"
_SETUP_POLL_SECONDS = 0.05
_CONNECT_TIMEOUT_SECONDS = 10

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@\s]*)@")
_KEYWORD_PASSWORD = re.compile(
    r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|\S+)", re.I
)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&]password=)(?P<secret>[^&\s]+)", re.I)


def redact_dsn(text: str) -> str:
    """Replace passwords in URLs (``user:pw@``), ``password=...`` pairs and query strings."""
    text = _URL_PASSWORD.sub(r"\g<head>***@", text)
    text = _KEYWORD_PASSWORD.sub(r"\g<head>***", text)
    return _QUERY_PASSWORD.sub(r"\g<head>***", text)


@dataclass(frozen=True)
class Persistence:
    """A checkpointer and a store opened together for one backend.

    ``store`` is ``None`` only when a caller brings a checkpointer without a store; nodes
    then skip the session ledger.
    """

    checkpointer: BaseCheckpointSaver[Any]
    store: BaseStore | None
    backend: Backend


def storage_fault(error: BaseException) -> str | None:
    """One redacted line describing ``error`` if it (or its cause) is a storage fault.

    Storage faults are what a database or a file does under it: psycopg's operational and
    interface errors (a lost connection, a pool timeout, a server shutting down), SQLite's
    operational and database errors (locked, read-only, not a database), and the file system
    refusing to write (disk full, read-only, I/O error). ``None`` for anything else.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_fault(current):
            detail = " ".join(str(current).split()) or type(current).__name__
            return redact_dsn(f"{type(current).__name__}: {detail}")[:300]
        current = current.__cause__ or current.__context__
    return None


_FAULT_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EIO, errno.EDQUOT, errno.EACCES})


def _is_fault(error: BaseException) -> bool:
    if isinstance(error, sqlite3.OperationalError | sqlite3.DatabaseError):
        return True
    if isinstance(error, OSError) and error.errno in _FAULT_ERRNOS:
        return True
    if type(error).__module__.split(".")[0] in ("psycopg", "psycopg_pool"):
        import psycopg

        return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
    return False


@asynccontextmanager
async def _faults_as_errors(what: str) -> AsyncIterator[None]:
    """Turn a storage fault while opening ``what`` into a one-line ``StorageError``."""
    try:
        yield
    except StorageError:
        raise
    except Exception as error:
        detail = storage_fault(error)
        if detail is None:
            raise
        raise StorageError(f"cannot open {what}: {detail}") from None


@contextmanager
def _sqlite_setup_lock(path: Path) -> Iterator[None]:
    """Serialise first use of one SQLite file across processes: its setup creates tables,
    and processes starting together would race on those migrations."""
    with open(path.with_name(path.name + ".setup-lock"), "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def resolve_backend(
    storage: StorageConfig, environ: Mapping[str, str] | None = None
) -> tuple[Backend, str | None]:
    """The backend and database URL to use.

    ``ATLAS_GRAPH_DATABASE_URL`` supplies the URL when the config has none, and switches the
    default backend to PostgreSQL; an explicit ``backend: sqlite`` or ``memory`` wins.
    """
    env = os.environ if environ is None else environ
    url = storage.database_url or env.get(DATABASE_URL_ENV) or None
    backend: Backend = storage.backend
    if url and "backend" not in storage.model_fields_set:
        backend = "postgres"
    if backend == "postgres" and not url:
        raise StorageError(
            f"storage.backend is postgres but no database_url is set (config or {DATABASE_URL_ENV})"
        )
    is_url = url and url.startswith(("postgresql://", "postgres://"))
    if backend == "postgres" and url and not is_url and "=" not in url:  # or key=value DSN
        raise StorageError(
            f"storage.database_url must be a postgresql:// URL, got '{redact_dsn(url)}'",
            url=redact_dsn(url),
        )
    return backend, url


def _sqlite_path(storage: StorageConfig) -> Path:
    """The SQLite file, its folder created; refused when it is a folder or cannot be made."""
    path = Path(storage.path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StorageError(
            f"cannot create the folder of storage.path {path}: {error.strerror}"
        ) from None
    if path.is_dir():
        raise StorageError(f"storage.path {path} is a folder, not a SQLite file")
    return path


def sqlite_files(storage: StorageConfig) -> frozenset[Path]:
    """The files of the SQLite storage ``storage`` names (none for other backends)."""
    backend, _url = resolve_backend(storage)
    if backend != "sqlite":
        return frozenset()
    path = Path(storage.path).resolve()
    suffixes = ("", "-wal", "-shm", "-journal")
    return frozenset(path.with_name(path.name + suffix) for suffix in suffixes)


def _connection_kwargs(storage: StorageConfig) -> dict[str, Any]:
    from psycopg.rows import dict_row

    kwargs: dict[str, Any] = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    if storage.statement_timeout_seconds is not None:
        milliseconds = max(1, round(storage.statement_timeout_seconds * 1000))
        kwargs["options"] = f"-c statement_timeout={milliseconds}"
    return kwargs


def _loads_json(data: bytes | str) -> Any:
    """JSON columns (ledger records, checkpoints) decoded by orjson, several times faster than
    ``json``, which remains for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _configure(connection: Any) -> None:
    from psycopg.types.json import set_json_loads

    set_json_loads(_loads_json, connection)


async def _aconfigure(connection: Any) -> None:
    _configure(connection)


def _connect_error(url: str, error: BaseException) -> StorageError:
    detail = " ".join(str(error).split()) or type(error).__name__
    return StorageError(
        f"cannot connect to PostgreSQL at {redact_dsn(url)}: {redact_dsn(detail)}",
        url=redact_dsn(url),
    )


@asynccontextmanager
async def aopen_persistence(
    storage: StorageConfig, *, environ: Mapping[str, str] | None = None
) -> AsyncIterator[Persistence]:
    """Open what ``storage`` names (async savers and stores); closes them on exit.

    A storage fault inside the block (a lost connection, a pool timeout, a locked or full
    SQLite file) leaves it as a one-line ``StorageFaultError``.

    Raises:
        StorageError: The database cannot be reached or the storage config is unusable.
        MissingExtraError: PostgreSQL storage without the ``postgres`` extra installed.
        StorageFaultError: The storage failed while in use (from inside the block).
    """
    async with _aopen(storage, environ) as opened:
        try:
            yield opened
        except AtlasError:
            raise
        except Exception as error:
            detail = storage_fault(error)
            if detail is None:
                raise
            raise StorageFaultError(f"storage failed: {detail}") from error


@asynccontextmanager
async def _aopen(
    storage: StorageConfig, environ: Mapping[str, str] | None
) -> AsyncIterator[Persistence]:
    backend, url = resolve_backend(storage, environ)
    if backend == "memory":
        yield Persistence(InMemorySaver(), InMemoryStore(), backend)
        return
    if backend == "sqlite":
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
        from langgraph.store.sqlite.aio import AsyncSqliteStore

        # One connection and one lock for saver and store: with two connections, concurrent
        # sessions make SQLite refuse a write ("database is locked") whenever one connection
        # upgrades a read transaction while the other writes.
        path = _sqlite_path(storage)
        async with AsyncExitStack() as stack:
            async with _faults_as_errors(f"the SQLite storage at {path}"):
                conn = await stack.enter_async_context(
                    aiosqlite.connect(str(path), isolation_level=None)
                )
                saver, store = AsyncSqliteSaver(conn), AsyncSqliteStore(conn)
                store.lock = saver.lock
                register_claims(saver, FileClaims(path))
                if storage.apply_schema_on_connect:
                    with _sqlite_setup_lock(path):
                        await saver.setup()
                        await store.setup()
                else:  # still read the file once: a corrupted one fails here, not later
                    await (await conn.execute("SELECT count(*) FROM sqlite_master")).fetchone()
            yield Persistence(saver, store, backend)
        return
    assert url is not None
    require_extra("postgres", "PostgreSQL storage")
    async with _postgres_pool(storage, url) as pool:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from langgraph.store.postgres.aio import AsyncPostgresStore

        pg_saver, pg_store = AsyncPostgresSaver(pool), AsyncPostgresStore(pool)
        # The saver guards its connection with one lock even over a pool, so sessions that
        # share a Persistence took turns at the database: 100 concurrent paired sessions ran
        # on 3 connections. The pool never hands one connection to two callers, so each call
        # runs on its own connection unguarded, as the store already does over a pool.
        pg_saver.lock = PoolTurns()  # type: ignore[assignment]
        if storage.apply_schema_on_connect:
            async with _faults_as_errors(f"PostgreSQL at {redact_dsn(url)}"):
                await _setup_postgres(url, pg_saver, pg_store)
        claims = PostgresClaims(url)  # its connection opens with the first claim
        register_claims(pg_saver, claims)
        try:
            yield Persistence(pg_saver, pg_store, backend)
        finally:
            await claims.aclose()


class PoolTurns:
    """The lock of a saver that draws from a pool: the pool's own checkout is the only turn.

    ``AsyncPostgresSaver`` enters ``self.lock`` around every statement, which serialises a
    shared saver; over a pool each statement already has a connection to itself.
    """

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_exc: object) -> None:
        return None


@asynccontextmanager
async def _postgres_pool(storage: StorageConfig, url: str) -> AsyncIterator[Any]:
    import psycopg
    from psycopg_pool import AsyncConnectionPool

    try:  # one direct connection first: its error says why (refused, auth, no database)
        probe = await psycopg.AsyncConnection.connect(
            url, connect_timeout=_CONNECT_TIMEOUT_SECONDS, autocommit=True
        )
    except (psycopg.Error, ValueError) as error:
        raise _connect_error(url, error) from None
    await probe.close()
    pool = AsyncConnectionPool(
        url, min_size=storage.min_size, max_size=storage.max_size,
        kwargs=_connection_kwargs(storage), open=False, name="atlas-graph",
        configure=_aconfigure, timeout=storage.pool_timeout_seconds,
    )  # fmt: skip
    await pool.open(wait=storage.min_size > 0, timeout=_CONNECT_TIMEOUT_SECONDS)
    try:
        yield pool
    finally:
        await pool.close()


async def _setup_postgres(url: str, saver: Any, store: Any) -> None:
    """Run both migrations once, serialised across processes by an advisory lock."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(
        url, connect_timeout=_CONNECT_TIMEOUT_SECONDS, autocommit=True
    ) as lock:
        # Poll instead of waiting inside pg_advisory_lock: a waiting statement holds a
        # snapshot, and the saver's CREATE INDEX CONCURRENTLY would wait for it forever.
        while not await _try_lock(lock):
            await asyncio.sleep(_SETUP_POLL_SECONDS)
        try:
            await saver.setup()
            await store.setup()
        finally:
            await lock.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK_KEY,))


async def _try_lock(connection: Any) -> bool:
    row = await (await connection.execute(_TRY_LOCK, (_SETUP_LOCK_KEY,))).fetchone()
    return bool(row[0])


def open_persistence(
    storage: StorageConfig, *, environ: Mapping[str, str] | None = None
) -> AbstractContextManager[Persistence]:
    """The synchronous form of ``aopen_persistence`` for ``graph.invoke``/``stream`` hosts.

    A context manager (``with open_persistence(storage) as opened:``). Until the next release,
    ``async with open_persistence(...)``, this name's meaning before the async form became
    ``aopen_persistence``, still opens the async savers, with a ``DeprecationWarning``.

    Raises:
        StorageError: The database cannot be reached or the storage config is unusable.
        MissingExtraError: PostgreSQL storage without the ``postgres`` extra installed.
    """
    return _Opening(storage, environ)


class _Opening(AbstractContextManager[Persistence]):
    """What ``open_persistence`` returns: sync savers with ``with``, async ones with the old
    ``async with``."""

    def __init__(self, storage: StorageConfig, environ: Mapping[str, str] | None) -> None:
        self._storage = storage
        self._environ = environ
        self._opened: AbstractContextManager[Persistence] | None = None
        self._aopened: AbstractAsyncContextManager[Persistence] | None = None

    def __enter__(self) -> Persistence:
        self._opened = _open_sync(self._storage, environ=self._environ)
        return self._opened.__enter__()

    def __exit__(self, *exc_info: Any) -> bool | None:
        assert self._opened is not None
        return self._opened.__exit__(*exc_info)

    async def __aenter__(self) -> Persistence:
        warnings.warn(
            "async with open_persistence(...) is deprecated and will be removed in the next "
            "release; use async with atlas_graph.storage.persistence.aopen_persistence(...)",
            DeprecationWarning,
            stacklevel=2,
        )
        self._aopened = aopen_persistence(self._storage, environ=self._environ)
        return await self._aopened.__aenter__()

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        assert self._aopened is not None
        return await self._aopened.__aexit__(*exc_info)


@contextmanager
def _open_sync(
    storage: StorageConfig, *, environ: Mapping[str, str] | None = None
) -> Iterator[Persistence]:
    backend, url = resolve_backend(storage, environ)
    if backend == "memory":
        yield Persistence(InMemorySaver(), InMemoryStore(), backend)
        return
    if backend == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver
        from langgraph.store.sqlite import SqliteStore

        path = _sqlite_path(storage)
        try:
            saver_conn = sqlite3.connect(str(path), check_same_thread=False)
            store_conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        except sqlite3.Error as error:
            raise StorageError(f"cannot open the SQLite storage at {path}: {error}") from None
        try:
            saver, store = SqliteSaver(saver_conn), SqliteStore(store_conn)
            if storage.apply_schema_on_connect:
                try:
                    with _sqlite_setup_lock(path):
                        saver.setup()
                        store.setup()
                except sqlite3.Error as error:
                    raise StorageError(
                        f"cannot open the SQLite storage at {path}: {error}"
                    ) from None
            yield Persistence(saver, store, backend)
        finally:
            saver_conn.close()
            store_conn.close()
        return
    assert url is not None
    require_extra("postgres", "PostgreSQL storage")
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.store.postgres import PostgresStore
    from psycopg_pool import ConnectionPool

    try:
        psycopg.connect(url, connect_timeout=_CONNECT_TIMEOUT_SECONDS).close()
    except (psycopg.Error, ValueError) as error:
        raise _connect_error(url, error) from None
    with ConnectionPool(
        url, min_size=storage.min_size, max_size=storage.max_size,
        kwargs=_connection_kwargs(storage), open=True, name="atlas-graph",
        configure=_configure, timeout=storage.pool_timeout_seconds,
    ) as pool:  # fmt: skip
        if storage.min_size > 0:  # as the async pool: ready before the first session
            pool.wait(timeout=_CONNECT_TIMEOUT_SECONDS)
        pg_saver, pg_store = PostgresSaver(pool), PostgresStore(pool)
        if storage.apply_schema_on_connect:
            _setup_postgres_sync(url, pg_saver, pg_store)
        yield Persistence(pg_saver, pg_store, backend)


def _try_lock_sync(connection: psycopg.Connection[Any]) -> bool:
    row = connection.execute(_TRY_LOCK, (_SETUP_LOCK_KEY,)).fetchone()
    return row is not None and bool(row[0])  # the lock query always returns one row


def _setup_postgres_sync(url: str, saver: Any, store: Any) -> None:
    """``_setup_postgres`` for the sync savers: same lock, same polling."""
    import psycopg

    with psycopg.connect(url, connect_timeout=_CONNECT_TIMEOUT_SECONDS, autocommit=True) as lock:
        while not _try_lock_sync(lock):
            time.sleep(_SETUP_POLL_SECONDS)
        try:
            saver.setup()
            store.setup()
        finally:
            lock.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK_KEY,))


# Renamed when async functions took the ``a`` prefix; removed in the next release.
open_persistence_sync = renamed(open_persistence, "open_persistence_sync")
