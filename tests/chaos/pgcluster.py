"""A throwaway PostgreSQL cluster on its own port, for tests that stop the database.

Never the shared server: ``initdb`` makes a fresh cluster in a temporary folder, ``pg_ctl``
starts and stops it on a free port. As root, the server runs as the ``postgres`` user
(PostgreSQL refuses to run as root). Tests skip when the binaries are missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(os.environ.get("ATLAS_GRAPH_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """One throwaway cluster: ``url``, and ``stop()``/``start()`` to cut and restore it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *argv: str) -> None:
        subprocess.run([*self._as, *argv], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run(str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--no-sync")  # fmt: skip

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=60")  # fmt: skip
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-t", "30",
                  "-l", str(self.root / "log"), "start")  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")


def throwaway_cluster() -> Iterator[Cluster]:
    """Start a cluster, yield it, stop and delete it whatever happened."""
    if not (BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL binaries in {BIN} (set ATLAS_GRAPH_PG_BIN)")
    root = Path(tempfile.mkdtemp(prefix="atlas-chaos-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    cluster = Cluster(root)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            cluster.stop()  # unless already stopped
        shutil.rmtree(root, ignore_errors=True)
