"""What handlers and components may ask of a store, split by concern; `Store` is all of them.

A component that needs one concern can say so in its type (the dispatcher takes a `TipStore`).
Every method raises `StoreError` (bot.store.errors) when the database fails, whatever the backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from bot.store.records import (
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


class UserStore(Protocol):
    async def touch_user(
        self, user_id: int, *, now: datetime, language_hint: str | None = None
    ) -> User: ...
    async def get_user(self, user_id: int) -> User | None: ...
    async def set_language(self, user_id: int, language: str, *, now: datetime) -> None: ...
    async def set_blocked(self, user_id: int, blocked: bool, *, now: datetime) -> None: ...


class PathStore(Protocol):
    async def list_paths(self, user_id: int) -> list[Path]: ...
    async def add_path(self, user_id: int, method_id: str, *, now: datetime) -> AddPathResult: ...
    async def remove_path(self, user_id: int, method_id: str) -> bool: ...
    async def set_step(
        self, user_id: int, method_id: str, step_index: int, *, done: bool
    ) -> frozenset[int]: ...
    async def save_quiz_result(
        self, user_id: int, answers: Mapping[str, str], ranking: Sequence[str], *, now: datetime
    ) -> None: ...
    async def get_quiz_result(self, user_id: int) -> QuizResult | None: ...


class TipStore(Protocol):
    """Subscriptions, and handing their due tips out to one sender at a time under a lease."""

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
    async def claim_due_tips(
        self, *, now: datetime, limit: int, lease_seconds: float, owner: str
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
    async def release_claims(self, owner: str | None) -> int: ...


class BroadcastStore(Protocol):
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
        self, *, now: datetime, limit: int, lease_seconds: float, owner: str
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
    async def admin_draft(self, user_id: int) -> AdminDraft | None: ...
    async def set_admin_draft(self, user_id: int, draft: AdminDraft | None) -> None: ...


class GroupStore(Protocol):
    async def upsert_group(self, chat_id: int, title: str, *, now: datetime) -> Group: ...
    async def set_group_language(self, chat_id: int, language: str) -> bool: ...
    async def get_group(self, chat_id: int) -> Group | None: ...
    async def remove_group(self, chat_id: int) -> bool: ...
    async def move_group(self, old_chat_id: int, new_chat_id: int) -> None: ...


class AccountStore(Protocol):
    """Data rights, statistics, and the questions nobody could answer (never linked to a user)."""

    async def export_user(self, user_id: int) -> dict[str, Any]: ...
    async def forget_user(self, user_id: int) -> None: ...
    async def stats(self, *, now: datetime) -> Stats: ...
    async def record_unanswered(self, query: str, *, now: datetime) -> None: ...
    async def top_unanswered(self, *, limit: int, now: datetime) -> list[tuple[str, int]]: ...


class RuntimeStore(Protocol):
    """What the running processes share: updates a stop handed back (raw JSON, handled first at
    the next start, by whichever process starts), named leases (the dispatcher's leadership) and
    the bot-wide send budget of all processes together."""

    async def hold_updates(self, raw: Sequence[str]) -> None: ...
    async def take_held_updates(self) -> list[str]: ...
    async def acquire_lease(
        self, name: str, owner: str, *, now: datetime, ttl_seconds: float, take_over: bool = False
    ) -> LeaseResult: ...
    async def release_lease(self, name: str, owner: str) -> None: ...
    async def take_send_tokens(self, slot: int, wanted: int, *, limit: int) -> int: ...


class CardStore(Protocol):
    """Picture cards Telegram already has (bot.cards): their file_id, to send again with no
    upload. Not user data: no one's export or forget touches it."""

    async def card_file_id(self, key: CardFileKey) -> str | None: ...
    async def save_card_file_id(self, key: CardFileKey, file_id: str, *, now: datetime) -> None: ...


class Store(
    UserStore,
    PathStore,
    TipStore,
    BroadcastStore,
    GroupStore,
    AccountStore,
    RuntimeStore,
    CardStore,
    Protocol,
):
    backend: str  # "sqlite" or "postgresql"

    async def close(self) -> None: ...
