"""The SQLite backend (the default): one file, one process, through aiosqlite.

One connection writes and another reads (WAL: a read never waits for a write and sees only what
was committed). aiosqlite runs a connection's calls one at a time on its own thread; the store
adds a lock, so a transaction's statements run back to back with no other write between them.
SQLite has no row locks: BEGIN IMMEDIATE takes the write lock of the whole file up front.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import aiosqlite

from bot.store.database import Params, Row
from bot.store.errors import StoreError
from bot.store.sql import SQLStore

log = logging.getLogger(__name__)

# Each step brings the schema from version i to i + 1 (PRAGMA user_version). Append new steps;
# never edit a released one, since databases in the field already ran it.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # v1: who the users are and what they chose.
    (
        """CREATE TABLE users (
            user_id INTEGER PRIMARY KEY,
            language TEXT,
            language_hint TEXT,
            first_seen INTEGER NOT NULL,
            last_seen INTEGER NOT NULL
        ) STRICT""",
        """CREATE TABLE paths (
            user_id INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            method_id TEXT NOT NULL,
            chosen_at INTEGER NOT NULL,
            done_steps INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (user_id, method_id)
        ) STRICT""",
        """CREATE TABLE quiz_results (
            user_id INTEGER PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
            answers TEXT NOT NULL,
            ranking TEXT NOT NULL,
            taken_at INTEGER NOT NULL
        ) STRICT""",
    ),
    # v2: proactive messages (tips, broadcasts) need the blocked flag, groups, PTB persistence.
    (
        "ALTER TABLE users ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1))",
        "ALTER TABLE users ADD COLUMN blocked_at INTEGER",
        """CREATE TABLE subscriptions (
            user_id INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            method_id TEXT NOT NULL,
            position INTEGER NOT NULL DEFAULT 0,
            next_due INTEGER NOT NULL,
            weekday INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
            hour INTEGER NOT NULL CHECK (hour BETWEEN 0 AND 23),
            minute INTEGER NOT NULL CHECK (minute BETWEEN 0 AND 59),
            active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
            paused INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
            claimed_until INTEGER,
            subscribed_at INTEGER NOT NULL,
            PRIMARY KEY (user_id, method_id)
        ) STRICT""",
        "CREATE INDEX subscriptions_due ON subscriptions (active, paused, next_due)",
        # Blocking pauses every subscription of the user and unblocking resumes them, whichever
        # statement flips the flag (touch_user's upsert included), so the two never disagree.
        """CREATE TRIGGER users_blocked_pauses AFTER UPDATE OF blocked ON users
        WHEN NEW.blocked IS NOT OLD.blocked
        BEGIN
            UPDATE subscriptions SET paused = NEW.blocked WHERE user_id = NEW.user_id;
        END""",
        """CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            method_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            sent_at INTEGER NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('sent', 'blocked', 'failed'))
        ) STRICT""",
        "CREATE INDEX deliveries_user ON deliveries (user_id, sent_at)",
        "CREATE INDEX deliveries_sent_at ON deliveries (sent_at)",
        """CREATE TABLE broadcasts (
            id INTEGER PRIMARY KEY,
            text TEXT NOT NULL,
            language TEXT,
            created_by INTEGER,
            created_at INTEGER NOT NULL,
            finished_at INTEGER
        ) STRICT""",
        """CREATE TABLE broadcast_targets (
            broadcast_id INTEGER NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sent', 'blocked', 'failed')),
            claimed_until INTEGER,
            PRIMARY KEY (broadcast_id, user_id)
        ) STRICT""",
        """CREATE INDEX broadcast_targets_pending ON broadcast_targets (broadcast_id, user_id)
        WHERE status = 'pending'""",
        "CREATE INDEX broadcast_targets_user ON broadcast_targets (user_id)",
        """CREATE TABLE groups (
            chat_id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            language TEXT,
            added_at INTEGER NOT NULL
        ) STRICT""",
        "CREATE TABLE persist_user_data (user_id INTEGER PRIMARY KEY, data TEXT NOT NULL) STRICT",
        "CREATE TABLE persist_chat_data (chat_id INTEGER PRIMARY KEY, data TEXT NOT NULL) STRICT",
        "CREATE TABLE persist_blobs (name TEXT PRIMARY KEY, data TEXT NOT NULL) STRICT",
        """CREATE TABLE persist_conversations (
            name TEXT NOT NULL,
            key TEXT NOT NULL,
            state TEXT NOT NULL,
            PRIMARY KEY (name, key)
        ) STRICT""",
    ),
    # v3: questions the bot had no answer for, masked and without who asked (see record_unanswered).
    (
        """CREATE TABLE unanswered (
            query TEXT PRIMARY KEY,
            asked INTEGER NOT NULL,
            first_asked INTEGER NOT NULL,
            last_asked INTEGER NOT NULL
        ) STRICT""",
        "CREATE INDEX unanswered_last_asked ON unanswered (last_asked)",
    ),
    # v4: a broadcast remembers the admin's draft it was made from, so confirming twice (a double
    # tap, two taps in flight) queues it once.
    (
        "ALTER TABLE broadcasts ADD COLUMN draft INTEGER",
        """CREATE UNIQUE INDEX broadcasts_draft ON broadcasts (created_by, draft)
        WHERE draft IS NOT NULL""",
    ),
    # v5: several processes may share the database (PostgreSQL; SQLite keeps one): leases name
    # their owner; the dispatcher's leadership and the bot-wide send budget are rows; an admin's
    # broadcast draft and the updates a stop hands back get tables of their own, and PTB's
    # persistence (which kept them) goes.
    (
        "ALTER TABLE subscriptions ADD COLUMN claimed_by TEXT",
        "ALTER TABLE broadcast_targets ADD COLUMN claimed_by TEXT",
        """CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            expires_at INTEGER NOT NULL
        ) STRICT""",
        "CREATE TABLE send_budget (slot INTEGER PRIMARY KEY, used INTEGER NOT NULL) STRICT",
        """CREATE TABLE admin_drafts (
            user_id INTEGER PRIMARY KEY,
            draft INTEGER,
            text TEXT
        ) STRICT""",
        "CREATE TABLE held_updates (id INTEGER PRIMARY KEY, data TEXT NOT NULL) STRICT",
        """INSERT INTO held_updates (data)
        SELECT held.value FROM persist_blobs, json_each(persist_blobs.data) AS held
        WHERE persist_blobs.name = 'held_updates' ORDER BY held.key""",
        """INSERT INTO admin_drafts (user_id, draft, text)
        SELECT user_id, json_extract(data, '$.broadcast.draft'), json_extract(data, '$.broadcast.text')
        FROM persist_user_data WHERE json_extract(data, '$.broadcast.text') IS NOT NULL""",
        "DROP TABLE persist_user_data",
        "DROP TABLE persist_chat_data",
        "DROP TABLE persist_blobs",
        "DROP TABLE persist_conversations",
    ),
    # v6: picture cards Telegram already has (bot.cards): sent again by file_id, no upload.
    (
        """CREATE TABLE card_files (
            card TEXT NOT NULL,
            language TEXT NOT NULL,
            digest TEXT NOT NULL,
            file_id TEXT NOT NULL,
            uploaded_at INTEGER NOT NULL,
            PRIMARY KEY (card, language, digest)
        ) STRICT""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA busy_timeout = 5000",
    "PRAGMA foreign_keys = ON",
)
_READER_PRAGMAS = ("PRAGMA busy_timeout = 5000", "PRAGMA query_only = ON")


async def open_store(database_url: str) -> SQLStore:
    """Open (creating if needed) and migrate the database named by a `sqlite:///` URL.

    A new file is made owner-only before SQLite writes anything to it, since it holds personal data.
    """
    path = _database_path(database_url)
    if path != ":memory:":
        _create_private_file(pathlib.Path(path))
    try:
        writer = await aiosqlite.connect(path, isolation_level=None)  # we issue BEGIN ourselves
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from exc
    reader = None
    try:
        writer.row_factory = sqlite3.Row
        for pragma in _PRAGMAS:
            await writer.execute(pragma)
        database = SQLiteDatabase(writer)
        await migrate(database)
        if path != ":memory:":
            _make_sidecars_private(path)
            reader = await aiosqlite.connect(path, isolation_level=None)
            reader.row_factory = sqlite3.Row
            for pragma in _READER_PRAGMAS:
                await reader.execute(pragma)
            database.reader = reader
    except BaseException as exc:
        if reader is not None:
            await _close_quietly(reader)
        await _close_quietly(writer)
        if isinstance(exc, sqlite3.Error):
            raise StoreError(str(exc)) from exc
        raise
    store = SQLStore(database)
    await store.watch_changes()
    return store


class _Statements:
    """Statements on one aiosqlite connection, their errors as StoreError."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self.connection = connection

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        try:
            return list(await self.connection.execute_fetchall(sql, params or {}))
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc

    async def execute(self, sql: str, params: Params | None = None) -> int:
        try:
            cursor = await self.connection.execute(sql, params or {})
            rowcount = cursor.rowcount
            await cursor.close()
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc
        return rowcount

    async def executemany(self, sql: str, params: Sequence[Params]) -> None:
        if not params:
            return
        try:
            await self.connection.executemany(sql, params)
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc


class SQLiteDatabase:
    """`Database` for SQLite: the writer behind a lock, plus a reader once the file is open."""

    name = "sqlite"
    skip_locked = ""
    lock_row = ""

    def __init__(self, writer: aiosqlite.Connection) -> None:
        self._writer = _Statements(writer)
        # Plain SELECTs go to their own connection (and thread): they never wait for a write,
        # and see committed data only. None for ":memory:", which cannot be shared.
        self.reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def writer(self) -> aiosqlite.Connection:
        return self._writer.connection

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        async with self._lock:
            return await self._writer.fetch(sql, params)

    async def read(self, sql: str, params: Params | None = None) -> list[Row]:
        if self.reader is None:
            return await self.fetch(sql, params)
        try:
            return list(await self.reader.execute_fetchall(sql, params or {}))
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc

    async def execute(self, sql: str, params: Params | None = None) -> int:
        async with self._lock:
            return await self._writer.execute(sql, params)

    async def executemany(self, sql: str, params: Sequence[Params]) -> None:
        async with self._lock:
            await self._writer.executemany(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Statements]:
        """BEGIN IMMEDIATE .. COMMIT. Any error, a full disk included, rolls back and
        propagates: no half-written transaction stays."""
        async with self._lock:
            await self._writer.execute("BEGIN IMMEDIATE")  # the write lock up front
            try:
                yield self._writer
                await self._writer.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back by itself (e.g. SQLITE_FULL)
                if self.writer.in_transaction:
                    await self._writer.execute("ROLLBACK")
                raise

    async def watch(self, changed: Callable[[int | None], None]) -> bool:
        return True  # no other process writes this file

    async def announce(self, user_id: int) -> None:
        pass

    async def close(self) -> None:
        """Close both connections, whatever fails on the way: an open aiosqlite connection is a
        thread that keeps the process alive. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.writer.execute("PRAGMA optimize")
        except (sqlite3.Error, ValueError) as exc:  # ValueError: already closed
            log.warning("PRAGMA optimize failed while closing the database: %s", exc)
        finally:
            try:
                if self.reader is not None:
                    await _close_quietly(self.reader)
            finally:
                await _close_quietly(self.writer)


async def migrate(database: SQLiteDatabase, target: int = SCHEMA_VERSION) -> None:
    """Apply the pending steps up to `target`, each in its own transaction.

    The version is re-read inside each transaction, so two processes starting at once do not run
    the same step twice.
    """
    current = await _user_version(database)
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"database schema is newer ({current}) than this code ({SCHEMA_VERSION}); "
            "upgrade the bot"
        )
    for version in range(current + 1, target + 1):
        async with database.transaction() as tx:
            if (await tx.fetch("PRAGMA user_version"))[0][0] >= version:
                continue
            for statement in MIGRATIONS[version - 1]:
                await tx.execute(statement)
            await tx.execute(f"PRAGMA user_version = {version}")


async def _user_version(database: SQLiteDatabase) -> int:
    rows = await database.fetch("PRAGMA user_version")
    return int(rows[0][0])


def _database_path(database_url: str) -> str:
    """`sqlite:///rel/path`, `sqlite:////abs/path` or `sqlite:///:memory:` to a path for SQLite."""
    prefix = "sqlite:///"
    path = database_url.removeprefix(prefix)
    if path == database_url or not path:
        raise ValueError(f"not a sqlite:/// database URL: {database_url!r}")
    return path


def _create_private_file(path: pathlib.Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)
    os.chmod(path, 0o600)  # the umask may have been looser than we need, never stricter


def _make_sidecars_private(path: str) -> None:
    """SQLite copies the database's mode to -wal/-shm; make sure anyway, they hold data too."""
    for sidecar in (f"{path}-wal", f"{path}-shm"):
        if os.path.exists(sidecar):
            os.chmod(sidecar, 0o600)


async def _close_quietly(db: aiosqlite.Connection) -> None:
    """Close one connection; its thread ends even when SQLite's close reports an error."""
    try:
        await db.close()
    except (sqlite3.Error, ValueError) as exc:
        log.warning("closing the database reported: %s", exc)
