"""All of the bot's SQL, behind the `Store` protocol that handlers use.

Handlers see only `Store` and frozen records, so another backend (e.g. PostgreSQL) can be added
without touching them. Times cross this boundary as aware UTC datetimes passed in by the caller
(an injected clock, which keeps tests deterministic) and are kept as integer unix seconds, which
makes the per-dispatch comparisons cheap.

Proactive sending (weekly tips, admin broadcasts) is durable and at-least-once: rows are claimed
with a lease, sent, then completed in one transaction. A crash between sending and completing
lets the lease run out and the same message is sent again: at most the in-flight message repeats.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import pathlib
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum
from typing import Any, Protocol, TypeVar

import aiosqlite

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_PATHS = 3
"""How many earning paths one user may follow at once."""
MAX_STEPS = 63
"""Steps of a path are bits of one signed 64-bit INTEGER: indexes 0..62."""
ACTIVE_DAYS = 7
UNANSWERED_DAYS = 90  # unanswered questions are kept this long after they were last asked
TOUCH_INTERVAL = timedelta(seconds=60)  # how stale users.last_seen may get, to spare writes
RECENT_USERS = 20_000  # users whose row and paths are kept in memory, a few MB
"""`Stats` counts users seen, and tips sent, in this many recent days."""


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    """A Telegram user who has written to the bot; `language` is None until they choose one."""

    user_id: int
    language: str | None
    language_hint: str | None  # Telegram's language_code, a default for the language question
    first_seen: datetime
    last_seen: datetime
    blocked: bool  # they blocked the bot: proactive messages are paused
    blocked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Path:
    """An earning method the user chose to follow, with the steps they ticked off."""

    method_id: str
    chosen_at: datetime
    done_steps: frozenset[int]


class AddPathResult(Enum):
    ADDED = "added"
    ALREADY = "already"  # the user already follows this method; nothing changed
    FULL = "full"  # the user already follows MAX_PATHS methods; nothing changed


@dataclass(frozen=True, slots=True)
class QuizResult:
    answers: dict[str, str]
    ranking: tuple[str, ...]  # method ids, best fit first
    taken_at: datetime


@dataclass(frozen=True, slots=True)
class Subscription:
    """Weekly tips for one method; `position` is the index of the next tip to send."""

    user_id: int
    method_id: str
    position: int
    next_due: datetime
    weekday: int  # 0 = Monday .. 6 = Sunday, in the user's time zone (the caller's business)
    hour: int
    minute: int
    active: bool  # False after unsubscribe or after the last tip; position is kept
    paused: bool  # True while the user has the bot blocked
    subscribed_at: datetime


class DeliveryStatus(StrEnum):
    """How sending one tip or broadcast message ended."""

    SENT = "sent"
    BLOCKED = "blocked"  # Telegram said the user blocked the bot (or the account is gone)
    FAILED = "failed"  # a permanent error for this message; it will not be retried by itself


@dataclass(frozen=True, slots=True)
class TipClaim:
    """A due tip leased to one sender until `claimed_until`."""

    user_id: int
    method_id: str
    position: int
    language: str | None
    claimed_until: datetime
    due: datetime  # when it was due: the next one is counted from here, not from the send time
    weekday: int
    hour: int
    minute: int
    # The steps ticked on the user's path of this method, None if it is not on their path:
    # the tip's "I did step n" button names the first step not yet done.
    done_steps: frozenset[int] | None = None


@dataclass(frozen=True, slots=True)
class Broadcast:
    id: int
    text: str
    language: str | None  # only users with this language, or None for everybody
    created_by: int | None  # None once the admin's data was forgotten
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class BroadcastClaim:
    """One recipient of a broadcast, leased to one sender until `claimed_until`."""

    broadcast_id: int
    user_id: int
    text: str
    language: str | None  # the recipient's language
    claimed_until: datetime


@dataclass(frozen=True, slots=True)
class Group:
    chat_id: int
    title: str
    language: str | None
    added_at: datetime


@dataclass(frozen=True, slots=True)
class Stats:
    users: int
    active_users: int  # seen in the last ACTIVE_DAYS days
    by_language: dict[str | None, int]  # None = not chosen yet
    paths_by_method: dict[str, int]
    active_subscriptions: int  # active and not paused
    paused_subscriptions: int  # active but the user blocked the bot
    blocked_users: int
    tips_sent: int  # in the last ACTIVE_DAYS days
    groups: int


@dataclass(frozen=True, slots=True)
class CardFileKey:
    """A picture card as Telegram has it: which card, in which language, drawn from which
    content (its hash). A content change gives a new digest, so an old upload is never reused."""

    card: str
    language: str
    digest: str


# --- the interface ------------------------------------------------------------------------------


class Store(Protocol):
    """What handlers, the tip scheduler, the broadcaster and the PTB persistence may use."""

    async def close(self) -> None: ...

    # users
    async def touch_user(
        self, user_id: int, *, now: datetime, language_hint: str | None = None
    ) -> User: ...
    async def get_user(self, user_id: int) -> User | None: ...
    async def set_language(self, user_id: int, language: str, *, now: datetime) -> None: ...
    async def set_blocked(self, user_id: int, blocked: bool, *, now: datetime) -> None: ...
    async def count_users(self) -> int: ...

    # paths
    async def list_paths(self, user_id: int) -> list[Path]: ...
    async def add_path(self, user_id: int, method_id: str, *, now: datetime) -> AddPathResult: ...
    async def remove_path(self, user_id: int, method_id: str) -> bool: ...
    async def set_step(
        self, user_id: int, method_id: str, step_index: int, *, done: bool
    ) -> frozenset[int]: ...

    # quiz
    async def save_quiz_result(
        self, user_id: int, answers: Mapping[str, str], ranking: Sequence[str], *, now: datetime
    ) -> None: ...
    async def get_quiz_result(self, user_id: int) -> QuizResult | None: ...

    # subscriptions
    async def subscribe(
        self,
        user_id: int,
        method_id: str,
        *,
        now: datetime,
        weekday: int,
        hour: int,
        minute: int,
        first_due: datetime,
        reset_position: bool = False,
    ) -> Subscription: ...
    async def unsubscribe(self, user_id: int, method_id: str | None = None) -> int: ...
    async def list_subscriptions(self, user_id: int) -> list[Subscription]: ...
    async def set_schedule(
        self,
        user_id: int,
        method_id: str,
        *,
        weekday: int,
        hour: int,
        minute: int,
        next_due: datetime,
    ) -> bool: ...

    # tip dispatch
    async def claim_due_tips(
        self, *, now: datetime, limit: int, lease_seconds: float
    ) -> list[TipClaim]: ...
    async def complete_tip(
        self,
        claim: TipClaim,
        *,
        now: datetime,
        status: DeliveryStatus,
        next_due: datetime,
        tip_count: int,
    ) -> None: ...
    async def release_tip(self, claim: TipClaim, *, retry_at: datetime) -> None: ...
    async def release_all_claims(self) -> int: ...

    # broadcasts
    async def create_broadcast(
        self,
        text: str,
        *,
        language: str | None,
        created_by: int,
        now: datetime,
        include_unset_language: bool = False,
        draft: int | None = None,
    ) -> int: ...
    async def broadcast_of_draft(self, created_by: int, draft: int) -> int | None: ...
    async def claim_broadcast_targets(
        self, *, now: datetime, limit: int, lease_seconds: float
    ) -> list[BroadcastClaim]: ...
    async def complete_broadcast_target(
        self, claim: BroadcastClaim, status: DeliveryStatus, *, now: datetime
    ) -> None: ...
    async def release_broadcast_target(
        self, claim: BroadcastClaim, *, retry_at: datetime
    ) -> None: ...
    async def broadcast_report(self, broadcast_id: int) -> dict[str, int]: ...
    async def finish_broadcast(self, broadcast_id: int, *, now: datetime) -> None: ...
    async def unfinished_broadcasts(self) -> list[Broadcast]: ...

    # groups
    async def upsert_group(self, chat_id: int, title: str, *, now: datetime) -> Group: ...
    async def set_group_language(self, chat_id: int, language: str) -> bool: ...
    async def get_group(self, chat_id: int) -> Group | None: ...
    async def remove_group(self, chat_id: int) -> bool: ...
    async def move_group(self, old_chat_id: int, new_chat_id: int) -> None: ...

    # data rights and statistics
    async def export_user(self, user_id: int) -> dict[str, Any]: ...
    async def forget_user(self, user_id: int) -> None: ...
    async def stats(self, *, now: datetime) -> Stats: ...

    # questions with no answer: counted for the content team, never linked to a user
    async def record_unanswered(self, query: str, *, now: datetime) -> None: ...
    async def top_unanswered(self, *, limit: int, now: datetime) -> list[tuple[str, int]]: ...

    # picture cards uploaded to Telegram: their file_id, sent again without an upload (no user data)
    async def card_file_id(self, key: CardFileKey) -> str | None: ...
    async def save_card_file_id(self, key: CardFileKey, file_id: str, *, now: datetime) -> None: ...

    # updates a stop handed back (bot.intake), raw JSON, handled first at the next start
    async def hold_updates(self, raw: Sequence[str]) -> None: ...
    async def take_held_updates(self) -> list[str]: ...

    # raw JSON documents for bot.persistence (None deletes)
    async def persisted_user_data(self) -> dict[int, str]: ...
    async def persisted_chat_data(self) -> dict[int, str]: ...
    async def persisted_blob(self, name: str) -> str | None: ...
    async def persisted_conversations(self, name: str) -> dict[str, str]: ...
    async def persist_user_data(self, user_id: int, data: str | None) -> None: ...
    async def persist_chat_data(self, chat_id: int, data: str | None) -> None: ...
    async def persist_blob(self, name: str, data: str | None) -> None: ...
    async def persist_conversation(self, name: str, key: str, state: str | None) -> None: ...


# --- schema -------------------------------------------------------------------------------------

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
    # v5: picture cards Telegram already has (bot.cards): sent again by file_id, no upload.
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

SQL_PATHS = """SELECT method_id, chosen_at, done_steps FROM paths
WHERE user_id = ? ORDER BY chosen_at, method_id"""
# The statements run for (nearly) every update or dispatch run; tests check their query plans.
SQL_TOUCH_USER = """
INSERT INTO users (user_id, language_hint, first_seen, last_seen)
VALUES (:user_id, :hint, :now, :now)
ON CONFLICT (user_id) DO UPDATE SET
    last_seen = excluded.last_seen,
    language_hint = coalesce(excluded.language_hint, users.language_hint),
    blocked = 0,
    blocked_at = NULL
RETURNING user_id, language, language_hint, first_seen, last_seen, blocked, blocked_at"""
SQL_GET_USER = """
SELECT user_id, language, language_hint, first_seen, last_seen, blocked, blocked_at
FROM users WHERE user_id = :user_id"""
SQL_DUE_TIPS = """
SELECT s.user_id, s.method_id, s.position, s.next_due, s.weekday, s.hour, s.minute, u.language,
    p.done_steps
FROM subscriptions AS s JOIN users AS u ON u.user_id = s.user_id
    LEFT JOIN paths AS p ON p.user_id = s.user_id AND p.method_id = s.method_id
WHERE s.active = 1 AND s.paused = 0 AND s.next_due <= :now
    AND (s.claimed_until IS NULL OR s.claimed_until <= :now)
    AND u.blocked = 0
ORDER BY s.next_due, s.user_id, s.method_id
LIMIT :limit"""
SQL_PENDING_TARGETS = """
SELECT t.broadcast_id, t.user_id, b.text, u.language
FROM broadcast_targets AS t
    JOIN broadcasts AS b ON b.id = t.broadcast_id
    JOIN users AS u ON u.user_id = t.user_id
WHERE t.status = 'pending' AND (t.claimed_until IS NULL OR t.claimed_until <= :now)
    AND b.finished_at IS NULL
ORDER BY t.broadcast_id, t.user_id
LIMIT :limit"""

_SUBSCRIPTION_COLUMNS = (
    "user_id, method_id, position, next_due, weekday, hour, minute, active, paused, subscribed_at"
)


# --- opening and migrating ----------------------------------------------------------------------


async def open_store(database_url: str) -> SQLiteStore:
    """Open (creating if needed) and migrate the database named by a `sqlite:///` URL.

    A new file is made owner-only before SQLite writes anything to it, since it holds personal data.
    """
    path = _database_path(database_url)
    if path != ":memory:":
        _create_private_file(pathlib.Path(path))
    db = await aiosqlite.connect(path, isolation_level=None)  # we issue BEGIN/COMMIT ourselves
    reader = None
    try:
        db.row_factory = sqlite3.Row
        for pragma in _PRAGMAS:
            await db.execute(pragma)
        await migrate(db)
        if path != ":memory:":
            _make_sidecars_private(path)
            reader = await aiosqlite.connect(path, isolation_level=None)
            reader.row_factory = sqlite3.Row
            for pragma in _READER_PRAGMAS:
                await reader.execute(pragma)
    except BaseException:
        if reader is not None:
            await reader.close()
        await db.close()
        raise
    return SQLiteStore(db, reader)


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


async def migrate(db: aiosqlite.Connection, target: int = SCHEMA_VERSION) -> None:
    """Apply the pending steps up to `target`, each in its own transaction.

    The version is re-read inside each transaction, so two processes starting at once do not run
    the same step twice.
    """
    current = await _user_version(db)
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"database schema is newer ({current}) than this code ({SCHEMA_VERSION}); "
            "upgrade the bot"
        )
    for version in range(current + 1, target + 1):

        def step(conn: sqlite3.Connection, version: int = version) -> None:
            if conn.execute("PRAGMA user_version").fetchone()[0] >= version:
                return
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")

        await _in_transaction(db, step)


async def _user_version(db: aiosqlite.Connection) -> int:
    rows = await db.execute_fetchall("PRAGMA user_version")
    return int(next(iter(rows))[0])


async def _in_transaction(db: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """`work` inside BEGIN IMMEDIATE .. COMMIT, as one call on the connection's thread, so no other
    statement can come in between and no lock is held across awaits. Any error, a full disk
    included, rolls back and propagates: no half-written transaction stays.

    aiosqlite has no public way to run a function on its thread (omnilib/aiosqlite#19);
    `Connection._execute` is the one its own methods use, so it is used here too.
    """

    def run(conn: sqlite3.Connection) -> T:
        conn.execute("BEGIN IMMEDIATE")  # takes the write lock up front (waits busy_timeout)
        try:
            result = work(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back by itself (e.g. SQLITE_FULL)
                conn.execute("ROLLBACK")
            raise
        return result

    return await db._execute(run, db._conn)


# --- the SQLite implementation ------------------------------------------------------------------


@dataclass(slots=True)
class _Remembered:
    """The last known users row and paths of one user (None where unknown), and a version that
    every change to them moves."""

    version: int
    user: User | None = None
    paths: tuple[Path, ...] | None = None


class _UserMemory:
    """Recently active users' rows and paths, so a tap needs no query; least recent dropped first.

    Every store method that changes a user's row or paths does it inside `changing`. That is
    right only while one bot process writes the database (README, "Running in production").
    A read keeps what it found only if the user's version did not move while it waited.
    """

    def __init__(self, size: int = RECENT_USERS) -> None:
        self._entries: OrderedDict[int, _Remembered] = OrderedDict()
        self._size = size
        self._versions = itertools.count(1)

    def get(self, user_id: int) -> _Remembered | None:
        entry = self._entries.get(user_id)
        if entry is not None:
            self._entries.move_to_end(user_id)
        return entry

    def version(self, user_id: int) -> int:
        """Call before a read; pass the result to `remember` after it."""
        entry = self.get(user_id)
        if entry is None:
            entry = self._entries[user_id] = _Remembered(next(self._versions))
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return entry.version

    def remember(
        self,
        user_id: int,
        version: int,
        *,
        user: User | None = None,
        paths: tuple[Path, ...] | None = None,
    ) -> None:
        """Keep what a read returned, unless the user changed since it began."""
        entry = self._entries.get(user_id)
        if entry is None or entry.version != version:
            return
        if user is not None:
            entry.user = user
        if paths is not None:
            entry.paths = paths

    @contextmanager
    def changing(self, user_id: int, *, paths_only: bool = False) -> Iterator[None]:
        """Around a write: forgotten before (no read answers from the old row meanwhile) and
        after (a read that ran on the reading connection before the commit is not kept)."""
        self._forget(user_id, paths_only)
        try:
            yield
        finally:
            self._forget(user_id, paths_only)

    def _forget(self, user_id: int, paths_only: bool) -> None:
        entry = self._entries.get(user_id)
        if entry is not None:
            entry.version = next(self._versions)
            entry.paths = None
            if not paths_only:
                entry.user = None


class SQLiteStore:
    """`Store` on aiosqlite: one connection writes, another reads.

    aiosqlite runs a connection's calls one at a time, in order, on its own thread. Every write
    is one call: a single statement, or a whole transaction (`_in_transaction`). So no statement
    can slip into another's transaction, no lock is held across turns of the event loop, and
    under load the thread works through many writes back to back.
    """

    def __init__(
        self, db: aiosqlite.Connection, reader: aiosqlite.Connection | None = None
    ) -> None:
        self._db = db
        # Plain SELECTs go to their own connection (and thread): they never wait for a write,
        # and see committed data only. None for ":memory:", which cannot be shared.
        self._reader = reader
        self._memory = _UserMemory()
        self._closed = False

    async def close(self) -> None:
        """Close both connections, whatever fails on the way: an open aiosqlite connection is a
        thread that keeps the process alive. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._db.execute("PRAGMA optimize")
        except (sqlite3.Error, ValueError) as exc:  # ValueError: already closed
            log.warning("PRAGMA optimize failed while closing the database: %s", exc)
        finally:
            try:
                if self._reader is not None:
                    await _close_quietly(self._reader)
            finally:
                await _close_quietly(self._db)

    async def _in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await _in_transaction(self._db, work)

    async def _fetch(self, sql: str, params: Mapping[str, Any] | Sequence[Any] = ()) -> list[Any]:
        """One statement on the writing connection (a write with RETURNING, or a read of it)."""
        return list(await self._db.execute_fetchall(sql, params))

    async def _read(self, sql: str, params: Mapping[str, Any] | Sequence[Any] = ()) -> list[Any]:
        """One SELECT; on the reading connection when there is one."""
        if self._reader is None:
            return await self._fetch(sql, params)
        return list(await self._reader.execute_fetchall(sql, params))

    async def _run(self, sql: str, params: Mapping[str, Any] | Sequence[Any] = ()) -> int:
        """One statement in autocommit mode; returns the number of rows changed."""
        cursor = await self._db.execute(sql, params)
        rowcount = cursor.rowcount
        await cursor.close()
        return rowcount

    # users

    async def touch_user(
        self, user_id: int, *, now: datetime, language_hint: str | None = None
    ) -> User:
        """Record that the user wrote (one upsert); writing again also means they unblocked us.

        A user seen less than TOUCH_INTERVAL ago is answered from memory: last_seen may lag by
        that much, which saves a write on nearly every tap of a busy user.
        """
        remembered = self._memory.get(user_id)
        recent = remembered.user if remembered else None
        if (
            recent is not None
            and language_hint is None
            and not recent.blocked
            and timedelta(0) <= now - recent.last_seen < TOUCH_INTERVAL
        ):
            return replace(recent, last_seen=now)
        version = self._memory.version(user_id)
        rows = await self._fetch(
            SQL_TOUCH_USER, {"user_id": user_id, "hint": language_hint, "now": _ts(now)}
        )
        user = _user(rows[0])
        self._memory.remember(user_id, version, user=user)
        return user

    async def get_user(self, user_id: int) -> User | None:
        """The users row; a recently active user's comes from memory (no query)."""
        remembered = self._memory.get(user_id)
        if remembered is not None and remembered.user is not None:
            return remembered.user
        version = self._memory.version(user_id)
        rows = await self._read(SQL_GET_USER, {"user_id": user_id})
        if not rows:
            return None
        user = _user(rows[0])
        self._memory.remember(user_id, version, user=user)
        return user

    async def set_language(self, user_id: int, language: str, *, now: datetime) -> None:
        """Creates the user if needed, so choosing a language never fails on a fresh user."""
        with self._memory.changing(user_id):
            await self._run(
                """INSERT INTO users (user_id, language, first_seen, last_seen)
                VALUES (:user_id, :language, :now, :now)
                ON CONFLICT (user_id) DO UPDATE SET language = excluded.language""",
                {"user_id": user_id, "language": language, "now": _ts(now)},
            )

    async def set_blocked(self, user_id: int, blocked: bool, *, now: datetime) -> None:
        """Blocking pauses all the user's subscriptions; unblocking resumes them (a trigger)."""
        with self._memory.changing(user_id):
            await self._run(
                """UPDATE users SET blocked = :blocked,
                    blocked_at = CASE WHEN :blocked THEN coalesce(blocked_at, :now) END
                WHERE user_id = :user_id""",
                {"user_id": user_id, "blocked": int(blocked), "now": _ts(now)},
            )

    async def count_users(self) -> int:
        rows = await self._read("SELECT count(*) FROM users")
        return int(rows[0][0])

    # paths

    async def list_paths(self, user_id: int) -> list[Path]:
        remembered = self._memory.get(user_id)
        if remembered is not None and remembered.paths is not None:
            return list(remembered.paths)
        version = self._memory.version(user_id)
        paths = _paths(await self._read(SQL_PATHS, (user_id,)))
        self._memory.remember(user_id, version, paths=paths)
        return list(paths)

    async def add_path(self, user_id: int, method_id: str, *, now: datetime) -> AddPathResult:
        """Follow a method, unless already followed or MAX_PATHS are followed. The user must exist."""

        def add(db: sqlite3.Connection) -> tuple[AddPathResult, list[sqlite3.Row]]:
            rows = db.execute(SQL_PATHS, (user_id,)).fetchall()
            chosen = {r["method_id"] for r in rows}
            if method_id in chosen:
                return AddPathResult.ALREADY, rows
            if len(chosen) >= MAX_PATHS:
                return AddPathResult.FULL, rows
            db.execute(
                "INSERT INTO paths (user_id, method_id, chosen_at) VALUES (?, ?, ?)",
                (user_id, method_id, _ts(now)),
            )
            return AddPathResult.ADDED, db.execute(SQL_PATHS, (user_id,)).fetchall()

        with self._memory.changing(user_id, paths_only=True):
            result, rows = await self._in_transaction(add)
        # Read in the same transaction: the card shown next needs no query.
        self._memory.remember(user_id, self._memory.version(user_id), paths=_paths(rows))
        return result

    async def remove_path(self, user_id: int, method_id: str) -> bool:
        with self._memory.changing(user_id, paths_only=True):
            changed = await self._run(
                "DELETE FROM paths WHERE user_id = ? AND method_id = ?", (user_id, method_id)
            )
        return changed > 0

    async def set_step(
        self, user_id: int, method_id: str, step_index: int, *, done: bool
    ) -> frozenset[int]:
        """Mark one step done or not done; doing it again changes nothing. Returns the done steps;
        raises LookupError if the user does not follow the method."""
        if not 0 <= step_index < MAX_STEPS:
            raise ValueError(f"step_index must be 0..{MAX_STEPS - 1}, got {step_index}")
        with self._memory.changing(user_id, paths_only=True):
            rows = await self._fetch(
                """UPDATE paths
                SET done_steps = CASE WHEN :done THEN done_steps | (1 << :step)
                    ELSE done_steps & ~(1 << :step) END
                WHERE user_id = :user_id AND method_id = :method_id RETURNING done_steps""",
                {"user_id": user_id, "method_id": method_id, "step": step_index, "done": int(done)},
            )
        if not rows:
            raise LookupError(f"user {user_id} does not follow {method_id!r}")
        return _bits(rows[0][0])

    # quiz

    async def save_quiz_result(
        self, user_id: int, answers: Mapping[str, str], ranking: Sequence[str], *, now: datetime
    ) -> None:
        """Keep only the latest result: retaking the quiz replaces it. The user must exist."""
        await self._run(
            """INSERT INTO quiz_results (user_id, answers, ranking, taken_at)
            VALUES (?, ?, ?, ?)
            ON CONFLICT (user_id) DO UPDATE SET answers = excluded.answers,
                ranking = excluded.ranking, taken_at = excluded.taken_at""",
            (user_id, _json(dict(answers)), _json(list(ranking)), _ts(now)),
        )

    async def get_quiz_result(self, user_id: int) -> QuizResult | None:
        rows = await self._read(
            "SELECT answers, ranking, taken_at FROM quiz_results WHERE user_id = ?", (user_id,)
        )
        if not rows:
            return None
        row = rows[0]
        return QuizResult(
            json.loads(row["answers"]), tuple(json.loads(row["ranking"])), _dt(row["taken_at"])
        )

    # subscriptions

    async def subscribe(
        self,
        user_id: int,
        method_id: str,
        *,
        now: datetime,
        weekday: int,
        hour: int,
        minute: int,
        first_due: datetime,
        reset_position: bool = False,
    ) -> Subscription:
        """Start (or restart) weekly tips; a returning subscriber resumes where they left off.

        `reset_position=True` starts over from the first tip (e.g. after finishing them all).
        A subscription that is on already stays exactly as it is (a second tap on "subscribe"
        must not send this week's tip again); returns it as it is now. The user must exist.
        """
        _check_schedule(weekday, hour, minute)
        params = {
            "user_id": user_id,
            "method_id": method_id,
            "due": _ts(first_due),
            "weekday": weekday,
            "hour": hour,
            "minute": minute,
            "now": _ts(now),
            "reset": int(reset_position),
        }

        def upsert(db: sqlite3.Connection) -> sqlite3.Row:
            row = db.execute(
                f"""INSERT INTO subscriptions
                    (user_id, method_id, next_due, weekday, hour, minute, paused, subscribed_at)
                VALUES (:user_id, :method_id, :due, :weekday, :hour, :minute,
                    coalesce((SELECT blocked FROM users WHERE user_id = :user_id), 0), :now)
                ON CONFLICT (user_id, method_id) DO UPDATE SET
                    position = CASE WHEN :reset THEN 0 ELSE position END,
                    next_due = excluded.next_due, weekday = excluded.weekday,
                    hour = excluded.hour, minute = excluded.minute, active = 1,
                    paused = excluded.paused, subscribed_at = excluded.subscribed_at
                WHERE subscriptions.active = 0 OR :reset
                RETURNING {_SUBSCRIPTION_COLUMNS}""",
                params,
            ).fetchone()
            return (
                row
                or db.execute(
                    f"""SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions
                WHERE user_id = :user_id AND method_id = :method_id""",
                    params,
                ).fetchone()
            )

        return _subscription(await self._in_transaction(upsert))

    async def unsubscribe(self, user_id: int, method_id: str | None = None) -> int:
        """Stop tips for one method (or all when None), keeping the position; returns how many."""
        return await self._run(
            """UPDATE subscriptions SET active = 0
            WHERE user_id = :user_id AND active = 1
                AND (:method_id IS NULL OR method_id = :method_id)""",
            {"user_id": user_id, "method_id": method_id},
        )

    async def list_subscriptions(self, user_id: int) -> list[Subscription]:
        """All of the user's subscriptions, stopped ones included (see `active`)."""
        rows = await self._read(
            f"SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE user_id = ? ORDER BY method_id",
            (user_id,),
        )
        return [_subscription(r) for r in rows]

    async def set_schedule(
        self,
        user_id: int,
        method_id: str,
        *,
        weekday: int,
        hour: int,
        minute: int,
        next_due: datetime,
    ) -> bool:
        """Move a subscription to another day and time; False if there is no such subscription."""
        _check_schedule(weekday, hour, minute)
        changed = await self._run(
            """UPDATE subscriptions SET weekday = ?, hour = ?, minute = ?, next_due = ?
            WHERE user_id = ? AND method_id = ?""",
            (weekday, hour, minute, _ts(next_due), user_id, method_id),
        )
        return changed > 0

    # tip dispatch

    async def claim_due_tips(
        self, *, now: datetime, limit: int, lease_seconds: float
    ) -> list[TipClaim]:
        """Lease up to `limit` due tips, oldest first, to this sender (one write transaction).

        A claim that is neither completed nor released before the lease ends becomes due again.
        """
        until = now + timedelta(seconds=lease_seconds)

        def claim(db: sqlite3.Connection) -> list[sqlite3.Row]:
            rows = db.execute(SQL_DUE_TIPS, {"now": _ts(now), "limit": limit}).fetchall()
            db.executemany(
                "UPDATE subscriptions SET claimed_until = ? WHERE user_id = ? AND method_id = ?",
                [(_ts(until), r["user_id"], r["method_id"]) for r in rows],
            )
            return rows

        rows = await self._in_transaction(claim)
        return [
            TipClaim(
                r["user_id"],
                r["method_id"],
                r["position"],
                r["language"],
                _dt(_ts(until)),
                _dt(r["next_due"]),
                r["weekday"],
                r["hour"],
                r["minute"],
                None if r["done_steps"] is None else _bits(r["done_steps"]),
            )
            for r in rows
        ]

    async def complete_tip(
        self,
        claim: TipClaim,
        *,
        now: datetime,
        status: DeliveryStatus,
        next_due: datetime,
        tip_count: int,
    ) -> None:
        """Log the attempt and end the claim, in one transaction.

        SENT moves to the next tip, and once all `tip_count` tips are sent the subscription ends
        (active = 0, so re-subscribing needs `reset_position=True` to get tips again). BLOCKED also
        marks the user blocked, which pauses all their subscriptions. FAILED keeps the position.
        If `claim.position >= tip_count` there is nothing to send: call `unsubscribe` instead.
        """
        status = DeliveryStatus(status)
        sent = status is DeliveryStatus.SENT
        params = {
            "user_id": claim.user_id,
            "method_id": claim.method_id,
            "position": claim.position,
            "now": _ts(now),
            "status": status.value,
            "due": _ts(next_due),
            "sent": int(sent),
            "tip_count": tip_count,
        }

        def complete(db: sqlite3.Connection) -> None:
            db.execute(
                """INSERT INTO deliveries (user_id, method_id, position, sent_at, status)
                SELECT :user_id, :method_id, :position, :now, :status
                WHERE EXISTS (SELECT 1 FROM users WHERE user_id = :user_id)""",
                params,
            )
            # Advance only from the claimed position, so a repeated completion cannot skip a tip.
            db.execute(
                """UPDATE subscriptions SET
                    active = CASE WHEN :sent AND position = :position
                        AND :position + 1 >= :tip_count THEN 0 ELSE active END,
                    position = CASE WHEN :sent AND position = :position
                        THEN :position + 1 ELSE position END,
                    next_due = :due, claimed_until = NULL
                WHERE user_id = :user_id AND method_id = :method_id""",
                params,
            )
            if status is DeliveryStatus.BLOCKED:
                _mark_blocked(db, claim.user_id, now)

        with self._memory.changing(claim.user_id):  # BLOCKED changes the users row
            await self._in_transaction(complete)

    async def release_tip(self, claim: TipClaim, *, retry_at: datetime) -> None:
        """Give a claim back untouched (network trouble, 5xx, flood control): retry at `retry_at`."""
        await self._run(
            """UPDATE subscriptions SET claimed_until = NULL, next_due = ?
            WHERE user_id = ? AND method_id = ?""",
            (_ts(retry_at), claim.user_id, claim.method_id),
        )

    async def release_all_claims(self) -> int:
        """Free every lease, of tips and broadcast recipients; returns how many. Start-up only.

        One process runs the bot (Telegram serves one poller), so a lease found at start-up was
        left by a process that died mid-dispatch: freeing it sends those messages now rather than
        after the lease runs out. A released broadcast retry (claimed_until as "not before") is
        simply tried again early.
        """

        def release(db: sqlite3.Connection) -> int:
            tips = db.execute(
                "UPDATE subscriptions SET claimed_until = NULL WHERE claimed_until IS NOT NULL"
            )
            targets = db.execute(
                """UPDATE broadcast_targets SET claimed_until = NULL
                WHERE status = 'pending' AND claimed_until IS NOT NULL"""
            )
            return tips.rowcount + targets.rowcount

        return await self._in_transaction(release)

    # broadcasts

    async def create_broadcast(
        self,
        text: str,
        *,
        language: str | None,
        created_by: int,
        now: datetime,
        include_unset_language: bool = False,
        draft: int | None = None,
    ) -> int:
        """Queue a message for every user not blocking the bot, or only those of `language`.

        The recipients are fixed now, in one INSERT .. SELECT. `include_unset_language` adds the
        users who never chose a language (useful when `language` is the default one). With a
        `draft` (the admin's number for what they wrote), a broadcast already made from the same
        draft is not made again: its id is returned.
        """

        def create(db: sqlite3.Connection) -> int:
            if draft is not None:
                made = db.execute(
                    "SELECT id FROM broadcasts WHERE created_by = ? AND draft = ?",
                    (created_by, draft),
                ).fetchone()
                if made is not None:
                    return int(made[0])
            row = db.execute(
                """INSERT INTO broadcasts (text, language, created_by, created_at, draft)
                VALUES (?, ?, ?, ?, ?) RETURNING id""",
                (text, language, created_by, _ts(now), draft),
            ).fetchone()
            broadcast_id = int(row[0])
            db.execute(
                """INSERT INTO broadcast_targets (broadcast_id, user_id)
                SELECT :id, user_id FROM users
                WHERE blocked = 0 AND (:language IS NULL OR language = :language
                    OR (:unset AND language IS NULL))""",
                {"id": broadcast_id, "language": language, "unset": int(include_unset_language)},
            )
            return broadcast_id

        return await self._in_transaction(create)

    async def broadcast_of_draft(self, created_by: int, draft: int) -> int | None:
        """The broadcast made from this admin's draft, if one was."""
        rows = await self._fetch(
            "SELECT id FROM broadcasts WHERE created_by = ? AND draft = ?", (created_by, draft)
        )
        return int(rows[0][0]) if rows else None

    async def claim_broadcast_targets(
        self, *, now: datetime, limit: int, lease_seconds: float
    ) -> list[BroadcastClaim]:
        """Lease up to `limit` pending recipients of unfinished broadcasts, oldest broadcast first."""
        until = _ts(now + timedelta(seconds=lease_seconds))

        def claim(db: sqlite3.Connection) -> list[sqlite3.Row]:
            rows = db.execute(SQL_PENDING_TARGETS, {"now": _ts(now), "limit": limit}).fetchall()
            db.executemany(
                """UPDATE broadcast_targets SET claimed_until = ?
                WHERE broadcast_id = ? AND user_id = ?""",
                [(until, r["broadcast_id"], r["user_id"]) for r in rows],
            )
            return rows

        rows = await self._in_transaction(claim)
        return [
            BroadcastClaim(r["broadcast_id"], r["user_id"], r["text"], r["language"], _dt(until))
            for r in rows
        ]

    async def complete_broadcast_target(
        self, claim: BroadcastClaim, status: DeliveryStatus, *, now: datetime
    ) -> None:
        """Record the outcome for one recipient; BLOCKED also marks the user blocked."""
        status = DeliveryStatus(status)

        def complete(db: sqlite3.Connection) -> None:
            db.execute(
                """UPDATE broadcast_targets SET status = ?, claimed_until = NULL
                WHERE broadcast_id = ? AND user_id = ?""",
                (status.value, claim.broadcast_id, claim.user_id),
            )
            if status is DeliveryStatus.BLOCKED:
                _mark_blocked(db, claim.user_id, now)

        with self._memory.changing(claim.user_id):  # BLOCKED changes the users row
            await self._in_transaction(complete)

    async def release_broadcast_target(self, claim: BroadcastClaim, *, retry_at: datetime) -> None:
        """Give a recipient back as pending; nobody claims it before `retry_at`."""
        # claimed_until doubles as "not before": a lease in the future hides the row until then.
        await self._run(
            """UPDATE broadcast_targets SET claimed_until = ?
            WHERE broadcast_id = ? AND user_id = ? AND status = 'pending'""",
            (_ts(retry_at), claim.broadcast_id, claim.user_id),
        )

    async def broadcast_report(self, broadcast_id: int) -> dict[str, int]:
        """Recipients per status: always the keys pending, sent, blocked, failed."""
        rows = await self._fetch(
            """SELECT status, count(*) FROM broadcast_targets
            WHERE broadcast_id = ? GROUP BY status""",
            (broadcast_id,),
        )
        report = {"pending": 0, **{s.value: 0 for s in DeliveryStatus}}
        report.update({r[0]: int(r[1]) for r in rows})
        return report

    async def finish_broadcast(self, broadcast_id: int, *, now: datetime) -> None:
        """Mark done (or cancel): recipients still pending are no longer claimed."""
        await self._run(
            "UPDATE broadcasts SET finished_at = ? WHERE id = ? AND finished_at IS NULL",
            (_ts(now), broadcast_id),
        )

    async def unfinished_broadcasts(self) -> list[Broadcast]:
        rows = await self._fetch(
            """SELECT id, text, language, created_by, created_at, finished_at FROM broadcasts
            WHERE finished_at IS NULL ORDER BY id"""
        )
        return [
            Broadcast(
                r["id"], r["text"], r["language"], r["created_by"], _dt(r["created_at"]), None
            )
            for r in rows
        ]

    # groups

    async def upsert_group(self, chat_id: int, title: str, *, now: datetime) -> Group:
        """Remember a group the bot is in; a known group keeps its language and added_at."""
        rows = await self._fetch(
            """INSERT INTO groups (chat_id, title, added_at) VALUES (?, ?, ?)
            ON CONFLICT (chat_id) DO UPDATE SET title = excluded.title
            RETURNING chat_id, title, language, added_at""",
            (chat_id, title, _ts(now)),
        )
        return _group(rows[0])

    async def set_group_language(self, chat_id: int, language: str) -> bool:
        changed = await self._run(
            "UPDATE groups SET language = ? WHERE chat_id = ?", (language, chat_id)
        )
        return changed > 0

    async def get_group(self, chat_id: int) -> Group | None:
        rows = await self._read(
            "SELECT chat_id, title, language, added_at FROM groups WHERE chat_id = ?", (chat_id,)
        )
        return _group(rows[0]) if rows else None

    async def remove_group(self, chat_id: int) -> bool:
        changed = await self._run("DELETE FROM groups WHERE chat_id = ?", (chat_id,))
        return changed > 0

    async def move_group(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group became a supergroup (a new chat id): its settings go with it.

        Safe to repeat (Telegram tells both chats); settings already kept under the new id win.
        """

        def move(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE OR IGNORE groups SET chat_id = ? WHERE chat_id = ?",
                (new_chat_id, old_chat_id),
            )
            db.execute("DELETE FROM groups WHERE chat_id = ?", (old_chat_id,))

        await self._in_transaction(move)

    # data rights and statistics

    async def export_user(self, user_id: int) -> dict[str, Any]:
        """Everything stored about the user, as JSON-ready data (times as ISO 8601 strings)."""
        user = await self.get_user(user_id)
        paths = await self.list_paths(user_id)
        quiz = await self.get_quiz_result(user_id)
        subscriptions = await self.list_subscriptions(user_id)
        deliveries = await self._fetch(
            """SELECT count(*) AS n, max(sent_at) AS last FROM deliveries
            WHERE user_id = ? AND status = 'sent'""",
            (user_id,),
        )
        broadcasts = await self._fetch(
            "SELECT count(*) FROM broadcast_targets WHERE user_id = ? AND status = 'sent'",
            (user_id,),
        )
        user_data = await self._fetch(
            "SELECT data FROM persist_user_data WHERE user_id = ?", (user_id,)
        )
        chat_data = await self._fetch(
            "SELECT data FROM persist_chat_data WHERE chat_id = ?", (user_id,)
        )
        conversations = await self._fetch(
            f"SELECT name, key, state FROM persist_conversations WHERE {_HAS_USER_KEY}",
            {"user_id": user_id},
        )
        last_sent = deliveries[0]["last"]
        return {
            "user": None
            if user is None
            else {
                "user_id": user.user_id,
                "language": user.language,
                "language_hint": user.language_hint,
                "first_seen": user.first_seen.isoformat(),
                "last_seen": user.last_seen.isoformat(),
                "blocked": user.blocked,
                "blocked_at": user.blocked_at.isoformat() if user.blocked_at else None,
            },
            "paths": [
                {
                    "method_id": p.method_id,
                    "chosen_at": p.chosen_at.isoformat(),
                    "done_steps": sorted(p.done_steps),
                }
                for p in paths
            ],
            "quiz": None
            if quiz is None
            else {
                "answers": quiz.answers,
                "ranking": list(quiz.ranking),
                "taken_at": quiz.taken_at.isoformat(),
            },
            "subscriptions": [
                {
                    "method_id": s.method_id,
                    "position": s.position,
                    "next_due": s.next_due.isoformat(),
                    "weekday": s.weekday,
                    "hour": s.hour,
                    "minute": s.minute,
                    "active": s.active,
                    "paused": s.paused,
                    "subscribed_at": s.subscribed_at.isoformat(),
                }
                for s in subscriptions
            ],
            "tips_sent": {
                "count": int(deliveries[0]["n"]),
                "last_sent_at": None if last_sent is None else _dt(last_sent).isoformat(),
            },
            "broadcasts_received": int(broadcasts[0][0]),
            "user_data": json.loads(user_data[0][0]) if user_data else None,
            "private_chat_data": json.loads(chat_data[0][0]) if chat_data else None,
            "conversations": [
                {"name": r["name"], "key": json.loads(r["key"]), "state": json.loads(r["state"])}
                for r in conversations
            ],
        }

    async def forget_user(self, user_id: int) -> None:
        """Delete every row about the user, in one transaction.

        The user row cascades to paths, quiz, subscriptions, deliveries and broadcast targets;
        PTB's data (user_data, their private chat's chat_data, conversations) goes too. Broadcasts
        they wrote as an admin stay, without their id. PTB keeps its own copy in memory: also
        call `application.drop_user_data(user_id)` and `drop_chat_data(user_id)`, or the next
        persistence run writes it back.
        """
        params = {"user_id": user_id}

        def forget(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM users WHERE user_id = :user_id", params)
            db.execute("DELETE FROM persist_user_data WHERE user_id = :user_id", params)
            db.execute("DELETE FROM persist_chat_data WHERE chat_id = :user_id", params)
            db.execute(f"DELETE FROM persist_conversations WHERE {_HAS_USER_KEY}", params)
            db.execute(
                "UPDATE broadcasts SET created_by = NULL WHERE created_by = :user_id", params
            )

        with self._memory.changing(user_id):
            await self._in_transaction(forget)

    async def record_unanswered(self, query: str, *, now: datetime) -> None:
        """Count a question (already masked by the caller); forget ones not asked for a while."""
        params = {
            "query": query,
            "now": _ts(now),
            "old": _ts(now - timedelta(days=UNANSWERED_DAYS)),
        }

        def record(db: sqlite3.Connection) -> None:
            db.execute(
                """INSERT INTO unanswered (query, asked, first_asked, last_asked)
                VALUES (:query, 1, :now, :now)
                ON CONFLICT (query) DO UPDATE SET asked = asked + 1, last_asked = :now""",
                params,
            )
            db.execute("DELETE FROM unanswered WHERE last_asked < :old", params)

        await self._in_transaction(record)

    async def top_unanswered(self, *, limit: int, now: datetime) -> list[tuple[str, int]]:
        rows = await self._read(
            """SELECT query, asked FROM unanswered WHERE last_asked >= ?
            ORDER BY asked DESC, last_asked DESC LIMIT ?""",
            (_ts(now - timedelta(days=UNANSWERED_DAYS)), limit),
        )
        return [(row[0], row[1]) for row in rows]

    async def stats(self, *, now: datetime) -> Stats:
        since = _ts(now - timedelta(days=ACTIVE_DAYS))
        users = (
            await self._fetch(
                """SELECT count(*), coalesce(sum(last_seen >= ?), 0), coalesce(sum(blocked), 0)
                FROM users""",
                (since,),
            )
        )[0]
        languages = await self._fetch("SELECT language, count(*) FROM users GROUP BY language")
        methods = await self._fetch(
            "SELECT method_id, count(*) FROM paths GROUP BY method_id ORDER BY method_id"
        )
        subscriptions = (
            await self._fetch(
                """SELECT coalesce(sum(active = 1 AND paused = 0), 0),
                    coalesce(sum(active = 1 AND paused = 1), 0)
                FROM subscriptions"""
            )
        )[0]
        tips = await self._fetch(
            "SELECT count(*) FROM deliveries WHERE sent_at >= ? AND status = 'sent'", (since,)
        )
        groups = await self._fetch("SELECT count(*) FROM groups")
        return Stats(
            users=int(users[0]),
            active_users=int(users[1]),
            by_language={r[0]: int(r[1]) for r in languages},
            paths_by_method={r[0]: int(r[1]) for r in methods},
            active_subscriptions=int(subscriptions[0]),
            paused_subscriptions=int(subscriptions[1]),
            blocked_users=int(users[2]),
            tips_sent=int(tips[0][0]),
            groups=int(groups[0][0]),
        )

    # picture cards

    async def card_file_id(self, key: CardFileKey) -> str | None:
        rows = await self._read(
            "SELECT file_id FROM card_files WHERE card = ? AND language = ? AND digest = ?",
            (key.card, key.language, key.digest),
        )
        return str(rows[0][0]) if rows else None

    async def save_card_file_id(self, key: CardFileKey, file_id: str, *, now: datetime) -> None:
        """Keep the file_id of this drawing of the card; uploads of its older drawings go."""
        params = {
            "card": key.card,
            "language": key.language,
            "digest": key.digest,
            "file_id": file_id,
            "now": _ts(now),
        }

        def save(db: sqlite3.Connection) -> None:
            db.execute(
                """DELETE FROM card_files WHERE card = :card AND language = :language
                AND digest != :digest""",
                params,
            )
            db.execute(
                """INSERT INTO card_files (card, language, digest, file_id, uploaded_at)
                VALUES (:card, :language, :digest, :file_id, :now)
                ON CONFLICT (card, language, digest) DO UPDATE SET
                    file_id = excluded.file_id, uploaded_at = excluded.uploaded_at""",
                params,
            )

        await self._in_transaction(save)

    # updates handed back by a stop (kept beside bot.persistence's blobs: no schema change)

    async def hold_updates(self, raw: Sequence[str]) -> None:
        """Keep these updates for the next start, after any kept already (oldest first)."""

        def work(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT data FROM persist_blobs WHERE name = ?", (_HELD,)).fetchone()
            held = [*(json.loads(row[0]) if row else []), *raw]
            conn.execute(
                """INSERT INTO persist_blobs (name, data) VALUES (?, ?)
                ON CONFLICT (name) DO UPDATE SET data = excluded.data""",
                (_HELD, json.dumps(held)),
            )

        await self._in_transaction(work)

    async def take_held_updates(self) -> list[str]:
        """The updates a stop handed back, oldest first; they are no longer kept."""

        def work(conn: sqlite3.Connection) -> list[str]:
            row = conn.execute(
                "DELETE FROM persist_blobs WHERE name = ? RETURNING data", (_HELD,)
            ).fetchone()
            return [str(r) for r in json.loads(row[0])] if row else []

        return await self._in_transaction(work)

    # raw JSON documents for bot.persistence

    async def persisted_user_data(self) -> dict[int, str]:
        rows = await self._fetch("SELECT user_id, data FROM persist_user_data")
        return {r[0]: r[1] for r in rows}

    async def persisted_chat_data(self) -> dict[int, str]:
        rows = await self._fetch("SELECT chat_id, data FROM persist_chat_data")
        return {r[0]: r[1] for r in rows}

    async def persisted_blob(self, name: str) -> str | None:
        rows = await self._fetch("SELECT data FROM persist_blobs WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    async def persisted_conversations(self, name: str) -> dict[str, str]:
        rows = await self._fetch(
            "SELECT key, state FROM persist_conversations WHERE name = ?", (name,)
        )
        return {r[0]: r[1] for r in rows}

    async def persist_user_data(self, user_id: int, data: str | None) -> None:
        await self._put("persist_user_data", "user_id", user_id, data)

    async def persist_chat_data(self, chat_id: int, data: str | None) -> None:
        await self._put("persist_chat_data", "chat_id", chat_id, data)

    async def persist_blob(self, name: str, data: str | None) -> None:
        await self._put("persist_blobs", "name", name, data)

    async def persist_conversation(self, name: str, key: str, state: str | None) -> None:
        if state is None:
            await self._run(
                "DELETE FROM persist_conversations WHERE name = ? AND key = ?", (name, key)
            )
        else:
            await self._run(
                """INSERT INTO persist_conversations (name, key, state) VALUES (?, ?, ?)
                ON CONFLICT (name, key) DO UPDATE SET state = excluded.state""",
                (name, key, state),
            )

    async def _put(self, table: str, key_column: str, key: int | str, data: str | None) -> None:
        """Upsert one JSON document (skipping the write when unchanged), or delete it for None."""
        if data is None:
            await self._run(f"DELETE FROM {table} WHERE {key_column} = ?", (key,))
        else:
            await self._run(
                f"""INSERT INTO {table} ({key_column}, data) VALUES (?, ?)
                ON CONFLICT ({key_column}) DO UPDATE SET data = excluded.data
                WHERE data IS NOT excluded.data""",
                (key, data),
            )


_HELD = "held_updates"


async def _close_quietly(db: aiosqlite.Connection) -> None:
    """Close one connection; its thread ends even when SQLite's close reports an error."""
    try:
        await db.close()
    except (sqlite3.Error, ValueError) as exc:
        log.warning("closing the database reported: %s", exc)


# A conversation key is a JSON array of chat/user (and maybe message) ids.
_HAS_USER_KEY = "EXISTS (SELECT 1 FROM json_each(persist_conversations.key) WHERE value = :user_id)"


def _paths(rows: Sequence[sqlite3.Row]) -> tuple[Path, ...]:
    return tuple(Path(r["method_id"], _dt(r["chosen_at"]), _bits(r["done_steps"])) for r in rows)


def _mark_blocked(db: sqlite3.Connection, user_id: int, now: datetime) -> None:
    db.execute(
        "UPDATE users SET blocked = 1, blocked_at = ? WHERE user_id = ? AND blocked = 0",
        (_ts(now), user_id),
    )


# --- conversions --------------------------------------------------------------------------------


def _ts(moment: datetime) -> int:
    """Aware datetime to unix seconds; a naive one is a bug (whose clock?), so it is refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: pass an aware UTC datetime")
    return int(moment.timestamp())


def _dt(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _bits(mask: int) -> frozenset[int]:
    return frozenset(i for i in range(MAX_STEPS) if mask >> i & 1)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _check_schedule(weekday: int, hour: int, minute: int) -> None:
    if not (0 <= weekday <= 6 and 0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValueError(f"bad schedule: weekday={weekday} hour={hour} minute={minute}")


def _user(row: sqlite3.Row) -> User:
    return User(
        user_id=row["user_id"],
        language=row["language"],
        language_hint=row["language_hint"],
        first_seen=_dt(row["first_seen"]),
        last_seen=_dt(row["last_seen"]),
        blocked=bool(row["blocked"]),
        blocked_at=None if row["blocked_at"] is None else _dt(row["blocked_at"]),
    )


def _subscription(row: sqlite3.Row) -> Subscription:
    return Subscription(
        user_id=row["user_id"],
        method_id=row["method_id"],
        position=row["position"],
        next_due=_dt(row["next_due"]),
        weekday=row["weekday"],
        hour=row["hour"],
        minute=row["minute"],
        active=bool(row["active"]),
        paused=bool(row["paused"]),
        subscribed_at=_dt(row["subscribed_at"]),
    )


def _group(row: sqlite3.Row) -> Group:
    return Group(row["chat_id"], row["title"], row["language"], _dt(row["added_at"]))


__all__ = [
    "ACTIVE_DAYS",
    "MAX_PATHS",
    "MAX_STEPS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AddPathResult",
    "Broadcast",
    "BroadcastClaim",
    "DeliveryStatus",
    "Group",
    "Path",
    "QuizResult",
    "SQLiteStore",
    "Stats",
    "Store",
    "Subscription",
    "TipClaim",
    "User",
    "migrate",
    "open_store",
]
