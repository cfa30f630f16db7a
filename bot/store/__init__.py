"""The bot's storage, behind the `Store` protocol that handlers use.

Handlers see only `Store` and frozen records. `open_store(DATABASE_URL)` picks the backend:
`sqlite:///…` (the default, one process) or `postgresql://…` (several processes, one database).
"""

from __future__ import annotations

from bot.store.errors import StoreError
from bot.store.protocol import (
    AccountStore,
    BroadcastStore,
    CardStore,
    GroupStore,
    PathStore,
    RuntimeStore,
    Store,
    TipStore,
    UserStore,
)
from bot.store.records import (
    ACTIVE_DAYS,
    MAX_PATHS,
    MAX_STEPS,
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
from bot.store.sql import SQLStore

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(database_url: str) -> bool:
    return database_url.startswith(POSTGRES_SCHEMES)


async def open_store(database_url: str) -> SQLStore:
    """Open (creating and migrating as needed) the database the URL names."""
    if is_postgres(database_url):
        from bot.store import postgres  # asyncpg is loaded only when it is used

        return await postgres.open_store(database_url)
    from bot.store import sqlite

    return await sqlite.open_store(database_url)


__all__ = [
    "ACTIVE_DAYS",
    "MAX_PATHS",
    "MAX_STEPS",
    "AccountStore",
    "AddPathResult",
    "AdminDraft",
    "Broadcast",
    "BroadcastClaim",
    "BroadcastStore",
    "CardFileKey",
    "CardStore",
    "DeliveryStatus",
    "Group",
    "GroupStore",
    "LeaseResult",
    "Path",
    "PathStore",
    "QuizResult",
    "RuntimeStore",
    "SQLStore",
    "Stats",
    "Store",
    "StoreError",
    "Subscription",
    "TipClaim",
    "TipStore",
    "User",
    "UserStore",
    "is_postgres",
    "open_store",
]
