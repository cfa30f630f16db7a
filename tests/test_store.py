"""The store's behaviour, written once and run against every backend (the contract suite).

SQLite runs in a temporary file; PostgreSQL in a throw-away server started for the test session
(tests/postgres.py). What only one backend has (pragmas, migrations, query plans, memory) is in
tests/test_store_sqlite.py and tests/test_store_postgres.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.store import (
    MAX_PATHS,
    AddPathResult,
    AdminDraft,
    CardFileKey,
    DeliveryStatus,
    SQLStore,
    open_store,
)

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
LATER = NOW + timedelta(hours=1)
WEEK = timedelta(days=7)
ALICE, BOB, CAROL = 1001, 1002, 1003
OWNER = "worker-1"
VICTIM = 987654321  # distinctive, so a text column holding it would be found too


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SQLStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/data/bot.sqlite3"
    else:
        url = request.getfixturevalue("postgres_url")
    s = await open_store(url)
    yield s
    await s.close()


async def _subscribe(store: SQLStore, user_id: int, method_id: str, due: datetime = NOW) -> None:
    await store.subscribe(user_id, method_id, now=NOW, weekday=0, hour=9, minute=0, first_due=due)


async def test_touch_user_creates_then_updates(store: SQLStore) -> None:
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
    assert (await store.stats(now=LATER)).users == 1


async def test_set_language_creates_unknown_user(store: SQLStore) -> None:
    await store.set_language(BOB, "bn", now=NOW)
    user = await store.get_user(BOB)
    assert user is not None and (user.language, user.first_seen) == ("bn", NOW)


async def test_naive_datetimes_are_refused(store: SQLStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        await store.touch_user(ALICE, now=datetime(2026, 1, 1))


async def test_blocking_pauses_and_writing_again_resumes(store: SQLStore) -> None:
    await store.touch_user(ALICE, now=NOW)
    await _subscribe(store, ALICE, "youtube")
    await store.set_blocked(ALICE, True, now=NOW)
    user = await store.get_user(ALICE)
    assert user is not None and user.blocked and user.blocked_at == NOW
    [sub] = await store.list_subscriptions(ALICE)
    assert sub.paused and sub.active
    assert await store.claim_due_tips(now=LATER, limit=10, lease_seconds=60, owner=OWNER) == []

    user = await store.touch_user(ALICE, now=LATER)
    assert not user.blocked and user.blocked_at is None
    [sub] = await store.list_subscriptions(ALICE)
    assert not sub.paused
    assert len(await store.claim_due_tips(now=LATER, limit=10, lease_seconds=60, owner=OWNER)) == 1


async def test_paths_limit_and_steps(store: SQLStore) -> None:
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


async def test_quiz_result_is_replaced(store: SQLStore) -> None:
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


async def test_resubscribing_keeps_position(store: SQLStore) -> None:
    await store.touch_user(ALICE, now=NOW)
    await _subscribe(store, ALICE, "youtube")
    [claim] = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60, owner=OWNER)
    await store.complete_tip(
        claim, now=NOW, status=DeliveryStatus.SENT, next_due=NOW + WEEK, tip_count=5
    )

    assert await store.unsubscribe(ALICE, "youtube") == 1
    assert await store.unsubscribe(ALICE, "youtube") == 0
    [sub] = await store.list_subscriptions(ALICE)
    assert (sub.active, sub.position) == (False, 1)
    assert (
        await store.claim_due_tips(now=NOW + 2 * WEEK, limit=10, lease_seconds=60, owner=OWNER)
        == []
    )

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


async def test_subscribing_again_while_on_changes_nothing(store: SQLStore) -> None:
    """A second tap on "subscribe" (or two in flight) must not make this week's tip due again."""
    await store.touch_user(ALICE, now=NOW)
    await _subscribe(store, ALICE, "youtube")
    [claim] = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60, owner=OWNER)
    await store.complete_tip(
        claim, now=NOW, status=DeliveryStatus.SENT, next_due=NOW + WEEK, tip_count=5
    )
    [before] = await store.list_subscriptions(ALICE)
    again = await store.subscribe(
        ALICE, "youtube", now=LATER, weekday=3, hour=20, minute=30, first_due=LATER
    )
    assert again == before and (again.position, again.next_due) == (1, NOW + WEEK)
    assert await store.list_subscriptions(ALICE) == [before]
    assert await store.claim_due_tips(now=LATER, limit=10, lease_seconds=60, owner=OWNER) == []


async def test_a_due_tip_carries_the_steps_done_on_its_path(store: SQLStore) -> None:
    await store.touch_user(ALICE, now=NOW)
    await store.touch_user(BOB, now=NOW)
    await store.add_path(ALICE, "youtube", now=NOW)
    await store.set_step(ALICE, "youtube", 0, done=True)
    await store.set_step(ALICE, "youtube", 2, done=True)
    for user in (ALICE, BOB):
        await _subscribe(store, user, "youtube")
    claims = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60, owner=OWNER)
    assert {c.user_id: c.done_steps for c in claims} == {ALICE: {0, 2}, BOB: None}


async def test_unsubscribe_all_and_set_schedule(store: SQLStore) -> None:
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


async def test_claims_are_leased_ordered_and_limited(store: SQLStore) -> None:
    for i, user_id in enumerate((ALICE, BOB, CAROL)):
        await store.touch_user(user_id, now=NOW)
        await _subscribe(store, user_id, "youtube", due=NOW - timedelta(minutes=i))
    await store.set_language(BOB, "en", now=NOW)
    await _subscribe(store, ALICE, "stock", due=NOW + timedelta(minutes=5))  # not due yet

    first = await store.claim_due_tips(now=NOW, limit=2, lease_seconds=60, owner=OWNER)
    assert [(c.user_id, c.position) for c in first] == [(CAROL, 0), (BOB, 0)]
    assert first[1].language == "en" and first[0].claimed_until == NOW + timedelta(seconds=60)
    second = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60, owner=OWNER)
    assert [c.user_id for c in second] == [ALICE]
    assert (
        await store.claim_due_tips(
            now=NOW + timedelta(seconds=30), limit=10, lease_seconds=60, owner=OWNER
        )
        == []
    )


async def test_crash_before_complete_resends_only_the_in_flight_tip(store: SQLStore) -> None:
    await store.touch_user(ALICE, now=NOW)
    await _subscribe(store, ALICE, "youtube")
    [claim] = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60, owner=OWNER)
    # ... the tip is sent, then the process dies: nobody completes the claim.
    after_lease = NOW + timedelta(seconds=60)
    [again] = await store.claim_due_tips(now=after_lease, limit=10, lease_seconds=60, owner=OWNER)
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


async def test_complete_release_and_finish(store: SQLStore) -> None:
    await store.touch_user(ALICE, now=NOW)
    await _subscribe(store, ALICE, "youtube")

    [claim] = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60, owner=OWNER)
    await store.release_tip(claim, retry_at=NOW + timedelta(minutes=5))
    assert await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60, owner=OWNER) == []
    [claim] = await store.claim_due_tips(
        now=NOW + timedelta(minutes=5), limit=10, lease_seconds=60, owner=OWNER
    )
    assert claim.position == 0

    await store.complete_tip(
        claim, now=NOW, status=DeliveryStatus.FAILED, next_due=NOW + WEEK, tip_count=2
    )
    [sub] = await store.list_subscriptions(ALICE)
    assert (sub.position, sub.active) == (0, True)

    for due in (NOW + WEEK, NOW + 2 * WEEK):
        [claim] = await store.claim_due_tips(now=due, limit=10, lease_seconds=60, owner=OWNER)
        await store.complete_tip(
            claim, now=due, status=DeliveryStatus.SENT, next_due=due + WEEK, tip_count=2
        )
    [sub] = await store.list_subscriptions(ALICE)
    assert (sub.position, sub.active) == (2, False)  # all tips sent: finished
    assert (
        await store.claim_due_tips(now=NOW + 9 * WEEK, limit=10, lease_seconds=60, owner=OWNER)
        == []
    )
    export = await store.export_user(ALICE)
    assert export["tips_sent"] == {"count": 2, "last_sent_at": (NOW + 2 * WEEK).isoformat()}


async def test_blocked_delivery_blocks_the_user(store: SQLStore) -> None:
    await store.touch_user(ALICE, now=NOW)
    await _subscribe(store, ALICE, "youtube")
    await _subscribe(store, ALICE, "stock", due=NOW + WEEK)
    [claim] = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60, owner=OWNER)
    await store.complete_tip(
        claim, now=NOW, status=DeliveryStatus.BLOCKED, next_due=NOW + WEEK, tip_count=5
    )
    user = await store.get_user(ALICE)
    assert user is not None and user.blocked
    assert all(s.paused and s.position == 0 for s in await store.list_subscriptions(ALICE))
    assert (
        await store.claim_due_tips(now=NOW + 3 * WEEK, limit=10, lease_seconds=60, owner=OWNER)
        == []
    )


async def test_broadcast_targets_and_report(store: SQLStore) -> None:
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

    claims = await store.claim_broadcast_targets(now=NOW, limit=3, lease_seconds=60, owner=OWNER)
    assert [(c.broadcast_id, c.user_id) for c in claims] == [
        (bn, ALICE),
        (everyone, ALICE),
        (everyone, BOB),
    ]
    assert claims[0].text == "নমস্কার" and claims[2].language == "en"
    await store.complete_broadcast_target(claims[0], DeliveryStatus.SENT, now=NOW)
    await store.complete_broadcast_target(claims[1], DeliveryStatus.SENT, now=NOW)
    await store.release_broadcast_target(claims[2], retry_at=NOW + timedelta(seconds=30))

    [carol] = await store.claim_broadcast_targets(now=NOW, limit=10, lease_seconds=60, owner=OWNER)
    assert carol.user_id == CAROL
    await store.complete_broadcast_target(carol, DeliveryStatus.BLOCKED, now=NOW)
    carol_user = await store.get_user(CAROL)
    assert carol_user is not None and carol_user.blocked

    [bob] = await store.claim_broadcast_targets(
        now=NOW + timedelta(seconds=30), limit=10, lease_seconds=60, owner=OWNER
    )
    await store.complete_broadcast_target(bob, DeliveryStatus.FAILED, now=NOW)
    assert (
        await store.claim_broadcast_targets(now=NOW + WEEK, limit=10, lease_seconds=60, owner=OWNER)
        == []
    )
    assert await store.broadcast_report(everyone) == {
        "pending": 0,
        "sent": 1,
        "blocked": 1,
        "failed": 1,
    }

    await store.finish_broadcast(bn, now=LATER)
    await store.finish_broadcast(everyone, now=LATER)
    assert await store.unfinished_broadcasts() == []


async def test_a_draft_becomes_one_broadcast(store: SQLStore) -> None:
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


async def test_groups(store: SQLStore) -> None:
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


async def _fill(store: SQLStore, user_id: int) -> None:
    await store.touch_user(user_id, now=NOW, language_hint="bn")
    await store.set_language(user_id, "bn", now=NOW)
    await store.add_path(user_id, "youtube", now=NOW)
    await store.set_step(user_id, "youtube", 1, done=True)
    await store.save_quiz_result(user_id, {"q": "a"}, ["youtube"], now=NOW)
    await _subscribe(store, user_id, "youtube")
    await store.set_admin_draft(user_id, AdminDraft(writing=False, draft=7, text="x"))


async def test_export_user(store: SQLStore) -> None:
    await _fill(store, VICTIM)
    [claim] = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60, owner=OWNER)
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
    assert export["broadcast_draft"] == {"writing": False, "text": "x"}
    assert (await store.export_user(ALICE))["user"] is None


async def test_forget_user_leaves_no_row(store: SQLStore) -> None:
    await _fill(store, VICTIM)
    await _fill(store, ALICE)
    [claim, _] = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60, owner=OWNER)
    await store.complete_tip(
        claim, now=NOW, status=DeliveryStatus.SENT, next_due=NOW + WEEK, tip_count=5
    )
    await store.create_broadcast("hi", language=None, created_by=VICTIM, now=NOW)
    await store.create_broadcast("hi", language=None, created_by=ALICE, now=NOW)

    await store.forget_user(VICTIM)

    assert await _rows_mentioning(store, VICTIM) == {}
    assert len(await _rows_mentioning(store, ALICE)) >= 8  # the other user is untouched
    assert await store.get_user(ALICE) is not None


async def _rows_mentioning(store: SQLStore, user_id: int) -> dict[str, int]:
    """Rows of every table with the id in any column (text columns: anywhere in the text)."""
    db = store.database
    if db.name == "sqlite":
        tables = [
            r[0]
            for r in await db.fetch(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        columns = {t: [c[1] for c in await db.fetch(f"PRAGMA table_info({t})")] for t in tables}
    else:
        found_columns = await db.fetch(
            """SELECT table_name, column_name FROM information_schema.columns
            WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"""
        )
        columns = {}
        for row in found_columns:
            columns.setdefault(row[0], []).append(row[1])
    found = {}
    for table, names in columns.items():
        condition = " OR ".join(f"CAST({c} AS TEXT) LIKE :text" for c in names)
        rows = await db.fetch(
            f"SELECT count(*) FROM {table} WHERE {condition}", {"text": f"%{user_id}%"}
        )
        if count := rows[0][0]:
            found[table] = count
    return found


async def test_a_card_keeps_the_file_id_of_its_newest_drawing(store: SQLStore) -> None:
    drawn = CardFileKey("method:youtube", "bn", "a" * 32)
    redrawn = CardFileKey("method:youtube", "bn", "b" * 32)  # its content changed
    english = CardFileKey("method:youtube", "en", "a" * 32)
    assert await store.card_file_id(drawn) is None
    await store.save_card_file_id(drawn, "file-1", now=NOW)
    await store.save_card_file_id(english, "file-2", now=NOW)
    await store.save_card_file_id(drawn, "file-1b", now=NOW)  # uploaded again: the newer id
    assert await store.card_file_id(drawn) == "file-1b"
    await store.save_card_file_id(redrawn, "file-3", now=LATER)
    assert await store.card_file_id(drawn) is None  # never sent again: it shows old content
    assert (await store.card_file_id(redrawn), await store.card_file_id(english)) == (
        "file-3",
        "file-2",
    )


async def test_stats(store: SQLStore) -> None:
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
    [claim, _] = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60, owner=OWNER)
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


async def test_every_users_write_forgets_the_remembered_user(store: SQLStore) -> None:
    await store.touch_user(7, now=NOW)
    await store.set_language(7, "en", now=NOW)
    assert (await store.touch_user(7, now=NOW + timedelta(seconds=1))).language == "en"
    await store.set_blocked(7, True, now=NOW)
    # the next update from the user writes again, which is what unblocks them
    assert not (await store.touch_user(7, now=NOW + timedelta(seconds=2))).blocked
    assert not (await store.get_user(7)).blocked  # type: ignore[union-attr]
    await store.forget_user(7)
    assert (await store.touch_user(7, now=NOW + timedelta(seconds=3))).first_seen > NOW


# --- what the processes share ---------------------------------------------------------------------


async def test_a_lease_is_held_renewed_refused_and_taken_over_when_it_runs_out(
    store: SQLStore,
) -> None:
    first = await store.acquire_lease("dispatcher", "a", now=NOW, ttl_seconds=5)
    assert (first.held, first.holder, first.taken_over_from) == (True, "a", None)
    refused = await store.acquire_lease(
        "dispatcher", "b", now=NOW + timedelta(seconds=4), ttl_seconds=5
    )
    assert (refused.held, refused.holder) == (False, "a")
    renewed = await store.acquire_lease(
        "dispatcher", "a", now=NOW + timedelta(seconds=4), ttl_seconds=5
    )
    assert renewed.held and renewed.taken_over_from is None
    still = await store.acquire_lease(
        "dispatcher", "b", now=NOW + timedelta(seconds=8), ttl_seconds=5
    )
    assert not still.held  # a's renewal counts from its own time
    taken = await store.acquire_lease(
        "dispatcher", "b", now=NOW + timedelta(seconds=9), ttl_seconds=5
    )
    assert (taken.held, taken.holder, taken.taken_over_from) == (True, "b", "a")
    await store.release_lease("dispatcher", "a")  # not a's any more: nothing happens
    assert not (
        await store.acquire_lease("dispatcher", "a", now=NOW + timedelta(seconds=10), ttl_seconds=5)
    ).held
    await store.release_lease("dispatcher", "b")
    assert (
        await store.acquire_lease("dispatcher", "a", now=NOW + timedelta(seconds=10), ttl_seconds=5)
    ).held
    forced = await store.acquire_lease("dispatcher", "c", now=NOW, ttl_seconds=5, take_over=True)
    assert (forced.held, forced.taken_over_from) == (True, "a")


async def test_only_the_owner_releases_a_claim(store: SQLStore) -> None:
    await store.touch_user(ALICE, now=NOW)
    await _subscribe(store, ALICE, "youtube")
    [mine] = await store.claim_due_tips(now=NOW, limit=10, lease_seconds=60, owner="a")
    # a's lease runs out; b claims the same tip; a's late release must not free b's lease
    later = NOW + timedelta(seconds=61)
    [theirs] = await store.claim_due_tips(now=later, limit=10, lease_seconds=60, owner="b")
    assert theirs.owner == "b" and theirs.user_id == mine.user_id
    await store.release_tip(mine, retry_at=later)
    assert await store.release_claims("a") == 0
    assert await store.claim_due_tips(now=later, limit=10, lease_seconds=60, owner="c") == []
    assert await store.release_claims("b") == 1
    assert len(await store.claim_due_tips(now=later, limit=10, lease_seconds=60, owner="c")) == 1


async def test_send_tokens_are_shared_out_per_slot(store: SQLStore) -> None:
    assert await store.take_send_tokens(100, 4, limit=6) == 4
    assert await store.take_send_tokens(100, 4, limit=6) == 2
    assert await store.take_send_tokens(100, 1, limit=6) == 0
    assert await store.take_send_tokens(101, 6, limit=6) == 6  # a new slot, a new budget


async def test_held_updates_come_back_once_in_order(store: SQLStore) -> None:
    await store.hold_updates(['{"update_id": 1}', '{"update_id": 2}'])
    await store.hold_updates(['{"update_id": 3}'])
    assert await store.take_held_updates() == [
        '{"update_id": 1}',
        '{"update_id": 2}',
        '{"update_id": 3}',
    ]
    assert await store.take_held_updates() == []


async def test_an_admins_draft_is_kept_until_dropped(store: SQLStore) -> None:
    assert await store.admin_draft(ALICE) is None
    await store.set_admin_draft(ALICE, AdminDraft(writing=True))
    assert await store.admin_draft(ALICE) == AdminDraft(writing=True)
    await store.set_admin_draft(ALICE, AdminDraft(writing=False, draft=9, text="<b>Hi</b>"))
    assert await store.admin_draft(ALICE) == AdminDraft(False, 9, "<b>Hi</b>")
    await store.set_admin_draft(ALICE, None)
    assert await store.admin_draft(ALICE) is None
