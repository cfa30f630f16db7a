"""What every handler can reach: settings, content, store and clock, through a typed context."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import Application, CallbackContext, ExtBot

from bot.config import LANGUAGES, Settings
from bot.content import Library
from bot.intake import Inbox
from bot.leader import Leadership
from bot.outbox import Outbox

if TYPE_CHECKING:
    from bot.cards.service import CardService
    from bot.outbox.dispatcher import Dispatcher
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


class ShownScreens:
    """What the bot last put into each recently edited message, as a fingerprint, and the version
    of the message (as the tap carried it) that it edited.

    Two taps in flight at once both carry the message as it was before either; the second would
    edit it to the screen the first just drew, and Telegram refuses an edit that changes nothing.
    Keyed by (chat id, message id). When two different edits of one message overlap, which one
    Telegram applied last is unknown: the message is forgotten, and the next tap edits it. A tap
    that carries another version of the message than the one edited from (another worker of a
    cluster edited it since) is not such a twin: it edits.
    """

    def __init__(self, keep: int = 1024) -> None:
        self._screens: OrderedDict[tuple[int, int], tuple[int, object, int]] = OrderedDict()
        self._keep = keep
        self._edits = 0

    def shows(self, key: tuple[int, int], fingerprint: int, seen: object) -> bool:
        """Whether this process is putting `fingerprint` into the message, edited from the
        version `seen` that this tap carries too."""
        entry = self._screens.get(key)
        return entry is not None and entry[:2] == (fingerprint, seen)

    def editing(self, key: tuple[int, int], fingerprint: int, seen: object) -> int:
        """Before an edit of version `seen`: returns a number to pass to `edited`."""
        self._edits += 1
        self._screens[key] = (fingerprint, seen, self._edits)
        self._screens.move_to_end(key)
        if len(self._screens) > self._keep:
            self._screens.popitem(last=False)
        return self._edits

    def edited(self, key: tuple[int, int], edit: int, *, ok: bool) -> None:
        """After an edit: kept if it succeeded and no other edit of the message began meanwhile."""
        entry = self._screens.get(key)
        if entry is not None and (not ok or entry[2] != edit):
            del self._screens[key]


@dataclass
class Services:
    """Long-lived components shared by all handlers; built once in `bot.app.build_application`."""

    settings: Settings
    library: Library
    store: Store
    cards: CardService  # picture cards: drawn in a worker process, uploaded once
    leadership: Leadership  # whether this process sends the tips (bot.leader)
    clock: Callable[[], datetime] = utc_now
    answered: AnsweredQueries = field(default_factory=AnsweredQueries)
    screens: ShownScreens = field(default_factory=ShownScreens)
    inbox: Inbox = field(default_factory=Inbox)  # updates in hand, and those PTB could not read
    outbox: Outbox = field(default_factory=Outbox)  # replies posted and not yet sent
    # Sends the tips and broadcasts; it needs the services, so it is set right after them.
    dispatcher: Dispatcher = field(init=False, repr=False)

    # Work started at start-up that runs on while serving (search index, lease keeper).
    background: set[asyncio.Future[Any]] = field(default_factory=set)

    @property
    def worker_id(self) -> str:
        return self.settings.worker_id

    def in_background(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def cancel_background(self) -> None:
        for task in list(self.background):
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)


async def user_language(services: Services, user_id: int, *, hint: str | None = None) -> str:
    """A person's language: the one they chose, else their Telegram app's (`hint`, given where
    nothing better is known, as in inline mode), else the default. A recently active user's row
    is in the store's memory, so this costs no query on most taps."""
    saved = await services.store.get_user(user_id)
    if saved is not None and saved.language:
        return saved.language
    hint = (hint or "")[:2]
    return hint if hint in LANGUAGES else services.settings.default_language


async def update_language(update: object, services: Services) -> str:
    """The language an update is answered in; the one place that decides it.

    `bot.app.identify_user` sets it on every handler's context. PTB gives the error handler a
    fresh context, so `bot.errors` asks here again: a stale button is answered in the language
    of the person who tapped it. In a group: the group's language, whoever writes.
    """
    default = services.settings.default_language
    if not isinstance(update, Update):
        return default
    chat, user = update.effective_chat, update.effective_user
    if chat is not None and chat.type in (ChatType.GROUP, ChatType.SUPERGROUP):
        group = await services.store.get_group(chat.id)
        return (group.language if group else None) or default
    if user is None or user.is_bot:
        return default
    if chat is None:  # inline queries and buttons on shared messages: no chat to go by
        return await user_language(services, user.id, hint=user.language_code)
    if chat.type == ChatType.PRIVATE:
        return await user_language(services, user.id)
    return default  # channels


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
