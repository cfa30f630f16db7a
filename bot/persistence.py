"""PTB persistence kept as JSON documents in the bot's own database (through the `Store`).

JSON, not pickle: the file stays readable, exportable for data-rights requests, and loading it can
never run code. The price is that only JSON data may be stored: dicts with str keys, lists, str,
int, float, bool and None. Anything else (a tuple, a set, an int key, a Telegram object) raises a
TypeError naming where it is when PTB saves it, instead of silently coming back changed.
"""

from __future__ import annotations

import json
import math
from collections.abc import MutableMapping
from typing import Any, cast

from telegram.ext import BasePersistence, PersistenceInput

from bot.store import Store

# PTB's own aliases live in a private module (telegram.ext._utils.types); these mirror them.
CDCData = tuple[list[tuple[str, float, dict[str, Any]]], dict[str, str]]
ConversationKey = tuple[int | str, ...]
ConversationDict = MutableMapping[ConversationKey, object]

_BOT_DATA = "bot_data"
_CALLBACK_DATA = "callback_data"


class SQLitePersistence(BasePersistence[dict[str, Any], dict[str, Any], dict[str, Any]]):
    """user_data, chat_data, bot_data, callback_data and conversations, each written through.

    Every `update_*` call PTB makes (every `update_interval` seconds and at shutdown) is committed
    at once, so `flush` has nothing left to do, and the `refresh_*` hooks do nothing because no
    one else writes these tables while the bot runs. Empty dicts are stored as no row at all.
    """

    __slots__ = ("_store",)

    def __init__(
        self,
        store: Store,
        *,
        store_data: PersistenceInput | None = None,
        update_interval: float = 60,
    ) -> None:
        super().__init__(store_data=store_data, update_interval=update_interval)
        self._store = store

    async def get_user_data(self) -> dict[int, dict[str, Any]]:
        documents = await self._store.persisted_user_data()
        return {user_id: json.loads(data) for user_id, data in documents.items()}

    async def get_chat_data(self) -> dict[int, dict[str, Any]]:
        documents = await self._store.persisted_chat_data()
        return {chat_id: json.loads(data) for chat_id, data in documents.items()}

    async def get_bot_data(self) -> dict[str, Any]:
        data = await self._store.persisted_blob(_BOT_DATA)
        return {} if data is None else cast(dict[str, Any], json.loads(data))

    async def get_callback_data(self) -> CDCData | None:
        data = await self._store.persisted_blob(_CALLBACK_DATA)
        if data is None:
            return None
        keyboards, queries = json.loads(data)
        return [(uuid, float(time), buttons) for uuid, time, buttons in keyboards], queries

    async def get_conversations(self, name: str) -> ConversationDict:
        states = await self._store.persisted_conversations(name)
        return {tuple(json.loads(key)): json.loads(state) for key, state in states.items()}

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        await self._store.persist_conversation(
            name,
            _json(list(key), f"conversation {name!r} key"),
            None if new_state is None else _json(new_state, f"conversation {name!r} {key}"),
        )

    async def update_user_data(self, user_id: int, data: dict[str, Any]) -> None:
        await self._store.persist_user_data(
            user_id, _json(data, f"user_data[{user_id}]") if data else None
        )

    async def update_chat_data(self, chat_id: int, data: dict[str, Any]) -> None:
        await self._store.persist_chat_data(
            chat_id, _json(data, f"chat_data[{chat_id}]") if data else None
        )

    async def update_bot_data(self, data: dict[str, Any]) -> None:
        await self._store.persist_blob(_BOT_DATA, _json(data, "bot_data") if data else None)

    async def update_callback_data(self, data: CDCData) -> None:
        keyboards, queries = data
        document = [[list(keyboard) for keyboard in keyboards], queries]
        await self._store.persist_blob(_CALLBACK_DATA, _json(document, "callback_data"))

    async def drop_chat_data(self, chat_id: int) -> None:
        await self._store.persist_chat_data(chat_id, None)

    async def drop_user_data(self, user_id: int) -> None:
        await self._store.persist_user_data(user_id, None)

    async def refresh_user_data(self, user_id: int, user_data: dict[str, Any]) -> None:
        """Nothing to do: the in-memory copy is the newest one."""

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[str, Any]) -> None:
        """Nothing to do: the in-memory copy is the newest one."""

    async def refresh_bot_data(self, bot_data: dict[str, Any]) -> None:
        """Nothing to do: the in-memory copy is the newest one."""

    async def flush(self) -> None:
        """Nothing to do: every update was already committed."""


def _json(value: object, where: str) -> str:
    """Serialise JSON data, refusing what would not read back equal (see the module docstring)."""
    _check_json(value, where)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _check_json(value: object, where: str) -> None:
    if value is None or isinstance(value, str | int):  # bool is an int
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{where}: {value!r} cannot be stored as JSON")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{where}: key {key!r} is a {type(key).__name__}; only str keys can be stored"
                )
            _check_json(item, f"{where}[{key!r}]")
        return
    raise TypeError(
        f"{where}: a {type(value).__name__} cannot be stored; use JSON data "
        "(dict with str keys, list, str, int, float, bool, None)"
    )
