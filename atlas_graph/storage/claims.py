"""One runner per thread: a claim held while a session runs, refused to a second runner.

A claim covers ``arun`` (and so ``resume``, ``approve`` and the CLI), a fork's state update
and ``prune``'s check-then-delete, so none of them works on a thread another one is changing.
The storage decides how a claim is held:

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a hash of the
  thread id, held on ONE dedicated connection per opened storage (not one per session), whose
  ``application_name`` names the process and host, so a refused runner can say who holds it.
  The server drops the locks when that connection dies (process killed, database restarted).
- SQLite: an ``flock``ed file per thread in ``<database>.claims/`` beside the database, with
  the holder's pid and host in it; the kernel drops it when the process dies.
- memory, or a caller's own checkpointer: a claim within this process.

Every backend also claims within the process first (an advisory lock is re-entrant on its
connection). Thread ids are hashed to 31 bits for PostgreSQL: two threads whose hashes
collide cannot run at the same time (one in two billion pairs).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import socket
import weakref
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from atlas_graph.errors import ThreadBusyError

_PG_CLASS_KEY = 0x41544C41  # "ATLA": the first key of every thread's advisory lock
_HOLDERS: dict[tuple[str, str], str] = {}  # (scope, thread id) -> holder, in this process


def this_process() -> str:
    """``pid N on host H``: how a claim names its holder."""
    return f"pid {os.getpid()} on host {socket.gethostname()}"


def _digest(thread_id: str) -> bytes:
    return hashlib.sha256(thread_id.encode("utf-8", "surrogatepass")).digest()


class ThreadClaims:
    """Claims within this process: the memory backend, and the first layer of the others."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def _atake(self, thread_id: str) -> str | None:
        """Take the storage-wide claim; ``None`` when taken, else who holds it."""
        return None

    async def _agive_back(self, thread_id: str) -> None:
        """Release the storage-wide claim."""

    async def aclose(self) -> None:
        """Release what the claims hold open (a connection)."""

    async def _aenter(self, thread_id: str) -> str | None:
        """Claim in this process, then storage-wide; ``None`` when claimed, else the holder."""
        key = (self.scope, thread_id)
        if key in _HOLDERS:
            return _HOLDERS[key]
        _HOLDERS[key] = f"another run in this process ({this_process()})"
        try:
            holder = await self._atake(thread_id)
        except BaseException:
            del _HOLDERS[key]
            raise
        if holder is not None:
            del _HOLDERS[key]
        return holder

    async def _aexit(self, thread_id: str) -> None:
        try:
            await self._agive_back(thread_id)
        finally:
            del _HOLDERS[(self.scope, thread_id)]

    @contextlib.asynccontextmanager
    async def aclaim(self, thread_id: str) -> AsyncIterator[None]:
        """Hold ``thread_id`` for the block.

        Raises:
            ThreadBusyError: Another runner (here or in another process) holds it.
        """
        holder = await self._aenter(thread_id)
        if holder is not None:
            raise ThreadBusyError(thread_id, holder)
        try:
            yield
        finally:
            await self._aexit(thread_id)

    @contextlib.asynccontextmanager
    async def atry_claim(self, thread_id: str) -> AsyncIterator[bool]:
        """Hold ``thread_id`` for the block if it is free; yields whether it was."""
        if await self._aenter(thread_id) is not None:
            yield False
            return
        try:
            yield True
        finally:
            await self._aexit(thread_id)


class FileClaims(ThreadClaims):
    """Claims of a SQLite storage: ``flock``ed files in ``<database>.claims/``."""

    def __init__(self, database: Path) -> None:
        super().__init__(f"sqlite:{database.resolve()}")
        self.folder = database.resolve().with_name(database.name + ".claims")
        self._held: dict[str, int] = {}

    def _path(self, thread_id: str) -> Path:
        return self.folder / f"{_digest(thread_id).hex()[:40]}.lock"

    async def _atake(self, thread_id: str) -> str | None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(thread_id)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
                os.close(fd)
                return holder or "another process"
            try:  # the file may have been unlinked by its last holder since we opened it
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, this_process().encode(), 0)
            self._held[thread_id] = fd
            return None

    async def _agive_back(self, thread_id: str) -> None:
        fd = self._held.pop(thread_id)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(thread_id))  # still holding it: nobody else has it open
        os.close(fd)


class PostgresClaims(ThreadClaims):
    """Claims of a PostgreSQL storage: advisory locks on one dedicated connection."""

    def __init__(self, url: str) -> None:
        super().__init__(f"postgres:{hashlib.sha256(url.encode()).hexdigest()}")
        self.url = url
        self._connection: Any = None
        self._lock = asyncio.Lock()

    @staticmethod
    def key(thread_id: str) -> int:
        """The second advisory-lock key of a thread (the first is fixed)."""
        return int.from_bytes(_digest(thread_id)[:4], "big") & 0x7FFFFFFF

    async def _aconnection(self) -> Any:
        import psycopg

        if self._connection is None or self._connection.closed:
            name = f"atlas-graph claims {this_process()}"[:63]
            self._connection = await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=10, application_name=name
            )
        return self._connection

    async def _atake(self, thread_id: str) -> str | None:
        key = self.key(thread_id)
        async with self._lock:
            connection = await self._aconnection()
            cursor = await connection.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (_PG_CLASS_KEY, key)
            )
            row = await cursor.fetchone()
            if row is not None and row[0]:
                return None
            cursor = await connection.execute(
                "SELECT a.application_name, a.pid FROM pg_locks l JOIN pg_stat_activity a "
                "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 2",
                (_PG_CLASS_KEY, key),
            )
            holder = await cursor.fetchone()
        if holder and str(holder[0]).startswith("atlas-graph claims "):
            return str(holder[0]).removeprefix("atlas-graph claims ")
        return f"database backend pid {holder[1]}" if holder else "another runner"

    async def _agive_back(self, thread_id: str) -> None:
        async with self._lock:
            if self._connection is None or self._connection.closed:
                return  # the connection died, and the server dropped its locks with it
            with contextlib.suppress(Exception):  # a dead connection holds nothing
                await self._connection.execute(
                    "SELECT pg_advisory_unlock(%s, %s)", (_PG_CLASS_KEY, self.key(thread_id))
                )

    async def aclose(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None


_BY_SAVER: weakref.WeakKeyDictionary[Any, ThreadClaims] = weakref.WeakKeyDictionary()


def register_claims(checkpointer: Any, claims: ThreadClaims) -> None:
    """Make ``claims`` the ones used for threads of ``checkpointer`` (done when opened)."""
    _BY_SAVER[checkpointer] = claims


def claims_for(checkpointer: Any) -> ThreadClaims:
    """The claims of the storage ``checkpointer`` belongs to (this process's, if unknown)."""
    claims = _BY_SAVER.get(checkpointer)
    if claims is None:
        claims = ThreadClaims(f"saver:{id(checkpointer)}")
        with contextlib.suppress(TypeError):  # a saver that cannot be weakly referenced
            _BY_SAVER[checkpointer] = claims
    return claims
