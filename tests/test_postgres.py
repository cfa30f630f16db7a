"""The throw-away PostgreSQL server (tests/postgres.py): each test gets its own empty database."""

from __future__ import annotations

import asyncpg


async def _tables(url: str) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        return [row["table_name"] for row in rows]
    finally:
        await connection.close()


async def test_a_test_database_is_empty_and_writable(postgres_url: str) -> None:
    assert postgres_url.startswith("postgresql://") and "?host=/" in postgres_url
    assert await _tables(postgres_url) == []
    connection = await asyncpg.connect(postgres_url)
    try:
        await connection.execute("CREATE TABLE left_behind (id int)")
    finally:
        await connection.close()
    assert await _tables(postgres_url) == ["left_behind"]


async def test_the_next_test_gets_a_database_of_its_own(postgres_url: str) -> None:
    assert await _tables(postgres_url) == []  # the table the test before made is not here
