"""The PostgreSQL backend, on asyncpg: for several bot processes sharing one database.

Statements come from `bot.store.sql` with `:name` parameters, numbered here as PostgreSQL wants
(`$1`). Every process keeps a small pool; a transaction holds one connection from BEGIN to
COMMIT. Claims of due messages lock their rows and skip rows another process has locked, so two
dispatchers never claim the same tip. No user data is kept in memory between calls (several
processes write) unless this process hears of every change: each write to a user's row or paths
is announced (NOTIFY) and every process forgets that user when it hears it (LISTEN, on a
connection of its own). If that connection drops, the process stops remembering anyone.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from bot.store.database import Params, Row, positional
from bot.store.errors import StoreError
from bot.store.sql import SQLStore

log = logging.getLogger(__name__)

POOL_SIZE = 10
"""Connections per process at most: a tap needs one for a few milliseconds."""

# Each step brings the schema from version i to i + 1 (the schema_version table). Append new
# steps; never edit a released one. The first is the whole of SQLite's v1..v5 at once.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE users (
            user_id BIGINT PRIMARY KEY,
            language TEXT,
            language_hint TEXT,
            first_seen BIGINT NOT NULL,
            last_seen BIGINT NOT NULL,
            blocked BOOLEAN NOT NULL DEFAULT false,
            blocked_at BIGINT
        )""",
        """CREATE TABLE paths (
            user_id BIGINT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            method_id TEXT NOT NULL,
            chosen_at BIGINT NOT NULL,
            done_steps BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (user_id, method_id)
        )""",
        """CREATE TABLE quiz_results (
            user_id BIGINT PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
            answers TEXT NOT NULL,
            ranking TEXT NOT NULL,
            taken_at BIGINT NOT NULL
        )""",
        """CREATE TABLE subscriptions (
            user_id BIGINT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            method_id TEXT NOT NULL,
            position INTEGER NOT NULL DEFAULT 0,
            next_due BIGINT NOT NULL,
            weekday INTEGER NOT NULL CHECK (weekday BETWEEN 0 AND 6),
            hour INTEGER NOT NULL CHECK (hour BETWEEN 0 AND 23),
            minute INTEGER NOT NULL CHECK (minute BETWEEN 0 AND 59),
            active BOOLEAN NOT NULL DEFAULT true,
            paused BOOLEAN NOT NULL DEFAULT false,
            claimed_until BIGINT,
            claimed_by TEXT,
            subscribed_at BIGINT NOT NULL,
            PRIMARY KEY (user_id, method_id)
        )""",
        "CREATE INDEX subscriptions_due ON subscriptions (next_due) WHERE active AND NOT paused",
        # Blocking pauses every subscription of the user and unblocking resumes them, whichever
        # statement flips the flag (touch_user's upsert included), so the two never disagree.
        """CREATE FUNCTION users_blocked_pauses() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE subscriptions SET paused = NEW.blocked WHERE user_id = NEW.user_id;
            RETURN NULL;
        END $$""",
        """CREATE TRIGGER users_blocked_pauses AFTER UPDATE OF blocked ON users
        FOR EACH ROW WHEN (NEW.blocked IS DISTINCT FROM OLD.blocked)
        EXECUTE FUNCTION users_blocked_pauses()""",
        """CREATE TABLE deliveries (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            user_id BIGINT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            method_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            sent_at BIGINT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('sent', 'blocked', 'failed'))
        )""",
        "CREATE INDEX deliveries_user ON deliveries (user_id, sent_at)",
        "CREATE INDEX deliveries_sent_at ON deliveries (sent_at)",
        """CREATE TABLE broadcasts (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            text TEXT NOT NULL,
            language TEXT,
            created_by BIGINT,
            created_at BIGINT NOT NULL,
            finished_at BIGINT,
            draft BIGINT
        )""",
        """CREATE UNIQUE INDEX broadcasts_draft ON broadcasts (created_by, draft)
        WHERE draft IS NOT NULL""",
        """CREATE TABLE broadcast_targets (
            broadcast_id BIGINT NOT NULL REFERENCES broadcasts (id) ON DELETE CASCADE,
            user_id BIGINT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sent', 'blocked', 'failed')),
            claimed_until BIGINT,
            claimed_by TEXT,
            PRIMARY KEY (broadcast_id, user_id)
        )""",
        """CREATE INDEX broadcast_targets_pending ON broadcast_targets (broadcast_id, user_id)
        WHERE status = 'pending'""",
        "CREATE INDEX broadcast_targets_user ON broadcast_targets (user_id)",
        """CREATE TABLE groups (
            chat_id BIGINT PRIMARY KEY,
            title TEXT NOT NULL,
            language TEXT,
            added_at BIGINT NOT NULL
        )""",
        """CREATE TABLE unanswered (
            query TEXT PRIMARY KEY,
            asked INTEGER NOT NULL,
            first_asked BIGINT NOT NULL,
            last_asked BIGINT NOT NULL
        )""",
        "CREATE INDEX unanswered_last_asked ON unanswered (last_asked)",
        """CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            expires_at BIGINT NOT NULL
        )""",
        "CREATE TABLE send_budget (slot BIGINT PRIMARY KEY, used INTEGER NOT NULL)",
        "CREATE TABLE admin_drafts (user_id BIGINT PRIMARY KEY, draft BIGINT, text TEXT)",
        """CREATE TABLE held_updates (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            data TEXT NOT NULL
        )""",
    ),
    # v2: picture cards Telegram already has (bot.cards): sent again by file_id, no upload.
    (
        """CREATE TABLE card_files (
            card TEXT NOT NULL,
            language TEXT NOT NULL,
            digest TEXT NOT NULL,
            file_id TEXT NOT NULL,
            uploaded_at BIGINT NOT NULL,
            PRIMARY KEY (card, language, digest)
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
_MIGRATION_LOCK = 0x61796572  # "ayer": the advisory lock that makes concurrent starts take turns


async def open_store(database_url: str, *, pool_size: int = POOL_SIZE) -> SQLStore:
    """Connect to the `postgresql://` URL and migrate (one process at a time does it)."""
    try:
        pool = await asyncpg.create_pool(
            database_url, min_size=1, max_size=pool_size, command_timeout=30
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
    database = PostgresDatabase(pool, database_url)
    try:
        await migrate(database)
    except BaseException:
        await database.close()
        raise
    store = SQLStore(database)
    await store.watch_changes()
    return store


CHANNEL = "ayerpoth_users"
_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class _Statements:
    """Statements on one connection (or the pool), their errors as StoreError."""

    def __init__(self, connection: asyncpg.Connection | asyncpg.Pool) -> None:
        self._connection = connection

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        text, args = _bind(sql, params)
        try:
            return list(await self._connection.fetch(text, *args))
        except _ERRORS as exc:
            raise StoreError(str(exc)) from exc

    async def execute(self, sql: str, params: Params | None = None) -> int:
        text, args = _bind(sql, params)
        try:
            status = await self._connection.execute(text, *args)
        except _ERRORS as exc:
            raise StoreError(str(exc)) from exc
        count = status.rsplit(" ", 1)[-1]  # "UPDATE 3", "INSERT 0 1", "CREATE TABLE"
        return int(count) if count.isdigit() else 0

    async def executemany(self, sql: str, params: Sequence[Params]) -> None:
        if not params:
            return
        text, names = positional(sql)
        try:
            await self._connection.executemany(text, [[p[n] for n in names] for p in params])
        except _ERRORS as exc:
            raise StoreError(str(exc)) from exc


class PostgresDatabase(_Statements):
    """`Database` for PostgreSQL: single statements on the pool, transactions on one connection."""

    name = "postgresql"
    skip_locked = " FOR UPDATE OF {table} SKIP LOCKED"
    lock_row = " FOR UPDATE"

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        super().__init__(pool)
        self.pool = pool
        self._url = url
        self._listener: asyncpg.Connection | None = None

    async def watch(self, changed: Callable[[int | None], None]) -> bool:
        def heard(_connection: object, _pid: int, _channel: str, payload: str) -> None:
            changed(int(payload))

        def lost(_connection: object) -> None:
            if self._listener is not None:  # not our own close
                log.warning("stopped hearing other processes' changes: users are no longer kept")
                changed(None)

        try:
            self._listener = await asyncpg.connect(self._url)
            await self._listener.add_listener(CHANNEL, heard)
        except _ERRORS as exc:
            log.warning("cannot hear other processes' changes (%s): users are not kept", exc)
            return False
        self._listener.add_termination_listener(lost)
        return True

    async def announce(self, user_id: int) -> None:
        await self.execute(
            "SELECT pg_notify(:channel, :user_id)", {"channel": CHANNEL, "user_id": str(user_id)}
        )

    async def read(self, sql: str, params: Params | None = None) -> list[Row]:
        return await self.fetch(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Statements]:
        try:
            async with self.pool.acquire() as connection, connection.transaction():
                yield _Statements(connection)
        except _ERRORS as exc:  # BEGIN, COMMIT or getting a connection failed
            raise StoreError(str(exc)) from exc

    async def close(self) -> None:
        """Close the pool; connections still busy get a few seconds, then are cut."""
        try:
            listener, self._listener = self._listener, None
            if listener is not None:
                await listener.close()
            await self.pool.close()
        except _ERRORS as exc:
            log.warning("closing the PostgreSQL pool reported: %s", exc)


async def migrate(database: PostgresDatabase, target: int = SCHEMA_VERSION) -> None:
    """Apply the pending steps up to `target`, all under an advisory lock."""
    async with database.transaction() as tx:
        await tx.execute(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        await tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        rows = await tx.fetch("SELECT version FROM schema_version")
        current = int(rows[0][0]) if rows else 0
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"database schema is newer ({current}) than this code ({SCHEMA_VERSION}); "
                "upgrade the bot"
            )
        for version in range(current + 1, target + 1):
            for statement in MIGRATIONS[version - 1]:
                await tx.execute(statement)
        if target > current:
            await tx.execute("DELETE FROM schema_version")
            await tx.execute(
                "INSERT INTO schema_version (version) VALUES (:version)", {"version": target}
            )


def _bind(sql: str, params: Params | None) -> tuple[str, list[Any]]:
    text, names = positional(sql)
    return text, [params[n] for n in names] if params else []
