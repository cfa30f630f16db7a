"""The global error handler: log the failure once, and never leave the user without an answer."""

from __future__ import annotations

import logging
import sqlite3

from telegram import Update
from telegram.error import Forbidden, TelegramError

from bot.context import AppContext, update_language
from bot.ui import StaleButton, answer
from handlers.fallback import stale_button

log = logging.getLogger(__name__)


async def on_error(update: object, ctx: AppContext) -> None:
    """Stale buttons get the current menu; anything else a short apology in the user's language."""
    try:  # PTB made this context afresh: the language identify_user chose is not on it
        ctx.lang = await update_language(update, ctx.services)
    except sqlite3.Error as exc:
        log.warning("answering in %s, the user's language is unknown: %s", ctx.lang, exc)
    if isinstance(update, Update) and isinstance(ctx.error, StaleButton):
        await stale_button(update, ctx)
        return
    update_id = update.update_id if isinstance(update, Update) else None
    log.error("update %s failed: %r", update_id, ctx.error, exc_info=ctx.error)
    if not isinstance(update, Update) or isinstance(ctx.error, Forbidden):
        return
    query = update.callback_query
    try:
        if query is not None and query.id not in ctx.services.answered:
            await answer(update, ctx, ctx.t("error"))
        elif (
            update.effective_message is not None
            and update.effective_chat is not None
            and update.effective_chat.type == "private"
        ):
            # Also a tap already answered (the spinner stopped) whose screen then failed.
            await update.effective_chat.send_message(ctx.t("error"))
    except TelegramError as exc:
        log.warning("could not apologise for update %s: %s", update_id, exc)
