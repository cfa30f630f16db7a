"""The store: schema, migrations, every operation handlers rely on, and its failure modes."""

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

from bot.store import (
    MAX_PATHS,
    MIGRATIONS,
    SCHEMA_VERSION,
    SQL_DUE_TIPS,
    SQL_GET_USER,
    SQL_PENDING_TARGETS,
    SQL_TOUCH_USER,
    AddPathResult,
    CardFileKey,
    DeliveryStatus,
    SQLiteStore,
    migrate,
    open_store,
)

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
LATER = NOW + timedelta(hours=1)
WEEK = timedelta(days=7)
ALICE, BOB, CAROL = 1001, 1002, 1003


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = await open_store(f"sqlite:///{tmp_path}/data/bot.sqlite3")
    yield s
    await s.close()


async def _pragma(store: SQLiteStore, name: str) -> object:
    rows = await store._db.execute_fetchall(f"PRAGMA {name}")
    return next(iter(rows))[0]


async def _subscribe(store: SQLiteStore, user_id: int, method_id: str, due: datetime = NOW) -> None:
    await store.subscribe(user_id, method_id, now=NOW, weekday=0, hour=9, minute=0, first_due=due)


# --- opening --------------------------------------------------------------------------------------


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
        await open_store("postgres://x/y")


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


# --- migrations -------------------------------------------------------------------------------------

# Rows a database at each version can hold, inserted with that version's own schema.
_ROWS_AT_VERSION = {
    1: [
        "INSERT INTO users (user_id, language, language_hint, first_seen, last_seen) "
        f"VALUES ({ALICE}, 'bn', 'bn', 100, 200), ({BOB}, NULL, NULL, 100, 100)",
        f"INSERT INTO paths (user_id, method_id, chosen_at, done_steps) VALUES ({ALICE}, 'youtube', 150, 5)",
        f"""INSERT INTO quiz_results VALUES ({ALICE}, '{{"q1":"a"}}', '["youtube","writing"]', 160)""",
    ],
}
# v2 to v4 added tables and columns with defaults: the same rows are valid there.
_ROWS_AT_VERSION[2] = _ROWS_AT_VERSION[3] = _ROWS_AT_VERSION[4] = _ROWS_AT_VERSION[1]


@pytest.mark.parametrize("version", range(SCHEMA_VERSION))
async def test_migrating_from_every_earlier_version_keeps_rows(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "old.sqlite3"
    async with aiosqlite.connect(path, isolation_level=None) as db:
        await migrate(db, target=version)
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
        # The migrated database works as a new one would.
        await store.touch_user(ALICE, now=NOW)
        await _subscribe(store, ALICE, "youtube")
        assert len(await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60)) == 1
    finally:
        await store.close()


async def test_every_migration_step_is_counted() -> None:
    assert len(MIGRATIONS) == SCHEMA_VERSION >= 2


async def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        await open_store(f"sqlite:///{path}")


# --- query plans ------------------------------------------------------------------------------------


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
    store: SQLiteStore, sql: str, params: dict[str, object]
) -> None:
    rows = await store._db.execute_fetchall(f"EXPLAIN QUERY PLAN {sql}", params)
    details = [row[3] for row in rows]
    # Only a walk through an index is fine (the pending-targets index holds pending rows only).
    scans = [d for d in details if d.startswith("SCAN") and "USING" not in d]
    assert not scans, details


# --- users ------------------------------------------------------------------------------------------


async def test_touch_user_creates_then_updates(store: SQLiteStore) -> None:
    first = await store.touch_user(ALICE, now=NOW, language_hint="bn")
    assert (first.language, first.language_hint, first.first_seen, first.last_seen) == (
        None,
        "bn",
        NOW,
        NOW,
    )
    again = await store.touch_user(ALICE, now=LATER)
    assert (again.first_seen, again.last_seen, again.language_hint) == (NOW, LATER, "bn")
    await store.set_language(ALICE, "en", now=LATER)
    user = await store.get_user(ALICE)
    assert user is not None and user.language == "en"
    assert await store.get_user(BOB) is None
    assert await store.count_users() == 1


async def test_set_language_creates_unknown_user(store: SQLiteStore) -> None:
    await store.set_language(BOB, "bn", now=NOW)
    user = await store.get_user(BOB)
    assert user is not None and (user.language, user.first_seen) == ("bn", NOW)


async def test_naive_datetimes_are_refused(store: SQLiteStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        await store.touch_user(ALICE, now=datetime(2026, 1, 1))


async def test_blocking_pauses_and_writing_again_resumes(store: SQLiteStore) -> None:
    await store.touch_user(ALICE, now=NOW)
    await _subscribe(store, ALICE, "youtube")
    await store.set_blocked(ALICE, True, now=NOW)
    user = await store.get_user(ALICE)
    assert user is not None and user.blocked and user.blocked_at == NOW
    [sub] = await store.list_subscriptions(ALICE)
    assert sub.paused and sub.active
    assert await store.claim_due_tips(now=LATER, limit=10, lease_seconds=60) == []

    user = await store.touch_user(ALICE, now=LATER)
    assert not user.blocked and user.blocked_at is None
    [sub] = await store.list_subscriptions(ALICE)
    assert not sub.paused
    assert len(await store.claim_due_tips(now=LATER, limit=10, lease_seconds=60)) == 1


# --- paths ------------------------------------------------------------------------------------------


async def test_paths_limit_and_steps(store: SQLiteStore) -> None:
    await store.touch_user(ALICE, now=NOW)
    methods = ["freelancing", "writing", "youtube", "affiliate"]
    for i, method in enumerate(methods[:MAX_PATHS]):
        assert (
            await store.add_path(ALICE, method, now=NOW + timedelta(minutes=i))
            is AddPathResult.ADDED
        )
    assert await store.add_path(ALICE, "writing", now=LATER) is AddPathResult.ALREADY
    assert await store.add_path(ALICE, "affiliate", now=LATER) is AddPathResult.FULL
    assert [p.method_id for p in await store.list_paths(ALICE)] == methods[:MAX_PATHS]

    assert await store.set_step(ALICE, "writing", 0, done=True) == {0}
    assert await store.set_step(ALICE, "writing", 0, done=True) == {0}  # a repeat changes nothing
    assert await store.set_step(ALICE, "writing", 62, done=True) == {0, 62}
    assert await store.set_step(ALICE, "writing", 0, done=False) == {62}
    assert await store.set_step(ALICE, "writing", 0, done=False) == {62}
    with pytest.raises(LookupError):
        await store.set_step(ALICE, "affiliate", 0, done=True)
    with pytest.raises(ValueError, match="step_index"):
        await store.set_step(ALICE, "writing", 63, done=True)

    assert await store.remove_path(ALICE, "writing") is True
    assert await store.remove_path(ALICE, "writing") is False
    assert await store.add_path(ALICE, "affiliate", now=LATER) is AddPathResult.ADDED
    paths = {p.method_id: p for p in await store.list_paths(ALICE)}
    assert paths["affiliate"].chosen_at == LATER and paths["affiliate"].done_steps == frozenset()


# --- quiz -------------------------------------------------------------------------------------------


async def test_quiz_result_is_replaced(store: SQLiteStore) -> None:
    await store.touch_user(ALICE, now=NOW)
    assert await store.get_quiz_result(ALICE) is None
    await store.save_quiz_result(ALICE, {"time": "little"}, ["stock", "youtube"], now=NOW)
    await store.save_quiz_result(ALICE, {"time": "lots", "skill": "বাংলা"}, ["writing"], now=LATER)
    result = await store.get_quiz_result(ALICE)
    assert result is not None
    assert (result.answers, result.ranking, result.taken_at) == (
        {"time": "lots", "skill": "বাংলা"},
        ("writing",),
        LATER,
    )


# --- subscriptions and tip dispatch -----------------------------------------------------------------


async def test_resubscribing_keeps_position(store: SQLiteStore) -> None:
    await store.touch_user(ALICE, now=NOW)
    await _subscribe(store, ALICE, "youtube")
    [claim] = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60)
    await store.complete_tip(
        claim, now=NOW, status=DeliveryStatus.SENT, next_due=NOW + WEEK, tip_count=5
    )

    assert await store.unsubscribe(ALICE, "youtube") == 1
    assert await store.unsubscribe(ALICE, "youtube") == 0
    [sub] = await store.list_subscriptions(ALICE)
    assert (sub.active, sub.position) == (False, 1)
    assert await store.claim_due_tips(now=NOW + 2 * WEEK, limit=10, lease_seconds=60) == []

    sub = await store.subscribe(
        ALICE, "youtube", now=LATER, weekday=3, hour=20, minute=30, first_due=LATER
    )
    assert (sub.active, sub.position, sub.weekday, sub.hour, sub.minute) == (True, 1, 3, 20, 30)
    sub = await store.subscribe(
        ALICE,
        "youtube",
        now=LATER,
        weekday=3,
        hour=20,
        minute=30,
        first_due=LATER,
        reset_position=True,
    )
    assert sub.position == 0


async def test_subscribing_again_while_on_changes_nothing(store: SQLiteStore) -> None:
    """A second tap on "subscribe" (or two in flight) must not make this week's tip due again."""
    await store.touch_user(ALICE, now=NOW)
    await _subscribe(store, ALICE, "youtube")
    [claim] = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60)
    await store.complete_tip(
        claim, now=NOW, status=DeliveryStatus.SENT, next_due=NOW + WEEK, tip_count=5
    )
    [before] = await store.list_subscriptions(ALICE)
    again = await store.subscribe(
        ALICE, "youtube", now=LATER, weekday=3, hour=20, minute=30, first_due=LATER
    )
    assert again == before and (again.position, again.next_due) == (1, NOW + WEEK)
    assert await store.list_subscriptions(ALICE) == [before]
    assert await store.claim_due_tips(now=LATER, limit=10, lease_seconds=60) == []


async def test_a_due_tip_carries_the_steps_done_on_its_path(store: SQLiteStore) -> None:
    await store.touch_user(ALICE, now=NOW)
    await store.touch_user(BOB, now=NOW)
    await store.add_path(ALICE, "youtube", now=NOW)
    await store.set_step(ALICE, "youtube", 0, done=True)
    await store.set_step(ALICE, "youtube", 2, done=True)
    for user in (ALICE, BOB):
        await _subscribe(store, user, "youtube")
    claims = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60)
    assert {c.user_id: c.done_steps for c in claims} == {ALICE: {0, 2}, BOB: None}


async def test_unsubscribe_all_and_set_schedule(store: SQLiteStore) -> None:
    await store.touch_user(ALICE, now=NOW)
    await _subscribe(store, ALICE, "youtube")
    await _subscribe(store, ALICE, "stock")
    assert await store.set_schedule(
        ALICE, "stock", weekday=6, hour=7, minute=5, next_due=NOW + WEEK
    )
    assert not await store.set_schedule(ALICE, "writing", weekday=6, hour=7, minute=5, next_due=NOW)
    stock = (await store.list_subscriptions(ALICE))[0]
    assert (stock.method_id, stock.weekday, stock.hour, stock.minute, stock.next_due) == (
        "stock",
        6,
        7,
        5,
        NOW + WEEK,
    )
    with pytest.raises(ValueError, match="schedule"):
        await store.set_schedule(ALICE, "stock", weekday=7, hour=0, minute=0, next_due=NOW)
    assert await store.unsubscribe(ALICE) == 2
    assert not any(s.active for s in await store.list_subscriptions(ALICE))


async def test_claims_are_leased_ordered_and_limited(store: SQLiteStore) -> None:
    for i, user_id in enumerate((ALICE, BOB, CAROL)):
        await store.touch_user(user_id, now=NOW)
        await _subscribe(store, user_id, "youtube", due=NOW - timedelta(minutes=i))
    await store.set_language(BOB, "en", now=NOW)
    await _subscribe(store, ALICE, "stock", due=NOW + timedelta(minutes=5))  # not due yet

    first = await store.claim_due_tips(now=NOW, limit=2, lease_seconds=60)
    assert [(c.user_id, c.position) for c in first] == [(CAROL, 0), (BOB, 0)]
    assert first[1].language == "en" and first[0].claimed_until == NOW + timedelta(seconds=60)
    second = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60)
    assert [c.user_id for c in second] == [ALICE]
    assert (
        await store.claim_due_tips(now=NOW + timedelta(seconds=30), limit=10, lease_seconds=60)
        == []
    )


async def test_crash_before_complete_resends_only_the_in_flight_tip(store: SQLiteStore) -> None:
    await store.touch_user(ALICE, now=NOW)
    await _subscribe(store, ALICE, "youtube")
    [claim] = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60)
    # ... the tip is sent, then the process dies: nobody completes the claim.
    after_lease = NOW + timedelta(seconds=60)
    [again] = await store.claim_due_tips(now=after_lease, limit=10, lease_seconds=60)
    assert (again.method_id, again.position) == (claim.method_id, claim.position)
    await store.complete_tip(
        again, now=after_lease, status=DeliveryStatus.SENT, next_due=NOW + WEEK, tip_count=5
    )
    # A late completion of the stale claim does not skip a tip.
    await store.complete_tip(
        claim, now=after_lease, status=DeliveryStatus.SENT, next_due=NOW + WEEK, tip_count=5
    )
    [sub] = await store.list_subscriptions(ALICE)
    assert (sub.position, sub.next_due) == (1, NOW + WEEK)


async def test_complete_release_and_finish(store: SQLiteStore) -> None:
    await store.touch_user(ALICE, now=NOW)
    await _subscribe(store, ALICE, "youtube")

    [claim] = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60)
    await store.release_tip(claim, retry_at=NOW + timedelta(minutes=5))
    assert await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60) == []
    [claim] = await store.claim_due_tips(now=NOW + timedelta(minutes=5), limit=10, lease_seconds=60)
    assert claim.position == 0

    await store.complete_tip(
        claim, now=NOW, status=DeliveryStatus.FAILED, next_due=NOW + WEEK, tip_count=2
    )
    [sub] = await store.list_subscriptions(ALICE)
    assert (sub.position, sub.active) == (0, True)

    for due in (NOW + WEEK, NOW + 2 * WEEK):
        [claim] = await store.claim_due_tips(now=due, limit=10, lease_seconds=60)
        await store.complete_tip(
            claim, now=due, status=DeliveryStatus.SENT, next_due=due + WEEK, tip_count=2
        )
    [sub] = await store.list_subscriptions(ALICE)
    assert (sub.position, sub.active) == (2, False)  # all tips sent: finished
    assert await store.claim_due_tips(now=NOW + 9 * WEEK, limit=10, lease_seconds=60) == []
    export = await store.export_user(ALICE)
    assert export["tips_sent"] == {"count": 2, "last_sent_at": (NOW + 2 * WEEK).isoformat()}


async def test_blocked_delivery_blocks_the_user(store: SQLiteStore) -> None:
    await store.touch_user(ALICE, now=NOW)
    await _subscribe(store, ALICE, "youtube")
    await _subscribe(store, ALICE, "stock", due=NOW + WEEK)
    [claim] = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60)
    await store.complete_tip(
        claim, now=NOW, status=DeliveryStatus.BLOCKED, next_due=NOW + WEEK, tip_count=5
    )
    user = await store.get_user(ALICE)
    assert user is not None and user.blocked
    assert all(s.paused and s.position == 0 for s in await store.list_subscriptions(ALICE))
    assert await store.claim_due_tips(now=NOW + 3 * WEEK, limit=10, lease_seconds=60) == []


# --- broadcasts -------------------------------------------------------------------------------------


async def test_broadcast_targets_and_report(store: SQLiteStore) -> None:
    for user_id in (ALICE, BOB, CAROL, 1004):
        await store.touch_user(user_id, now=NOW)
    await store.set_language(ALICE, "bn", now=NOW)
    await store.set_language(BOB, "en", now=NOW)
    await store.set_language(1004, "bn", now=NOW)
    await store.set_blocked(1004, True, now=NOW)  # blocked users are not targeted

    bn = await store.create_broadcast("নমস্কার", language="bn", created_by=BOB, now=NOW)
    assert await store.broadcast_report(bn) == {"pending": 1, "sent": 0, "blocked": 0, "failed": 0}
    everyone = await store.create_broadcast("hi", language=None, created_by=BOB, now=NOW)
    assert (await store.broadcast_report(everyone))["pending"] == 3
    bn_and_unset = await store.create_broadcast(
        "x", language="bn", created_by=BOB, now=NOW, include_unset_language=True
    )
    assert (await store.broadcast_report(bn_and_unset))["pending"] == 2
    await store.finish_broadcast(bn_and_unset, now=NOW)
    assert [b.id for b in await store.unfinished_broadcasts()] == [bn, everyone]

    claims = await store.claim_broadcast_targets(now=NOW, limit=3, lease_seconds=60)
    assert [(c.broadcast_id, c.user_id) for c in claims] == [
        (bn, ALICE),
        (everyone, ALICE),
        (everyone, BOB),
    ]
    assert claims[0].text == "নমস্কার" and claims[2].language == "en"
    await store.complete_broadcast_target(claims[0], DeliveryStatus.SENT, now=NOW)
    await store.complete_broadcast_target(claims[1], DeliveryStatus.SENT, now=NOW)
    await store.release_broadcast_target(claims[2], retry_at=NOW + timedelta(seconds=30))

    [carol] = await store.claim_broadcast_targets(now=NOW, limit=10, lease_seconds=60)
    assert carol.user_id == CAROL
    await store.complete_broadcast_target(carol, DeliveryStatus.BLOCKED, now=NOW)
    carol_user = await store.get_user(CAROL)
    assert carol_user is not None and carol_user.blocked

    [bob] = await store.claim_broadcast_targets(
        now=NOW + timedelta(seconds=30), limit=10, lease_seconds=60
    )
    await store.complete_broadcast_target(bob, DeliveryStatus.FAILED, now=NOW)
    assert await store.claim_broadcast_targets(now=NOW + WEEK, limit=10, lease_seconds=60) == []
    assert await store.broadcast_report(everyone) == {
        "pending": 0,
        "sent": 1,
        "blocked": 1,
        "failed": 1,
    }

    await store.finish_broadcast(bn, now=LATER)
    await store.finish_broadcast(everyone, now=LATER)
    assert await store.unfinished_broadcasts() == []


async def test_a_draft_becomes_one_broadcast(store: SQLiteStore) -> None:
    for user in (ALICE, BOB):
        await store.touch_user(user, now=NOW)
    assert await store.broadcast_of_draft(ALICE, 42) is None
    first = await store.create_broadcast("hi", language=None, created_by=ALICE, now=NOW, draft=42)
    again = await store.create_broadcast("hi", language="bn", created_by=ALICE, now=LATER, draft=42)
    assert again == first == await store.broadcast_of_draft(ALICE, 42)
    assert await store.broadcast_report(first) == {
        "pending": 2,
        "sent": 0,
        "blocked": 0,
        "failed": 0,
    }
    other = await store.create_broadcast("hi", language=None, created_by=BOB, now=NOW, draft=42)
    assert other != first  # draft numbers are per admin
    assert [b.id for b in await store.unfinished_broadcasts()] == [first, other]


async def test_broadcast_snapshot_of_many_users_is_one_statement(store: SQLiteStore) -> None:
    await store._db.execute(
        """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
        INSERT INTO users (user_id, first_seen, last_seen) SELECT i, 0, 0 FROM n"""
    )
    broadcast_id = await store.create_broadcast("hi", language=None, created_by=1, now=NOW)
    assert (await store.broadcast_report(broadcast_id))["pending"] == 20000


# --- groups -----------------------------------------------------------------------------------------


async def test_groups(store: SQLiteStore) -> None:
    group = await store.upsert_group(-100, "Earners", now=NOW)
    assert (group.title, group.language, group.added_at) == ("Earners", None, NOW)
    assert await store.set_group_language(-100, "bn")
    assert not await store.set_group_language(-200, "bn")
    group = await store.upsert_group(-100, "Earners BD", now=LATER)
    assert (group.title, group.language, group.added_at) == ("Earners BD", "bn", NOW)
    assert await store.get_group(-100) == group
    assert await store.remove_group(-100)
    assert await store.get_group(-100) is None
    assert not await store.remove_group(-100)


# --- data rights and statistics ---------------------------------------------------------------------

VICTIM = 987654321  # distinctive, so a text column holding it would be found too


async def _fill(store: SQLiteStore, user_id: int) -> None:
    await store.touch_user(user_id, now=NOW, language_hint="bn")
    await store.set_language(user_id, "bn", now=NOW)
    await store.add_path(user_id, "youtube", now=NOW)
    await store.set_step(user_id, "youtube", 1, done=True)
    await store.save_quiz_result(user_id, {"q": "a"}, ["youtube"], now=NOW)
    await _subscribe(store, user_id, "youtube")
    await store.persist_user_data(user_id, '{"draft":"x"}')
    await store.persist_chat_data(user_id, '{"menu":1}')
    await store.persist_conversation("quiz", f"[{user_id},{user_id}]", "2")


async def test_export_user(store: SQLiteStore) -> None:
    await _fill(store, VICTIM)
    [claim] = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60)
    await store.complete_tip(
        claim, now=NOW, status=DeliveryStatus.SENT, next_due=NOW + WEEK, tip_count=5
    )
    export = await store.export_user(VICTIM)
    assert export["user"]["language"] == "bn" and export["user"]["first_seen"] == NOW.isoformat()
    assert export["paths"] == [
        {"method_id": "youtube", "chosen_at": NOW.isoformat(), "done_steps": [1]}
    ]
    assert export["quiz"]["ranking"] == ["youtube"]
    assert export["subscriptions"][0]["position"] == 1
    assert export["tips_sent"] == {"count": 1, "last_sent_at": NOW.isoformat()}
    assert export["user_data"] == {"draft": "x"}
    assert export["private_chat_data"] == {"menu": 1}
    assert export["conversations"] == [{"name": "quiz", "key": [VICTIM, VICTIM], "state": 2}]
    assert (await store.export_user(ALICE))["user"] is None


async def test_forget_user_leaves_no_row(store: SQLiteStore) -> None:
    await _fill(store, VICTIM)
    await _fill(store, ALICE)
    [claim, _] = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60)
    await store.complete_tip(
        claim, now=NOW, status=DeliveryStatus.SENT, next_due=NOW + WEEK, tip_count=5
    )
    await store.create_broadcast("hi", language=None, created_by=VICTIM, now=NOW)
    await store.create_broadcast("hi", language=None, created_by=ALICE, now=NOW)

    await store.forget_user(VICTIM)

    assert await _rows_mentioning(store, VICTIM) == {}
    assert len(await _rows_mentioning(store, ALICE)) >= 8  # the other user is untouched
    assert await store.get_user(ALICE) is not None


async def _rows_mentioning(store: SQLiteStore, user_id: int) -> dict[str, int]:
    found = {}
    tables = await store._db.execute_fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    for (table,) in tables:
        columns = [c[1] for c in await store._db.execute_fetchall(f"PRAGMA table_info({table})")]
        condition = " OR ".join(
            f"{c} = :id OR (typeof({c}) = 'text' AND instr({c}, :text) > 0)" for c in columns
        )
        rows = await store._db.execute_fetchall(
            f"SELECT count(*) FROM {table} WHERE {condition}", {"id": user_id, "text": str(user_id)}
        )
        if count := next(iter(rows))[0]:
            found[table] = count
    return found


async def test_a_card_keeps_the_file_id_of_its_newest_drawing(store: SQLiteStore) -> None:
    drawn = CardFileKey("method:youtube", "bn", "a" * 32)
    redrawn = CardFileKey("method:youtube", "bn", "b" * 32)  # its content changed
    english = CardFileKey("method:youtube", "en", "a" * 32)
    assert await store.card_file_id(drawn) is None
    await store.save_card_file_id(drawn, "file-1", now=NOW)
    await store.save_card_file_id(english, "file-2", now=NOW)
    assert await store.card_file_id(drawn) == "file-1"
    await store.save_card_file_id(redrawn, "file-3", now=LATER)
    assert await store.card_file_id(drawn) is None  # never sent again: it shows old content
    assert (await store.card_file_id(redrawn), await store.card_file_id(english)) == (
        "file-3",
        "file-2",
    )


async def test_stats(store: SQLiteStore) -> None:
    empty = await store.stats(now=NOW)
    assert (empty.users, empty.active_users, empty.tips_sent, empty.by_language) == (0, 0, 0, {})

    await store.touch_user(ALICE, now=NOW - 10 * timedelta(days=1))
    await store.touch_user(BOB, now=NOW)
    await store.touch_user(CAROL, now=NOW)
    await store.set_language(BOB, "bn", now=NOW)
    await store.set_language(CAROL, "bn", now=NOW)
    await store.add_path(BOB, "youtube", now=NOW)
    await store.add_path(CAROL, "youtube", now=NOW)
    await store.add_path(CAROL, "stock", now=NOW)
    await _subscribe(store, BOB, "youtube")
    await _subscribe(store, CAROL, "youtube")
    await _subscribe(store, CAROL, "stock", due=NOW + WEEK)
    [claim, _] = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60)
    await store.complete_tip(
        claim, now=NOW, status=DeliveryStatus.SENT, next_due=NOW + WEEK, tip_count=5
    )
    await store.set_blocked(CAROL, True, now=NOW)
    await store.upsert_group(-5, "g", now=NOW)

    stats = await store.stats(now=NOW)
    assert stats.users == 3 and stats.active_users == 2 and stats.blocked_users == 1
    assert stats.by_language == {None: 1, "bn": 2}
    assert stats.paths_by_method == {"stock": 1, "youtube": 2}
    assert (stats.active_subscriptions, stats.paused_subscriptions) == (1, 2)
    assert (stats.tips_sent, stats.groups) == (1, 1)
    assert (await store.stats(now=NOW + 8 * timedelta(days=1))).tips_sent == 0


# --- failure modes ----------------------------------------------------------------------------------


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
        assert await store.count_users() == 2
    finally:
        other.close()
        await store.close()


async def test_full_disk_rolls_back_and_propagates(store: SQLiteStore) -> None:
    await store._db.execute(
        """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
        INSERT INTO users (user_id, first_seen, last_seen) SELECT i, 0, 0 FROM n"""
    )
    pages = await _pragma(store, "page_count")
    await store._db.execute(f"PRAGMA max_page_count = {pages}")  # the "disk" is now full

    with pytest.raises(sqlite3.OperationalError, match="full"):
        await store.create_broadcast("hi", language=None, created_by=1, now=NOW)

    assert not store._db.in_transaction
    await store._db.execute("PRAGMA max_page_count = 1000000")
    assert await store.unfinished_broadcasts() == []  # the broadcast row was rolled back too
    assert await store.create_broadcast("hi", language=None, created_by=1, now=NOW) == 1


async def test_touch_skips_the_write_for_a_user_seen_within_a_minute(store: SQLiteStore) -> None:
    async def last_seen_on_disk() -> int:
        rows = await store._db.execute_fetchall("SELECT last_seen FROM users WHERE user_id = 7")
        return int(next(iter(rows))[0])

    first = await store.touch_user(7, now=NOW)
    assert first.first_seen == first.last_seen  # a new user
    again = await store.touch_user(7, now=NOW + timedelta(seconds=30))
    assert again.last_seen == NOW + timedelta(seconds=30) and again.first_seen == NOW
    assert await last_seen_on_disk() == int(NOW.timestamp())  # answered from memory
    await store.touch_user(7, now=NOW + timedelta(seconds=61))
    assert await last_seen_on_disk() == int(NOW.timestamp()) + 61


async def test_every_users_write_forgets_the_remembered_user(store: SQLiteStore) -> None:
    await store.touch_user(7, now=NOW)
    await store.set_language(7, "en", now=NOW)
    assert (await store.touch_user(7, now=NOW + timedelta(seconds=1))).language == "en"
    await store.set_blocked(7, True, now=NOW)
    # the next update from the user writes again, which is what unblocks them
    assert not (await store.touch_user(7, now=NOW + timedelta(seconds=2))).blocked
    assert not (await store.get_user(7)).blocked  # type: ignore[union-attr]
    await store.forget_user(7)
    assert (await store.touch_user(7, now=NOW + timedelta(seconds=3))).first_seen > NOW


async def test_a_recent_users_row_is_read_from_memory(store: SQLiteStore) -> None:
    await store.touch_user(7, now=NOW)
    # A change behind the store's back is not seen: the read came from memory.
    await store._db.execute("UPDATE users SET language = 'en' WHERE user_id = 7")
    assert (await store.get_user(7)).language is None  # type: ignore[union-attr]
    await store.set_language(7, "bn", now=NOW)  # a write through the store is seen at once
    assert (await store.get_user(7)).language == "bn"  # type: ignore[union-attr]
    assert await store.get_user(8) is None


async def _paths_on_disk(store: SQLiteStore, user_id: int) -> list[str]:
    rows = await store._db.execute_fetchall(
        "SELECT method_id FROM paths WHERE user_id = ? ORDER BY method_id", (user_id,)
    )
    return [r[0] for r in rows]


async def test_paths_are_remembered_and_every_paths_write_forgets_them(
    store: SQLiteStore,
) -> None:
    await store.touch_user(7, now=NOW)
    assert await store.list_paths(7) == []
    # A change behind the store's back is not seen: the second read came from memory.
    await store._db.execute("INSERT INTO paths (user_id, method_id, chosen_at) VALUES (7, 'x', 0)")
    assert await store.list_paths(7) == []
    await store._db.execute("DELETE FROM paths WHERE user_id = 7")

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


async def test_a_read_that_raced_with_a_write_is_not_remembered(store: SQLiteStore) -> None:
    """Reads run on their own connection: one may finish after a write that began later."""
    await store.touch_user(7, now=NOW)
    assert store._reader is not None
    reading = asyncio.Event()
    release = asyncio.Event()
    read_paths = store._read

    async def slow_read(sql: str, params: object = ()) -> list[object]:
        rows = await read_paths(sql, params)  # type: ignore[arg-type]
        reading.set()
        await release.wait()  # the read's old answer arrives only after the write
        return rows

    store._read = slow_read  # type: ignore[method-assign]
    stale = asyncio.create_task(store.list_paths(7))
    await reading.wait()
    store._read = read_paths  # type: ignore[method-assign]
    await store.add_path(7, "youtube", now=NOW)
    release.set()
    assert await stale == []  # what it read before the write
    assert [p.method_id for p in await store.list_paths(7)] == ["youtube"]  # not kept


async def test_reads_see_every_committed_write_at_once(store: SQLiteStore) -> None:
    assert store._reader is not None  # a file database reads on its own connection
    await store.touch_user(7, now=NOW)
    for i in range(20):
        await store.subscribe(7, f"m{i}", now=NOW, weekday=0, hour=9, minute=0, first_due=NOW)
        assert len(await store.list_subscriptions(7)) == i + 1
    await store.set_language(7, "en", now=NOW)
    assert (await store.get_user(7)).language == "en"  # type: ignore[union-attr]
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await store._reader.execute("DELETE FROM users")
