"""What docs/operations.md tells an operator to run works as written: the PostgreSQL backup and
restore (pg_dump, pg_restore) give back every row, and the restored database serves the bot."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bot.fakeapi.postgres import PostgresCluster
from bot.store import open_store

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def row_counts(url: str) -> dict[str, int]:
    connection = await asyncpg.connect(url)
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        return {
            row["tablename"]: await connection.fetchval(
                f'SELECT count(*) FROM "{row["tablename"]}"'
            )
            for row in tables
        }
    finally:
        await connection.close()


def run(binaries: Path, *command: str) -> None:
    result = subprocess.run(
        [str(binaries / command[0]), *command[1:]], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


async def test_pg_dump_and_pg_restore_as_documented_give_back_every_row(
    postgres_cluster: PostgresCluster, postgres_url: str, tmp_path: Path
) -> None:
    store = await open_store(postgres_url)
    try:
        for user_id in (1, 2, 3):
            await store.touch_user(user_id, now=NOW)
            await store.add_path(user_id, "youtube", now=NOW)
        await store.subscribe(2, "writing", now=NOW, weekday=0, hour=15, minute=0, first_due=NOW)
    finally:
        await store.close()
    backup = tmp_path / "ayerpoth.dump"
    # docs/operations.md: pg_dump --format=custom --file=… "$DATABASE_URL"
    run(postgres_cluster.binaries, "pg_dump", "--format=custom", f"--file={backup}", postgres_url)
    restored = postgres_cluster.create_database()
    # docs/operations.md: pg_restore --no-owner --exit-on-error --dbname="$NEW_DATABASE_URL" …
    run(
        postgres_cluster.binaries,
        "pg_restore", "--no-owner", "--exit-on-error", f"--dbname={restored}", str(backup),
    )  # fmt: skip
    counts = await row_counts(postgres_url)
    assert counts["users"] == 3 and counts["paths"] == 3 and counts["subscriptions"] == 1
    assert await row_counts(restored) == counts
    store = await open_store(restored)  # the bot opens the copy as it is: nothing to migrate
    try:
        assert [p.method_id for p in await store.list_paths(2)] == ["youtube"]
        assert [s.method_id for s in await store.list_subscriptions(2)] == ["writing"]
    finally:
        await store.close()
