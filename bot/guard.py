"""One guard in front of every handler: the update kinds the bot serves go on, the rest stop here.

The bot serves new messages (private chats and groups), button taps, inline queries and changes
to its own membership. Everything else is ignored explicitly, before anything records a user or
answers: business messages and connections (a Premium account's customers are not the bot's
users, and "chat not found" is all an answer would get), edited messages (an edited old /start
must not run again), channel posts, reactions, polls, payments, boosts and kinds that do not
exist yet. `bot.intake.ALLOWED_UPDATES` asks Telegram for the served kinds only; this guard holds
even when a server sends more.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop, BaseHandler, TypeHandler

from bot.context import AppContext

log = logging.getLogger(__name__)

# A group of its own, before all others (a group runs only its first matching handler).
GUARD_GROUP = -100
# Where a message may come from: not a channel (channel posts arrive as channel_post anyway).
_CHAT_TYPES = frozenset({"private", "group", "supergroup"})


def served(update: Update) -> bool:
    """True for an update some handler of the bot is meant for."""
    if update.message is not None:
        message = update.message
        # A business message arrives as business_message, but never trust a kind alone.
        return message.chat.type in _CHAT_TYPES and message.business_connection_id is None
    if update.callback_query is not None:
        return update.callback_query.message is None or (
            update.callback_query.message.chat.type in _CHAT_TYPES
        )
    return update.inline_query is not None or update.my_chat_member is not None


async def ignore_unserved(update: Update, ctx: AppContext) -> None:
    if not served(update):
        log.debug("update %s ignored: not a kind the bot serves", update.update_id)
        raise ApplicationHandlerStop


def guard() -> BaseHandler[Update, AppContext, None]:
    """The handler for GUARD_GROUP, ahead of every other."""
    return TypeHandler(Update, ignore_unserved)
