"""The global error handler: log the failure once, and never leave the user without an answer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.error import BadRequest, Forbidden

from bot.callbacks import StaleButton
from bot.context import AppContext, update_language
from bot.store import StoreError
from bot.ui import answer

log = logging.getLogger(__name__)
Screen = Callable[[Update, AppContext], Coroutine[Any, Any, None]]

# Telegram's refusal of a second (or late) answerCallbackQuery.
QUERY_TOO_OLD = "query is too old"


def error_handler(
    stale_button: Screen,
) -> Callable[[object, AppContext], Coroutine[Any, Any, None]]:
    """The global error handler. `stale_button` answers a button that leads nowhere any more
    (handlers.fallback's: the current menu); it is passed in, so `bot` never imports `handlers`."""

    async def on_error(update: object, ctx: AppContext) -> None:
        """Stale buttons get the current menu; anything else a short apology in the user's
        language."""
        try:  # PTB made this context afresh: the language identify_user chose is not on it
            ctx.lang = await update_language(update, ctx.services)
        except StoreError as exc:
            log.warning("answering in %s, the user's language is unknown: %s", ctx.lang, exc)
        if isinstance(update, Update) and isinstance(ctx.error, StaleButton):
            await stale_button(update, ctx)
            return
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("update %s failed: %r", update_id, ctx.error, exc_info=ctx.error)
        if isinstance(update, Update) and not isinstance(ctx.error, Forbidden):
            await apologise(update, ctx)

    return on_error


async def send_failed(update: object, ctx: AppContext, error: Exception) -> None:
    """A reply posted to the outbox failed (not flood control: that is never apologised for)."""
    update_id = update.update_id if isinstance(update, Update) else None
    if isinstance(error, Forbidden):  # blocked, or removed from the group: nobody to tell
        log.info("update %s: reply refused: %s", update_id, error)
        return
    if isinstance(error, BadRequest) and QUERY_TOO_OLD in error.message.lower():
        # The tap was answered already (a webhook update delivered again after the worker that
        # handled it died before saying 200) or too late: the spinner is gone either way, and
        # the screen that follows is the answer. An apology would only contradict it.
        log.info("update %s: the tap's answer came too late or twice: %s", update_id, error)
        return
    log.error("update %s failed: %r", update_id, error, exc_info=error)
    if isinstance(update, Update):
        await apologise(update, ctx)


async def apologise(update: Update, ctx: AppContext) -> None:
    """The apology, posted like any reply: the tap's answer if still owed, else a message in private.

    Also for a tap already answered (the spinner stopped) whose screen then failed. If the
    apology itself fails, that is only logged.
    """
    query = update.callback_query
    if query is not None and query.id not in ctx.services.answered:
        await answer(update, ctx, ctx.t("error"), apology=True)
    elif (
        update.effective_message is not None
        and update.effective_chat is not None
        and update.effective_chat.type == "private"
    ):
        send = update.effective_chat.send_message(ctx.t("error"))
        ctx.services.outbox.post(update, ctx, send, apology=True)
