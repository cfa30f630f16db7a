"""What only the SQLite backend has: the file, pragmas, migrations, query plans, the full disk,
and the memory of recent users (one process per file)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

from bot.store import AddPathResult, SQLStore, StoreError, open_store
from bot.store.sql import SQL_DUE_TIPS, SQL_GET_USER, SQL_PENDING_TARGETS, SQL_TOUCH_USER
from bot.store.sqlite import MIGRATIONS, SCHEMA_VERSION, SQLiteDatabase, migrate

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
LATER = NOW + timedelta(hours=1)
WEEK = timedelta(days=7)
ALICE, BOB, CAROL = 1001, 1002, 1003
OWNER = "worker-1"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLStore]:
    s = await open_store(f"sqlite:///{tmp_path}/data/bot.sqlite3")
    yield s
    await s.close()


def _writer(store: SQLStore) -> aiosqlite.Connection:
    assert isinstance(store.database, SQLiteDatabase)
    return store.database.writer


async def _pragma(store: SQLStore, name: str) -> object:
    rows = await _writer(store).execute_fetchall(f"PRAGMA {name}")
    return next(iter(rows))[0]


async def _subscribe(store: SQLStore, user_id: int, method_id: str, due: datetime = NOW) -> None:
    await store.subscribe(user_id, method_id, now=NOW, weekday=0, hour=9, minute=0, first_due=due)


async def test_open_creates_private_file_with_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "bot.sqlite3"
    store = await open_store(f"sqlite:///{path}")  # sqlite:////abs/path
    try:
        await store.touch_user(ALICE, now=NOW)
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert stat.S_IMODE(os.stat(name).st_mode) == 0o600, name
        assert await _pragma(store, "journal_mode") == "wal"
        assert await _pragma(store, "synchronous") == 1  # NORMAL
        assert await _pragma(store, "busy_timeout") == 5000
        assert await _pragma(store, "foreign_keys") == 1
        assert await _pragma(store, "user_version") == SCHEMA_VERSION
    finally:
        await store.close()


async def test_open_relative_and_memory_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = await open_store("sqlite:///rel/bot.sqlite3")
    await store.close()
    assert (tmp_path / "rel" / "bot.sqlite3").is_file()
    memory = await open_store("sqlite:///:memory:")
    try:
        assert (await memory.touch_user(ALICE, now=NOW)).user_id == ALICE
    finally:
        await memory.close()
    with pytest.raises(ValueError, match="sqlite"):
        await open_store("mysql://x/y")


async def test_reopen_keeps_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/bot.sqlite3"
    store = await open_store(url)
    await store.touch_user(ALICE, now=NOW)
    await store.close()
    store = await open_store(url)
    try:
        assert await store.get_user(ALICE) is not None
    finally:
        await store.close()


# Rows a database at each version can hold, inserted with that version's own schema.
_ROWS_AT_VERSION = {
    1: [
        "INSERT INTO users (user_id, language, language_hint, first_seen, last_seen) "
        f"VALUES ({ALICE}, 'bn', 'bn', 100, 200), ({BOB}, NULL, NULL, 100, 100)",
        f"INSERT INTO paths (user_id, method_id, chosen_at, done_steps) VALUES ({ALICE}, 'youtube', 150, 5)",
        f"""INSERT INTO quiz_results VALUES ({ALICE}, '{{"q1":"a"}}', '["youtube","writing"]', 160)""",
    ],
}
# v2, v3 and v4 added tables and columns with defaults: the same rows are valid there.
_ROWS_AT_VERSION[2] = _ROWS_AT_VERSION[3] = _ROWS_AT_VERSION[4] = _ROWS_AT_VERSION[1]


# v4's PTB persistence: a held update and an admin's draft, which v5 moves to tables of their own.
_ROWS_AT_VERSION[4] = [
    *_ROWS_AT_VERSION[4],
    """INSERT INTO persist_blobs (name, data) VALUES ('held_updates', '["{\\"update_id\\": 1}"]')""",
    f"""INSERT INTO persist_user_data (user_id, data)
    VALUES ({ALICE}, '{{"broadcast": {{"draft": 5, "text": "Hi"}}}}')""",
]


# v6 added a table: v5's rows are valid there as they were.
_ROWS_AT_VERSION[5] = _ROWS_AT_VERSION[1]


@pytest.mark.parametrize("version", range(SCHEMA_VERSION))
async def test_migrating_from_every_earlier_version_keeps_rows(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "old.sqlite3"
    async with aiosqlite.connect(path, isolation_level=None) as db:
        await migrate(SQLiteDatabase(db), target=version)
        for statement in _ROWS_AT_VERSION.get(version, []):
            await db.execute(statement)
        assert next(iter(await db.execute_fetchall("PRAGMA user_version")))[0] == version

    store = await open_store(f"sqlite:///{path}")
    try:
        assert await _pragma(store, "user_version") == SCHEMA_VERSION
        if version >= 1:
            alice = await store.get_user(ALICE)
            assert alice is not None
            assert (alice.language, alice.blocked, alice.first_seen.timestamp()) == (
                "bn",
                False,
                100,
            )
            assert await store.get_user(BOB) is not None
            [path_row] = await store.list_paths(ALICE)
            assert (path_row.method_id, path_row.done_steps) == ("youtube", frozenset({0, 2}))
            quiz = await store.get_quiz_result(ALICE)
            assert quiz is not None and quiz.ranking == ("youtube", "writing")
            assert quiz.answers == {"q1": "a"}
        if version == 4:
            assert await store.take_held_updates() == ['{"update_id": 1}']
            draft = await store.admin_draft(ALICE)
            assert draft is not None and (draft.draft, draft.text) == (5, "Hi")
        # The migrated database works as a new one would.
        await store.touch_user(ALICE, now=NOW)
        await _subscribe(store, ALICE, "youtube")
        claims = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60, owner="w")
        assert len(claims) == 1
    finally:
        await store.close()


async def test_every_migration_step_is_counted() -> None:
    assert len(MIGRATIONS) == SCHEMA_VERSION >= 5


async def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer"):
        await open_store(f"sqlite:///{path}")


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        (SQL_TOUCH_USER, {"user_id": 1, "hint": None, "now": 1}),
        (SQL_GET_USER, {"user_id": 1}),
        (SQL_DUE_TIPS, {"now": 1, "limit": 10}),
        (SQL_PENDING_TARGETS, {"now": 1, "limit": 10}),
    ],
)
async def test_per_update_queries_use_indexes(
    store: SQLStore, sql: str, params: dict[str, object]
) -> None:
    rows = await _writer(store).execute_fetchall(f"EXPLAIN QUERY PLAN {sql}", params)
    details = [row[3] for row in rows]
    # Only a walk through an index is fine (the pending-targets index holds pending rows only).
    scans = [d for d in details if d.startswith("SCAN") and "USING" not in d]
    assert not scans, details


async def test_broadcast_snapshot_of_many_users_is_one_statement(store: SQLStore) -> None:
    await _writer(store).execute(
        """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
        INSERT INTO users (user_id, first_seen, last_seen) SELECT i, 0, 0 FROM n"""
    )
    broadcast_id = await store.create_broadcast("hi", language=None, created_by=1, now=NOW)
    assert (await store.broadcast_report(broadcast_id))["pending"] == 20000


async def test_locked_database_waits_for_the_other_writer(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    store = await open_store(f"sqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO users (user_id, first_seen, last_seen) VALUES (1, 0, 0)")
        asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")
        user = await store.touch_user(ALICE, now=NOW)  # waits (busy_timeout) instead of failing
        assert user.user_id == ALICE
        assert (await store.stats(now=NOW)).users == 2
    finally:
        other.close()
        await store.close()


async def test_full_disk_rolls_back_and_propagates(store: SQLStore) -> None:
    await _writer(store).execute(
        """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
        INSERT INTO users (user_id, first_seen, last_seen) SELECT i, 0, 0 FROM n"""
    )
    pages = await _pragma(store, "page_count")
    await _writer(store).execute(f"PRAGMA max_page_count = {pages}")  # the "disk" is now full

    with pytest.raises(StoreError, match="full"):
        await store.create_broadcast("hi", language=None, created_by=1, now=NOW)

    assert not _writer(store).in_transaction
    await _writer(store).execute("PRAGMA max_page_count = 1000000")
    assert await store.unfinished_broadcasts() == []  # the broadcast row was rolled back too
    assert await store.create_broadcast("hi", language=None, created_by=1, now=NOW) == 1


async def test_touch_skips_the_write_for_a_user_seen_within_a_minute(store: SQLStore) -> None:
    async def last_seen_on_disk() -> int:
        rows = await _writer(store).execute_fetchall(
            "SELECT last_seen FROM users WHERE user_id = 7"
        )
        return int(next(iter(rows))[0])

    first = await store.touch_user(7, now=NOW)
    assert first.first_seen == first.last_seen  # a new user
    again = await store.touch_user(7, now=NOW + timedelta(seconds=30))
    assert again.last_seen == NOW + timedelta(seconds=30) and again.first_seen == NOW
    assert await last_seen_on_disk() == int(NOW.timestamp())  # answered from memory
    await store.touch_user(7, now=NOW + timedelta(seconds=61))
    assert await last_seen_on_disk() == int(NOW.timestamp()) + 61


async def test_a_recent_users_row_is_read_from_memory(store: SQLStore) -> None:
    await store.touch_user(7, now=NOW)
    # A change behind the store's back is not seen: the read came from memory.
    await _writer(store).execute("UPDATE users SET language = 'en' WHERE user_id = 7")
    assert (await store.get_user(7)).language is None  # type: ignore[union-attr]
    await store.set_language(7, "bn", now=NOW)  # a write through the store is seen at once
    assert (await store.get_user(7)).language == "bn"  # type: ignore[union-attr]
    assert await store.get_user(8) is None


async def _paths_on_disk(store: SQLStore, user_id: int) -> list[str]:
    rows = await _writer(store).execute_fetchall(
        "SELECT method_id FROM paths WHERE user_id = ? ORDER BY method_id", (user_id,)
    )
    return [r[0] for r in rows]


async def test_paths_are_remembered_and_every_paths_write_forgets_them(
    store: SQLStore,
) -> None:
    await store.touch_user(7, now=NOW)
    assert await store.list_paths(7) == []
    # A change behind the store's back is not seen: the second read came from memory.
    await _writer(store).execute(
        "INSERT INTO paths (user_id, method_id, chosen_at) VALUES (7, 'x', 0)"
    )
    assert await store.list_paths(7) == []
    await _writer(store).execute("DELETE FROM paths WHERE user_id = 7")

    assert await store.add_path(7, "youtube", now=NOW) is AddPathResult.ADDED
    assert [p.method_id for p in await store.list_paths(7)] == ["youtube"]
    assert await store.set_step(7, "youtube", 2, done=True) == frozenset({2})
    assert [p.done_steps for p in await store.list_paths(7)] == [frozenset({2})]
    assert await store.remove_path(7, "youtube")
    assert await store.list_paths(7) == []
    await store.add_path(7, "stock", now=NOW)
    await store.list_paths(7)
    await store.forget_user(7)
    assert await store.list_paths(7) == [] == await _paths_on_disk(store, 7)


async def test_a_read_that_raced_with_a_write_is_not_remembered(store: SQLStore) -> None:
    """Reads run on their own connection: one may finish after a write that began later."""
    await store.touch_user(7, now=NOW)
    database = store.database
    assert isinstance(database, SQLiteDatabase) and database.reader is not None
    reading = asyncio.Event()
    release = asyncio.Event()
    read_paths = database.read

    async def slow_read(sql: str, params: object = ()) -> list[object]:
        rows = await read_paths(sql, params)  # type: ignore[arg-type]
        reading.set()
        await release.wait()  # the read's old answer arrives only after the write
        return rows

    database.read = slow_read  # type: ignore[method-assign]
    stale = asyncio.create_task(store.list_paths(7))
    await reading.wait()
    database.read = read_paths  # type: ignore[method-assign]
    await store.add_path(7, "youtube", now=NOW)
    release.set()
    assert await stale == []  # what it read before the write
    assert [p.method_id for p in await store.list_paths(7)] == ["youtube"]  # not kept


async def test_reads_see_every_committed_write_at_once(store: SQLStore) -> None:
    database = store.database
    assert isinstance(database, SQLiteDatabase)
    assert database.reader is not None  # a file database reads on its own connection
    await store.touch_user(7, now=NOW)
    for i in range(20):
        await store.subscribe(7, f"m{i}", now=NOW, weekday=0, hour=9, minute=0, first_due=NOW)
        assert len(await store.list_subscriptions(7)) == i + 1
    await store.set_language(7, "en", now=NOW)
    assert (await store.get_user(7)).language == "en"  # type: ignore[union-attr]
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await database.reader.execute("DELETE FROM users")
