"""A throwaway PostgreSQL database for the tests that need the real server.

``ATLAS_GRAPH_TEST_DATABASE_URL`` names a server (default: the local one, user postgres). One
database ``atlas_graph_test_<random>`` is created per test session and dropped afterwards.
Without a server the tests skip, unless ``ATLAS_GRAPH_REQUIRE_POSTGRES=1`` (CI) makes that a
failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    """The admin URL of the test server."""
    return os.environ.get("ATLAS_GRAPH_TEST_DATABASE_URL", DEFAULT_SERVER_URL)


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def postgres_required() -> bool:
    """Whether a missing server is a failure rather than a skip."""
    return os.environ.get("ATLAS_GRAPH_REQUIRE_POSTGRES", "") not in ("", "0", "false")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh database for this test session; dropped at the end."""
    import psycopg

    admin = server_url()
    try:
        connection = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        message = f"PostgreSQL not reachable at ATLAS_GRAPH_TEST_DATABASE_URL: {error}"
        if postgres_required():
            pytest.fail(f"{message} (ATLAS_GRAPH_REQUIRE_POSTGRES=1)", pytrace=False)
        pytest.skip(message)
    name = f"atlas_graph_test_{uuid.uuid4().hex[:12]}"
    with connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(admin, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
