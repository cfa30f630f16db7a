"""PTB persistence in the bot's database: round-trips across a restart, drops, JSON-only data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from telegram.ext import PersistenceInput

from bot.persistence import SQLitePersistence
from bot.store import SQLiteStore, open_store

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
USER, OTHER, GROUP = 1001, 1002, -100123


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/bot.sqlite3"


@pytest.fixture
async def store(url: str) -> AsyncIterator[SQLiteStore]:
    s = await open_store(url)
    yield s
    await s.close()


async def test_everything_survives_a_restart(url: str) -> None:
    store = await open_store(url)
    persistence = SQLitePersistence(store)
    user_data: dict[str, Any] = {"lang": "bn", "draft": {"steps": [1, 2.5, None, True]}}
    await persistence.update_user_data(USER, user_data)
    await persistence.update_chat_data(GROUP, {"menu_message": 42})
    await persistence.update_bot_data({"version": 3})
    await persistence.update_conversation("quiz", (USER, USER), 2)
    await persistence.update_conversation("quiz", (OTHER, OTHER), "ASK")
    await persistence.update_conversation("quiz", (OTHER, OTHER), None)  # conversation ended
    callback_data = ([("uuid-1", 1767600000.5, {"btn": {"m": "youtube"}})], {"q1": "uuid-1"})
    await persistence.update_callback_data(callback_data)
    await persistence.flush()
    await store.close()

    store = await open_store(url)
    try:
        persistence = SQLitePersistence(store)
        assert await persistence.get_user_data() == {USER: user_data}
        assert await persistence.get_chat_data() == {GROUP: {"menu_message": 42}}
        assert await persistence.get_bot_data() == {"version": 3}
        assert await persistence.get_conversations("quiz") == {(USER, USER): 2}
        assert await persistence.get_conversations("other") == {}
        assert await persistence.get_callback_data() == callback_data
    finally:
        await store.close()


async def test_empty_store_reads_empty(store: SQLiteStore) -> None:
    persistence = SQLitePersistence(store)
    assert await persistence.get_user_data() == {}
    assert await persistence.get_chat_data() == {}
    assert await persistence.get_bot_data() == {}
    assert await persistence.get_callback_data() is None


async def test_get_returns_fresh_dicts(store: SQLiteStore) -> None:
    persistence = SQLitePersistence(store)
    await persistence.update_user_data(USER, {"a": [1]})
    first = await persistence.get_user_data()
    first[USER]["a"].append(2)
    assert await persistence.get_user_data() == {USER: {"a": [1]}}


async def test_drop_and_empty_data_remove_rows(store: SQLiteStore) -> None:
    persistence = SQLitePersistence(store)
    await persistence.update_user_data(USER, {"a": 1})
    await persistence.update_user_data(OTHER, {"b": 2})
    await persistence.update_chat_data(GROUP, {"c": 3})
    await persistence.drop_user_data(USER)
    await persistence.drop_chat_data(GROUP)
    await persistence.update_user_data(OTHER, {})  # PTB's defaultdict gives {} back anyway
    assert await store.persisted_user_data() == {}
    assert await store.persisted_chat_data() == {}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"when": NOW}, r"user_data\[1001\]\['when'\]: a datetime cannot be stored"),
        ({"pair": (1, 2)}, "a tuple cannot be stored"),
        ({"ids": {1, 2}}, "a set cannot be stored"),
        ({7: "x"}, "key 7 is a int; only str keys"),
        ({"x": [float("nan")]}, r"\['x'\]\[0\]: nan cannot be stored"),
    ],
)
async def test_non_json_data_is_refused_and_not_written(
    store: SQLiteStore, data: dict[Any, Any], message: str
) -> None:
    persistence = SQLitePersistence(store)
    await persistence.update_user_data(USER, {"ok": 1})
    with pytest.raises(TypeError, match=message):
        await persistence.update_user_data(USER, data)
    assert await persistence.get_user_data() == {USER: {"ok": 1}}


async def test_forget_user_removes_their_persisted_data(store: SQLiteStore) -> None:
    persistence = SQLitePersistence(store)
    await store.touch_user(USER, now=NOW)
    await persistence.update_user_data(USER, {"a": 1})
    await persistence.update_chat_data(USER, {"private": True})
    await persistence.update_conversation("quiz", (USER, USER), 1)
    await persistence.update_user_data(OTHER, {"b": 2})
    await persistence.update_conversation("quiz", (OTHER, OTHER), 1)
    await store.forget_user(USER)
    assert await persistence.get_user_data() == {OTHER: {"b": 2}}
    assert await persistence.get_chat_data() == {}
    assert await persistence.get_conversations("quiz") == {(OTHER, OTHER): 1}


async def test_settings_reach_ptb(store: SQLiteStore) -> None:
    persistence = SQLitePersistence(
        store, store_data=PersistenceInput(bot_data=False), update_interval=5
    )
    assert persistence.update_interval == 5
    assert not persistence.store_data.bot_data and persistence.store_data.user_data
