"""`ayerpoth db copy`: a bot's SQLite data moved to PostgreSQL reads back the same there."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.store import AdminDraft, DeliveryStatus, SQLStore, open_store

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
USERS = range(1, 251)  # more than one batch of some tables


async def _fill(store: SQLStore) -> None:
    for user in USERS:
        await store.touch_user(user, now=NOW, language_hint="bn" if user % 2 else "en")
        await store.add_path(user, "youtube", now=NOW)
        await store.set_step(user, "youtube", user % 5, done=True)
        await store.save_quiz_result(user, {"q1": "a"}, ["youtube", "stock"], now=NOW)
        await store.subscribe(user, "stock", now=NOW, weekday=1, hour=9, minute=0, first_due=NOW)
    for claim in await store.claim_due_tips(now=NOW, limit=500, lease_seconds=60, owner="w"):
        status = DeliveryStatus.BLOCKED if claim.user_id == 7 else DeliveryStatus.SENT
        await store.complete_tip(
            claim, now=NOW, status=status, next_due=NOW + timedelta(days=7), tip_count=12
        )
    await store.create_broadcast("<b>Hi</b>", language=None, created_by=1, now=NOW, draft=3)
    await store.upsert_group(-100, "Freelancers", now=NOW)
    await store.record_unanswered("how to earn #", now=NOW)
    await store.set_admin_draft(1, AdminDraft(writing=True))
    await store.hold_updates(['{"update_id": 5}'])


async def _snapshot(store: SQLStore) -> object:
    people = [await store.export_user(u) for u in USERS]
    return (
        people,
        await store.stats(now=NOW),
        await store.unfinished_broadcasts(),
        await store.get_group(-100),
        await store.top_unanswered(limit=5, now=NOW),
    )


def test_copy_to_postgresql_keeps_everything(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"

    async def prepare() -> object:
        store = await open_store(sqlite_url)
        try:
            await _fill(store)
            return await _snapshot(store)
        finally:
            await store.close()

    before = asyncio.run(prepare())
    assert main(["db", "copy", sqlite_url, postgres_url]) == 0
    out = capsys.readouterr().out
    assert "users: 250 row(s)" in out and "every table's count checked" in out

    async def read_back() -> tuple[object, int, list[str]]:
        store = await open_store(postgres_url)
        try:
            snapshot = await _snapshot(store)
            # ids made by PostgreSQL go on after the copied ones
            made = await store.create_broadcast("again", language=None, created_by=1, now=NOW)
            return snapshot, made, await store.take_held_updates()
        finally:
            await store.close()

    after, new_id, held = asyncio.run(read_back())
    assert after == before
    assert new_id == 2 and held == ['{"update_id": 5}']


def test_a_target_with_data_is_refused_unless_replaced(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"

    async def one_user(url: str, user: int) -> None:
        store = await open_store(url)
        try:
            await store.touch_user(user, now=NOW)
        finally:
            await store.close()

    asyncio.run(one_user(sqlite_url, 1))
    asyncio.run(one_user(postgres_url, 2))
    assert main(["db", "copy", sqlite_url, postgres_url]) == 1
    assert "not empty: users (1)" in capsys.readouterr().err
    assert main(["db", "copy", sqlite_url, postgres_url, "--replace"]) == 0

    async def users() -> list[int]:
        store = await open_store(postgres_url)
        try:
            return [u for u in (1, 2) if await store.get_user(u) is not None]
        finally:
            await store.close()

    assert asyncio.run(users()) == [1]


def test_a_missing_source_file_is_an_error_not_an_empty_copy(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"sqlite:///{tmp_path / 'typo.sqlite3'}"
    assert main(["db", "copy", missing, postgres_url]) == 1
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "typo.sqlite3").exists()
