"""Whatever no other handler took: free-text questions, unknown commands, media, and stale buttons.

Registered last. A typed question gets the best answer from everything the bot says (see
bot/search.py), a greeting a short reply; a button from an old message gets "this menu was
updated" and the current menu.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, MessageHandler, filters

from bot.context import AppContext
from bot.search import on_search_thread
from bot.ui import show
from handlers import answers
from handlers.menu import main_menu


async def free_text(update: Update, ctx: AppContext) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None
    query = message.text.strip()
    library = ctx.library  # the index is built on the search thread too, if it is not yet
    outcome = await on_search_thread(lambda: library.search.search(query))
    if outcome.kind == "smalltalk":
        await show(update, ctx, ctx.t(f"smalltalk.{outcome.smalltalk}"), main_menu(ctx))
    elif outcome.kind == "answer":
        await answers.answer_question(update, ctx, outcome)
    else:
        await answers.no_answer(update, ctx, query, outcome)


async def unknown_command(update: Update, ctx: AppContext) -> None:
    await show(update, ctx, ctx.t("unknown_command"), main_menu(ctx))


async def unsupported(update: Update, ctx: AppContext) -> None:
    await show(update, ctx, ctx.t("unsupported"), None)


async def stale_button(update: Update, ctx: AppContext) -> None:
    """A button whose data no handler knows: made by an older version of the bot or forged."""
    ctx.notify(ctx.t("stale"))
    await show(update, ctx, ctx.t("menu"), main_menu(ctx))


def handlers() -> list[BaseHandler[Update, AppContext, None]]:
    private = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    return [
        MessageHandler(private & filters.COMMAND, unknown_command),
        # a card shared "via @bot" into this chat is not a question
        MessageHandler(private & filters.TEXT & ~filters.FORWARDED & ~filters.VIA_BOT, free_text),
        MessageHandler(private, unsupported),
        CallbackQueryHandler(stale_button),
    ]
