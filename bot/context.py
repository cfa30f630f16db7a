"""What every handler can reach: settings, content, store and clock, through a typed context."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from telegram.ext import Application, CallbackContext, ExtBot

from bot.config import Settings
from bot.content import Library
from bot.outbox import Outbox

if TYPE_CHECKING:
    from bot.store import Store


def utc_now() -> datetime:
    return datetime.now(UTC)


class AnsweredQueries:
    """Ids of callback queries already answered, so the error handler never answers twice.

    PTB gives the error handler a new context, and updates take no attributes; the last few
    thousand ids are plenty, since Telegram refuses an answer after a few seconds anyway.
    """

    def __init__(self, keep: int = 4096) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._keep = keep

    def add(self, query_id: str) -> None:
        self._ids[query_id] = None
        if len(self._ids) > self._keep:
            self._ids.popitem(last=False)

    def __contains__(self, query_id: object) -> bool:
        return query_id in self._ids


@dataclass
class Services:
    """Long-lived components shared by all handlers; built once in `bot.app.build_application`."""

    settings: Settings
    library: Library
    store: Store
    clock: Callable[[], datetime] = utc_now
    answered: AnsweredQueries = field(default_factory=AnsweredQueries)
    outbox: Outbox = field(default_factory=Outbox)


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
        self.notice: str | None = None
        self.notice_alert = False

    @property
    def services(self) -> Services:
        return self.bot_data.services

    @property
    def library(self) -> Library:
        return self.bot_data.services.library

    @property
    def store(self) -> Store:
        return self.bot_data.services.store

    def notify(self, text: str, *, alert: bool = False) -> None:
        """A popup for the tapped button, sent together with the next screen: one round trip."""
        self.notice, self.notice_alert = text, alert

    def now(self) -> datetime:
        return self.bot_data.services.clock()

    def digits(self, value: object) -> str:
        """A number written with this update's language's digits (০-৯ in Bangla)."""
        return self.library.digits(self.lang, value)

    def t(self, key: str, **values: Any) -> str:
        """A UI string in this update's language."""
        return self.library.t(self.lang, key, **values)
