"""`Store` in SQL written once, for every backend (`bot.store.database.Database`).

The statements use what SQLite and PostgreSQL share: `:name` parameters, ON CONFLICT upserts,
RETURNING, `count(*) FILTER (WHERE …)`, true/false. Times are integer unix seconds, booleans are
compared with `= true` (an index on an INTEGER column in SQLite still serves it).

Proactive sending (weekly tips, admin broadcasts) is durable and at-least-once: rows are claimed
with a lease that names its owner (the process) and an expiry, sent, then completed in one
transaction. A crash between sending and completing lets the lease run out (or the next leader
free it) and the same message is sent again: at most the in-flight messages repeat. Only the
owner releases a lease.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.store.database import Database, Row, Statements
from bot.store.memory import UserMemory
from bot.store.records import (
    ACTIVE_DAYS,
    MAX_PATHS,
    MAX_STEPS,
    RECENT_USERS,
    TOUCH_INTERVAL,
    UNANSWERED_DAYS,
    AddPathResult,
    AdminDraft,
    Broadcast,
    BroadcastClaim,
    CardFileKey,
    DeliveryStatus,
    Group,
    LeaseResult,
    Path,
    QuizResult,
    Stats,
    Subscription,
    TipClaim,
    User,
)

SQL_PATHS = """SELECT method_id, chosen_at, done_steps FROM paths
WHERE user_id = :user_id ORDER BY chosen_at, method_id"""
# The statements run for (nearly) every update or dispatch run; tests check their query plans.
SQL_TOUCH_USER = """
INSERT INTO users (user_id, language_hint, first_seen, last_seen)
VALUES (:user_id, :hint, :now, :now)
ON CONFLICT (user_id) DO UPDATE SET
    last_seen = excluded.last_seen,
    language_hint = coalesce(excluded.language_hint, users.language_hint),
    blocked = false,
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
WHERE s.active = true AND s.paused = false AND s.next_due <= :now
    AND (s.claimed_until IS NULL OR s.claimed_until <= :now)
    AND u.blocked = false
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
# Send-budget slots older than this many are deleted now and then.
_BUDGET_SLOTS_KEPT = 50


class SQLStore:
    """Every `Store` method, over a backend's connections (`Database`)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.backend = db.name
        # Recent users are answered from memory only once `watch_changes` knows that no other
        # process's change can go unnoticed.
        self._memory = UserMemory(0)
        self._budget_grants = 0

    async def watch_changes(self) -> None:
        """Keep recent users in memory, forgetting each one another process changes."""
        if await self._db.watch(self._changed_elsewhere):
            self._memory = UserMemory(RECENT_USERS)

    def _changed_elsewhere(self, user_id: int | None) -> None:
        if user_id is None:
            self._memory = UserMemory(0)
        else:
            self._memory.forget(user_id)

    @asynccontextmanager
    async def _changing(self, user_id: int, *, paths_only: bool = False) -> AsyncIterator[None]:
        """Around every write to a user's row or paths: forgotten here, announced to others."""
        with self._memory.changing(user_id, paths_only=paths_only):
            yield
        await self._db.announce(user_id)

    @property
    def database(self) -> Database:
        return self._db

    async def close(self) -> None:
        await self._db.close()

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
        rows = await self._db.fetch(
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
        rows = await self._db.read(SQL_GET_USER, {"user_id": user_id})
        if not rows:
            return None
        user = _user(rows[0])
        self._memory.remember(user_id, version, user=user)
        return user

    async def set_language(self, user_id: int, language: str, *, now: datetime) -> None:
        """Creates the user if needed, so choosing a language never fails on a fresh user."""
        async with self._changing(user_id):
            await self._db.execute(
                """INSERT INTO users (user_id, language, first_seen, last_seen)
                VALUES (:user_id, :language, :now, :now)
                ON CONFLICT (user_id) DO UPDATE SET language = excluded.language""",
                {"user_id": user_id, "language": language, "now": _ts(now)},
            )

    async def set_blocked(self, user_id: int, blocked: bool, *, now: datetime) -> None:
        """Blocking pauses all the user's subscriptions; unblocking resumes them (a trigger)."""
        async with self._changing(user_id):
            await self._db.execute(
                """UPDATE users SET blocked = :blocked,
                    blocked_at = CASE WHEN :blocked THEN coalesce(blocked_at, :now) END
                WHERE user_id = :user_id""",
                {"user_id": user_id, "blocked": blocked, "now": _ts(now)},
            )

    # paths

    async def list_paths(self, user_id: int) -> list[Path]:
        remembered = self._memory.get(user_id)
        if remembered is not None and remembered.paths is not None:
            return list(remembered.paths)
        version = self._memory.version(user_id)
        paths = _paths(await self._db.read(SQL_PATHS, {"user_id": user_id}))
        self._memory.remember(user_id, version, paths=paths)
        return list(paths)

    async def add_path(self, user_id: int, method_id: str, *, now: datetime) -> AddPathResult:
        """Follow a method, unless already followed or MAX_PATHS are followed. The user must exist."""
        key = {"user_id": user_id}
        async with self._changing(user_id, paths_only=True), self._db.transaction() as tx:
            if self._db.lock_row:  # PostgreSQL: two adds at once must not both pass the count
                await tx.fetch(
                    f"SELECT user_id FROM users WHERE user_id = :user_id{self._db.lock_row}", key
                )
            rows = await tx.fetch(SQL_PATHS, key)
            chosen = {r["method_id"] for r in rows}
            if method_id in chosen:
                result = AddPathResult.ALREADY
            elif len(chosen) >= MAX_PATHS:
                result = AddPathResult.FULL
            else:
                await tx.execute(
                    """INSERT INTO paths (user_id, method_id, chosen_at)
                        VALUES (:user_id, :method_id, :now)""",
                    {"user_id": user_id, "method_id": method_id, "now": _ts(now)},
                )
                result = AddPathResult.ADDED
                rows = await tx.fetch(SQL_PATHS, key)
        # Read in the same transaction: the card shown next needs no query.
        self._memory.remember(user_id, self._memory.version(user_id), paths=_paths(rows))
        return result

    async def remove_path(self, user_id: int, method_id: str) -> bool:
        async with self._changing(user_id, paths_only=True):
            changed = await self._db.execute(
                "DELETE FROM paths WHERE user_id = :user_id AND method_id = :method_id",
                {"user_id": user_id, "method_id": method_id},
            )
        return changed > 0

    async def set_step(
        self, user_id: int, method_id: str, step_index: int, *, done: bool
    ) -> frozenset[int]:
        """Mark one step done or not done; doing it again changes nothing. Returns the done steps;
        raises LookupError if the user does not follow the method."""
        if not 0 <= step_index < MAX_STEPS:
            raise ValueError(f"step_index must be 0..{MAX_STEPS - 1}, got {step_index}")
        async with self._changing(user_id, paths_only=True):
            rows = await self._db.fetch(
                """UPDATE paths
                SET done_steps = CASE WHEN :done THEN done_steps | (CAST(1 AS BIGINT) << :step)
                    ELSE done_steps & ~(CAST(1 AS BIGINT) << :step) END
                WHERE user_id = :user_id AND method_id = :method_id RETURNING done_steps""",
                {"user_id": user_id, "method_id": method_id, "step": step_index, "done": done},
            )
        if not rows:
            raise LookupError(f"user {user_id} does not follow {method_id!r}")
        return _bits(rows[0][0])

    # quiz

    async def save_quiz_result(
        self, user_id: int, answers: Mapping[str, str], ranking: Sequence[str], *, now: datetime
    ) -> None:
        """Keep only the latest result: retaking the quiz replaces it. The user must exist."""
        await self._db.execute(
            """INSERT INTO quiz_results (user_id, answers, ranking, taken_at)
            VALUES (:user_id, :answers, :ranking, :now)
            ON CONFLICT (user_id) DO UPDATE SET answers = excluded.answers,
                ranking = excluded.ranking, taken_at = excluded.taken_at""",
            {
                "user_id": user_id,
                "answers": _json(dict(answers)),
                "ranking": _json(list(ranking)),
                "now": _ts(now),
            },
        )

    async def get_quiz_result(self, user_id: int) -> QuizResult | None:
        rows = await self._db.read(
            "SELECT answers, ranking, taken_at FROM quiz_results WHERE user_id = :user_id",
            {"user_id": user_id},
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
            "reset": reset_position,
        }
        async with self._db.transaction() as tx:
            rows = await tx.fetch(
                f"""INSERT INTO subscriptions
                    (user_id, method_id, next_due, weekday, hour, minute, paused, subscribed_at)
                VALUES (:user_id, :method_id, :due, :weekday, :hour, :minute,
                    coalesce((SELECT blocked FROM users WHERE user_id = :user_id), false), :now)
                ON CONFLICT (user_id, method_id) DO UPDATE SET
                    position = CASE WHEN :reset THEN 0 ELSE subscriptions.position END,
                    next_due = excluded.next_due, weekday = excluded.weekday,
                    hour = excluded.hour, minute = excluded.minute, active = true,
                    paused = excluded.paused, subscribed_at = excluded.subscribed_at
                WHERE subscriptions.active = false OR :reset
                RETURNING {_SUBSCRIPTION_COLUMNS}""",
                params,
            )
            if not rows:
                rows = await tx.fetch(
                    f"""SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions
                    WHERE user_id = :user_id AND method_id = :method_id""",
                    params,
                )
        return _subscription(rows[0])

    async def unsubscribe(self, user_id: int, method_id: str | None = None) -> int:
        """Stop tips for one method (or all when None), keeping the position; returns how many."""
        return await self._db.execute(
            """UPDATE subscriptions SET active = false
            WHERE user_id = :user_id AND active = true
                AND (CAST(:method_id AS TEXT) IS NULL OR method_id = :method_id)""",
            {"user_id": user_id, "method_id": method_id},
        )

    async def list_subscriptions(self, user_id: int) -> list[Subscription]:
        """All of the user's subscriptions, stopped ones included (see `active`)."""
        rows = await self._db.read(
            f"""SELECT {_SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE user_id = :user_id
            ORDER BY method_id""",
            {"user_id": user_id},
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
        changed = await self._db.execute(
            """UPDATE subscriptions SET weekday = :weekday, hour = :hour, minute = :minute,
                next_due = :due
            WHERE user_id = :user_id AND method_id = :method_id""",
            {
                "weekday": weekday,
                "hour": hour,
                "minute": minute,
                "due": _ts(next_due),
                "user_id": user_id,
                "method_id": method_id,
            },
        )
        return changed > 0

    # tip dispatch

    async def claim_due_tips(
        self, *, now: datetime, limit: int, lease_seconds: float, owner: str
    ) -> list[TipClaim]:
        """Lease up to `limit` due tips, oldest first, to `owner` (one transaction).

        A claim that is neither completed nor released before the lease ends becomes due again.
        Two processes claiming at once get different tips (SKIP LOCKED on PostgreSQL).
        """
        until = _ts(now + timedelta(seconds=lease_seconds))
        rows = await self._claim(
            SQL_DUE_TIPS,
            "s",
            "subscriptions",
            ("user_id", "method_id"),
            now=now,
            limit=limit,
            until=until,
            owner=owner,
        )
        return [
            TipClaim(
                r["user_id"],
                r["method_id"],
                r["position"],
                r["language"],
                _dt(until),
                _dt(r["next_due"]),
                r["weekday"],
                r["hour"],
                r["minute"],
                None if r["done_steps"] is None else _bits(r["done_steps"]),
                owner,
            )
            for r in rows
        ]

    async def _claim(
        self,
        select: str,
        alias: str,
        table: str,
        key: tuple[str, str],
        *,
        now: datetime,
        limit: int,
        until: int,
        owner: str,
    ) -> list[Row]:
        """Select due rows (`select`, its claimed table as `alias`) and lease them to `owner`
        until `until`, in one transaction; rows another process holds locked are skipped."""
        async with self._db.transaction() as tx:
            rows = await tx.fetch(
                select + self._db.skip_locked.format(table=alias), {"now": _ts(now), "limit": limit}
            )
            await tx.executemany(
                f"""UPDATE {table} SET claimed_until = :until, claimed_by = :owner
                WHERE {key[0]} = :first AND {key[1]} = :second""",
                [
                    {"until": until, "owner": owner, "first": r[key[0]], "second": r[key[1]]}
                    for r in rows
                ],
            )
        return rows

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
        (active = false, so re-subscribing needs `reset_position=True` to get tips again). BLOCKED
        also marks the user blocked, which pauses all their subscriptions. FAILED keeps the
        position. If `claim.position >= tip_count` there is nothing to send: call `unsubscribe`.
        The lease ends only if it is still the claim's (another owner's is left alone).
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
            "advance": sent,
            "last": sent and claim.position + 1 >= tip_count,
            "owner": claim.owner,
        }
        async with (
            self._changing(claim.user_id),  # BLOCKED changes the users row
            self._db.transaction() as tx,
        ):
            await tx.execute(
                """INSERT INTO deliveries (user_id, method_id, position, sent_at, status)
                    SELECT :user_id, :method_id, :position, :now, :status
                    WHERE EXISTS (SELECT 1 FROM users WHERE user_id = :user_id)""",
                params,
            )
            # Advance only from the claimed position: a repeated completion skips no tip.
            await tx.execute(
                """UPDATE subscriptions SET
                        active = CASE WHEN :last AND position = :position
                            THEN false ELSE active END,
                        position = CASE WHEN :advance AND position = :position
                            THEN position + 1 ELSE position END,
                        next_due = :due,
                        claimed_until = CASE WHEN claimed_by = :owner
                            THEN NULL ELSE claimed_until END,
                        claimed_by = CASE WHEN claimed_by = :owner THEN NULL ELSE claimed_by END
                    WHERE user_id = :user_id AND method_id = :method_id""",
                params,
            )
            if status is DeliveryStatus.BLOCKED:
                await _mark_blocked(tx, claim.user_id, now)

    async def release_tip(self, claim: TipClaim, *, retry_at: datetime) -> None:
        """Give a claim back untouched (network trouble, 5xx, flood control): retry at `retry_at`.
        Only while the lease is still the claim's."""
        await self._db.execute(
            """UPDATE subscriptions SET claimed_until = NULL, claimed_by = NULL, next_due = :due
            WHERE user_id = :user_id AND method_id = :method_id AND claimed_by = :owner""",
            {
                "due": _ts(retry_at),
                "user_id": claim.user_id,
                "method_id": claim.method_id,
                "owner": claim.owner,
            },
        )

    async def release_claims(self, owner: str | None) -> int:
        """Free every lease `owner` holds (None: anyone's), of tips and broadcast recipients;
        returns how many.

        For a process that stops or starts (its own), for a new dispatcher leader taking over
        from one whose leadership ran out (it died, or lost the database), and at a SQLite start
        (None: one process uses the file): those messages go out now rather than when their
        leases end. A released broadcast retry ("not before") is simply tried again early.
        """
        params = {"owner": owner}
        mine = "(CAST(:owner AS TEXT) IS NULL OR claimed_by = :owner)"
        async with self._db.transaction() as tx:
            tips = await tx.execute(
                f"""UPDATE subscriptions SET claimed_until = NULL, claimed_by = NULL
                WHERE claimed_until IS NOT NULL AND {mine}""",
                params,
            )
            targets = await tx.execute(
                f"""UPDATE broadcast_targets SET claimed_until = NULL, claimed_by = NULL
                WHERE status = 'pending' AND claimed_until IS NOT NULL AND {mine}""",
                params,
            )
        return tips + targets

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
        draft is not made again, even by two processes at once: its id is returned.
        """
        async with self._db.transaction() as tx:
            rows = await tx.fetch(
                """INSERT INTO broadcasts (text, language, created_by, created_at, draft)
                VALUES (:text, :language, :created_by, :now, :draft)
                ON CONFLICT (created_by, draft) WHERE draft IS NOT NULL DO NOTHING
                RETURNING id""",
                {
                    "text": text,
                    "language": language,
                    "created_by": created_by,
                    "now": _ts(now),
                    "draft": draft,
                },
            )
            if not rows:
                made = await tx.fetch(
                    "SELECT id FROM broadcasts WHERE created_by = :created_by AND draft = :draft",
                    {"created_by": created_by, "draft": draft},
                )
                return int(made[0][0])
            broadcast_id = int(rows[0][0])
            await tx.execute(
                """INSERT INTO broadcast_targets (broadcast_id, user_id)
                SELECT :id, user_id FROM users
                WHERE blocked = false AND (CAST(:language AS TEXT) IS NULL
                    OR language = :language OR (:unset AND language IS NULL))""",
                {"id": broadcast_id, "language": language, "unset": include_unset_language},
            )
        return broadcast_id

    async def broadcast_of_draft(self, created_by: int, draft: int) -> int | None:
        """The broadcast made from this admin's draft, if one was."""
        rows = await self._db.fetch(
            "SELECT id FROM broadcasts WHERE created_by = :created_by AND draft = :draft",
            {"created_by": created_by, "draft": draft},
        )
        return int(rows[0][0]) if rows else None

    async def claim_broadcast_targets(
        self, *, now: datetime, limit: int, lease_seconds: float, owner: str
    ) -> list[BroadcastClaim]:
        """Lease up to `limit` pending recipients of unfinished broadcasts, oldest broadcast first."""
        until = _ts(now + timedelta(seconds=lease_seconds))
        rows = await self._claim(
            SQL_PENDING_TARGETS,
            "t",
            "broadcast_targets",
            ("broadcast_id", "user_id"),
            now=now,
            limit=limit,
            until=until,
            owner=owner,
        )
        return [
            BroadcastClaim(
                r["broadcast_id"], r["user_id"], r["text"], r["language"], _dt(until), owner
            )
            for r in rows
        ]

    async def complete_broadcast_target(
        self, claim: BroadcastClaim, status: DeliveryStatus, *, now: datetime
    ) -> None:
        """Record the outcome for one recipient; BLOCKED also marks the user blocked."""
        status = DeliveryStatus(status)
        async with (
            self._changing(claim.user_id),  # BLOCKED changes the users row
            self._db.transaction() as tx,
        ):
            await tx.execute(
                """UPDATE broadcast_targets SET status = :status, claimed_until = NULL,
                        claimed_by = NULL
                    WHERE broadcast_id = :broadcast_id AND user_id = :user_id""",
                {
                    "status": status.value,
                    "broadcast_id": claim.broadcast_id,
                    "user_id": claim.user_id,
                },
            )
            if status is DeliveryStatus.BLOCKED:
                await _mark_blocked(tx, claim.user_id, now)

    async def release_broadcast_target(self, claim: BroadcastClaim, *, retry_at: datetime) -> None:
        """Give a recipient back as pending; nobody claims it before `retry_at`."""
        # claimed_until doubles as "not before": a lease in the future hides the row until then.
        await self._db.execute(
            """UPDATE broadcast_targets SET claimed_until = :retry_at, claimed_by = NULL
            WHERE broadcast_id = :broadcast_id AND user_id = :user_id AND status = 'pending'
                AND claimed_by = :owner""",
            {
                "retry_at": _ts(retry_at),
                "broadcast_id": claim.broadcast_id,
                "user_id": claim.user_id,
                "owner": claim.owner,
            },
        )

    async def broadcast_report(self, broadcast_id: int) -> dict[str, int]:
        """Recipients per status: always the keys pending, sent, blocked, failed."""
        rows = await self._db.fetch(
            """SELECT status, count(*) FROM broadcast_targets
            WHERE broadcast_id = :id GROUP BY status""",
            {"id": broadcast_id},
        )
        report = {"pending": 0, **{s.value: 0 for s in DeliveryStatus}}
        report.update({r[0]: int(r[1]) for r in rows})
        return report

    async def finish_broadcast(self, broadcast_id: int, *, now: datetime) -> None:
        """Mark done (or cancel): recipients still pending are no longer claimed."""
        await self._db.execute(
            "UPDATE broadcasts SET finished_at = :now WHERE id = :id AND finished_at IS NULL",
            {"now": _ts(now), "id": broadcast_id},
        )

    async def unfinished_broadcasts(self) -> list[Broadcast]:
        rows = await self._db.fetch(
            """SELECT id, text, language, created_by, created_at, finished_at FROM broadcasts
            WHERE finished_at IS NULL ORDER BY id"""
        )
        return [
            Broadcast(
                r["id"], r["text"], r["language"], r["created_by"], _dt(r["created_at"]), None
            )
            for r in rows
        ]

    async def admin_draft(self, user_id: int) -> AdminDraft | None:
        rows = await self._db.fetch(
            "SELECT draft, text FROM admin_drafts WHERE user_id = :user_id", {"user_id": user_id}
        )
        if not rows:
            return None
        return AdminDraft(rows[0]["draft"] is None, rows[0]["draft"], rows[0]["text"])

    async def set_admin_draft(self, user_id: int, draft: AdminDraft | None) -> None:
        """Keep (or, with None, drop) an admin's draft: in the database, so whichever process
        gets their next message or tap knows it."""
        if draft is None:
            await self._db.execute(
                "DELETE FROM admin_drafts WHERE user_id = :user_id", {"user_id": user_id}
            )
            return
        await self._db.execute(
            """INSERT INTO admin_drafts (user_id, draft, text) VALUES (:user_id, :draft, :text)
            ON CONFLICT (user_id) DO UPDATE SET draft = excluded.draft, text = excluded.text""",
            {
                "user_id": user_id,
                "draft": None if draft.writing else draft.draft,
                "text": None if draft.writing else draft.text,
            },
        )

    # groups

    async def upsert_group(self, chat_id: int, title: str, *, now: datetime) -> Group:
        """Remember a group the bot is in; a known group keeps its language and added_at."""
        rows = await self._db.fetch(
            """INSERT INTO groups (chat_id, title, added_at) VALUES (:chat_id, :title, :now)
            ON CONFLICT (chat_id) DO UPDATE SET title = excluded.title
            RETURNING chat_id, title, language, added_at""",
            {"chat_id": chat_id, "title": title, "now": _ts(now)},
        )
        return _group(rows[0])

    async def set_group_language(self, chat_id: int, language: str) -> bool:
        changed = await self._db.execute(
            "UPDATE groups SET language = :language WHERE chat_id = :chat_id",
            {"language": language, "chat_id": chat_id},
        )
        return changed > 0

    async def get_group(self, chat_id: int) -> Group | None:
        rows = await self._db.read(
            "SELECT chat_id, title, language, added_at FROM groups WHERE chat_id = :chat_id",
            {"chat_id": chat_id},
        )
        return _group(rows[0]) if rows else None

    async def remove_group(self, chat_id: int) -> bool:
        changed = await self._db.execute(
            "DELETE FROM groups WHERE chat_id = :chat_id", {"chat_id": chat_id}
        )
        return changed > 0

    async def move_group(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group became a supergroup (a new chat id): its settings go with it.

        Safe to repeat (Telegram tells both chats); settings already kept under the new id win.
        """
        params = {"old": old_chat_id, "new": new_chat_id}
        async with self._db.transaction() as tx:
            await tx.execute(
                """UPDATE groups SET chat_id = :new WHERE chat_id = :old
                AND NOT EXISTS (SELECT 1 FROM groups WHERE chat_id = :new)""",
                params,
            )
            await tx.execute("DELETE FROM groups WHERE chat_id = :old", params)

    # data rights and statistics

    async def export_user(self, user_id: int) -> dict[str, Any]:
        """Everything stored about the user, as JSON-ready data (times as ISO 8601 strings)."""
        user = await self.get_user(user_id)
        paths = await self.list_paths(user_id)
        quiz = await self.get_quiz_result(user_id)
        subscriptions = await self.list_subscriptions(user_id)
        key = {"user_id": user_id}
        deliveries = await self._db.fetch(
            """SELECT count(*) AS n, max(sent_at) AS last FROM deliveries
            WHERE user_id = :user_id AND status = 'sent'""",
            key,
        )
        broadcasts = await self._db.fetch(
            """SELECT count(*) FROM broadcast_targets
            WHERE user_id = :user_id AND status = 'sent'""",
            key,
        )
        draft = await self.admin_draft(user_id)
        last_sent = deliveries[0]["last"]
        return {
            "user": None if user is None else _export_user(user),
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
            "subscriptions": [_export_subscription(s) for s in subscriptions],
            "tips_sent": {
                "count": int(deliveries[0]["n"]),
                "last_sent_at": None if last_sent is None else _dt(last_sent).isoformat(),
            },
            "broadcasts_received": int(broadcasts[0][0]),
            "broadcast_draft": None
            if draft is None
            else {"writing": draft.writing, "text": draft.text},
        }

    async def forget_user(self, user_id: int) -> None:
        """Delete every row about the user, in one transaction.

        The user row cascades to paths, quiz, subscriptions, deliveries and broadcast targets;
        an admin's draft goes too. Broadcasts they wrote as an admin stay, without their id.
        """
        params = {"user_id": user_id}
        async with self._changing(user_id), self._db.transaction() as tx:
            await tx.execute("DELETE FROM users WHERE user_id = :user_id", params)
            await tx.execute("DELETE FROM admin_drafts WHERE user_id = :user_id", params)
            await tx.execute(
                "UPDATE broadcasts SET created_by = NULL WHERE created_by = :user_id", params
            )

    async def record_unanswered(self, query: str, *, now: datetime) -> None:
        """Count a question (already masked by the caller); forget ones not asked for a while."""
        params = {
            "query": query,
            "now": _ts(now),
            "old": _ts(now - timedelta(days=UNANSWERED_DAYS)),
        }
        async with self._db.transaction() as tx:
            await tx.execute(
                """INSERT INTO unanswered (query, asked, first_asked, last_asked)
                VALUES (:query, 1, :now, :now)
                ON CONFLICT (query) DO UPDATE SET asked = unanswered.asked + 1,
                    last_asked = excluded.last_asked""",
                params,
            )
            await tx.execute("DELETE FROM unanswered WHERE last_asked < :old", params)

    async def top_unanswered(self, *, limit: int, now: datetime) -> list[tuple[str, int]]:
        rows = await self._db.read(
            """SELECT query, asked FROM unanswered WHERE last_asked >= :since
            ORDER BY asked DESC, last_asked DESC LIMIT :limit""",
            {"since": _ts(now - timedelta(days=UNANSWERED_DAYS)), "limit": limit},
        )
        return [(row[0], row[1]) for row in rows]

    async def stats(self, *, now: datetime) -> Stats:
        since = {"since": _ts(now - timedelta(days=ACTIVE_DAYS))}
        users = (
            await self._db.fetch(
                """SELECT count(*), count(*) FILTER (WHERE last_seen >= :since),
                    count(*) FILTER (WHERE blocked = true)
                FROM users""",
                since,
            )
        )[0]
        languages = await self._db.fetch("SELECT language, count(*) FROM users GROUP BY language")
        methods = await self._db.fetch(
            "SELECT method_id, count(*) FROM paths GROUP BY method_id ORDER BY method_id"
        )
        subscriptions = (
            await self._db.fetch(
                """SELECT count(*) FILTER (WHERE active = true AND paused = false),
                    count(*) FILTER (WHERE active = true AND paused = true)
                FROM subscriptions"""
            )
        )[0]
        tips = await self._db.fetch(
            "SELECT count(*) FROM deliveries WHERE sent_at >= :since AND status = 'sent'", since
        )
        groups = await self._db.fetch("SELECT count(*) FROM groups")
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
        rows = await self._db.read(
            """SELECT file_id FROM card_files
            WHERE card = :card AND language = :language AND digest = :digest""",
            {"card": key.card, "language": key.language, "digest": key.digest},
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
        async with self._db.transaction() as tx:
            await tx.execute(
                """DELETE FROM card_files WHERE card = :card AND language = :language
                AND digest <> :digest""",
                params,
            )
            await tx.execute(
                """INSERT INTO card_files (card, language, digest, file_id, uploaded_at)
                VALUES (:card, :language, :digest, :file_id, :now)
                ON CONFLICT (card, language, digest) DO UPDATE SET
                    file_id = excluded.file_id, uploaded_at = excluded.uploaded_at""",
                params,
            )

    # what the running processes share

    async def hold_updates(self, raw: Sequence[str]) -> None:
        """Keep these updates for the next start, after any kept already (oldest first)."""
        if raw:
            await self._db.executemany(
                "INSERT INTO held_updates (data) VALUES (:data)", [{"data": r} for r in raw]
            )

    async def take_held_updates(self) -> list[str]:
        """The updates a stop handed back, oldest first; they are no longer kept."""
        rows = await self._db.fetch("DELETE FROM held_updates RETURNING id, data")
        return [str(r["data"]) for r in sorted(rows, key=lambda r: int(r["id"]))]

    async def acquire_lease(
        self, name: str, owner: str, *, now: datetime, ttl_seconds: float, take_over: bool = False
    ) -> LeaseResult:
        """Take the named lease, or renew it, for `ttl_seconds`: unless another owner holds it
        and its time has not run out (or `take_over`: the caller knows that owner is gone).
        Says whose lease it took over, if anyone's."""
        params = {
            "name": name,
            "owner": owner,
            "now": _ts(now),
            "expires": _ts(now + timedelta(seconds=ttl_seconds)),
        }
        async with self._db.transaction() as tx:
            # The row exists before it is locked: two processes asking at once take turns.
            await tx.execute(
                """INSERT INTO leases (name, owner, expires_at) VALUES (:name, '', 0)
                ON CONFLICT (name) DO NOTHING""",
                params,
            )
            rows = await tx.fetch(
                f"SELECT owner, expires_at FROM leases WHERE name = :name{self._db.lock_row}",
                params,
            )
            holder = rows[0]["owner"] or None
            live = holder not in (None, owner) and rows[0]["expires_at"] > params["now"]
            if live and not take_over:
                return LeaseResult(held=False, holder=holder)
            await tx.execute(
                """INSERT INTO leases (name, owner, expires_at) VALUES (:name, :owner, :expires)
                ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,
                    expires_at = excluded.expires_at""",
                params,
            )
        return LeaseResult(
            held=True, holder=owner, taken_over_from=None if holder == owner else holder
        )

    async def release_lease(self, name: str, owner: str) -> None:
        """Give the named lease up (a stopping leader), if `owner` still holds it."""
        await self._db.execute(
            "DELETE FROM leases WHERE name = :name AND owner = :owner",
            {"name": name, "owner": owner},
        )

    async def take_send_tokens(self, slot: int, wanted: int, *, limit: int) -> int:
        """Up to `wanted` of the `limit` messages all processes together may send in time slot
        `slot` (the caller's clock, e.g. tenths of a second); how many it may send (0 = none
        left in this slot)."""
        async with self._db.transaction() as tx:
            await tx.execute(
                "INSERT INTO send_budget (slot, used) VALUES (:slot, 0) ON CONFLICT (slot) DO NOTHING",
                {"slot": slot},
            )
            rows = await tx.fetch(
                f"SELECT used FROM send_budget WHERE slot = :slot{self._db.lock_row}",
                {"slot": slot},
            )
            used = int(rows[0][0])
            granted = max(0, min(wanted, limit - used))
            if granted:
                await tx.execute(
                    "UPDATE send_budget SET used = :used WHERE slot = :slot",
                    {"slot": slot, "used": used + granted},
                )
            self._budget_grants += 1
            if self._budget_grants % _BUDGET_SLOTS_KEPT == 0:
                await tx.execute(
                    "DELETE FROM send_budget WHERE slot < :old",
                    {"old": slot - _BUDGET_SLOTS_KEPT},
                )
        return granted


async def _mark_blocked(tx: Statements, user_id: int, now: datetime) -> None:
    await tx.execute(
        """UPDATE users SET blocked = true, blocked_at = :now
        WHERE user_id = :user_id AND blocked = false""",
        {"now": _ts(now), "user_id": user_id},
    )


def _paths(rows: Sequence[Row]) -> tuple[Path, ...]:
    return tuple(Path(r["method_id"], _dt(r["chosen_at"]), _bits(r["done_steps"])) for r in rows)


def _export_user(user: User) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "language": user.language,
        "language_hint": user.language_hint,
        "first_seen": user.first_seen.isoformat(),
        "last_seen": user.last_seen.isoformat(),
        "blocked": user.blocked,
        "blocked_at": user.blocked_at.isoformat() if user.blocked_at else None,
    }


def _export_subscription(s: Subscription) -> dict[str, Any]:
    return {
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


def _user(row: Row) -> User:
    return User(
        user_id=row["user_id"],
        language=row["language"],
        language_hint=row["language_hint"],
        first_seen=_dt(row["first_seen"]),
        last_seen=_dt(row["last_seen"]),
        blocked=bool(row["blocked"]),
        blocked_at=None if row["blocked_at"] is None else _dt(row["blocked_at"]),
    )


def _subscription(row: Row) -> Subscription:
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


def _group(row: Row) -> Group:
    return Group(row["chat_id"], row["title"], row["language"], _dt(row["added_at"]))
