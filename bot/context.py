"""What every handler can reach: settings, content, store and clock, through a typed context."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from telegram.ext import Application, CallbackContext, ExtBot

from bot.config import Settings
from bot.content import Library

if TYPE_CHECKING:
    from bot.store import Store


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    """Long-lived components shared by all handlers; built once in `bot.app.build_application`."""

    settings: Settings
    library: Library
    store: Store
    clock: Callable[[], datetime] = utc_now


class BotData(dict[str, Any]):
    """`application.bot_data`: a dict (so persistence could keep it) that also carries the services."""

    services: Services


class AppContext(CallbackContext[ExtBot[None], dict[str, Any], dict[str, Any], BotData]):
    """CallbackContext with the per-update facts handlers need most: services and language."""

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        chat_id: int | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(application, chat_id=chat_id, user_id=user_id)
        self.lang: str = self.services.settings.default_language
        self.is_new_user = False
        self.callback_answered = False

    @property
    def services(self) -> Services:
        return self.bot_data.services

    @property
    def library(self) -> Library:
        return self.bot_data.services.library

    @property
    def store(self) -> Store:
        return self.bot_data.services.store

    def now(self) -> datetime:
        return self.bot_data.services.clock()

    def digits(self, value: object) -> str:
        """A number written with this update's language's digits (০-৯ in Bangla)."""
        return self.library.digits(self.lang, value)

    def t(self, key: str, **values: Any) -> str:
        """A UI string in this update's language."""
        return self.library.t(self.lang, key, **values)
