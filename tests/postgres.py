"""The tests' throw-away PostgreSQL: one server per test session, started on first use and
stopped (its files removed) at the end of the session whatever the tests did; a fresh database
per test that asks for `postgres_url`. The server itself: bot/fakeapi/postgres.py.

A test without the server's binaries fails, naming the package to install: it never skips, so a
missing install step shows in CI instead of hiding a whole backend.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.fakeapi.postgres import PostgresCluster, PostgresMissing


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    try:
        cluster = PostgresCluster.start()
    except PostgresMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    with cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A fresh, empty database for this test: `postgresql://…?host=/socket/folder`."""
    return postgres_cluster.create_database()
