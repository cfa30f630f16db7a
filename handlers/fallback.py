"""Whatever no other handler took: free-text questions, unknown commands, media, and stale buttons.

Registered last. A typed question is answered with the matching method cards (keywords in both
languages); a button from an old message gets "this menu was updated" and the current menu.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, MessageHandler, filters

from bot import callbacks
from bot.context import AppContext
from bot.ui import button, keyboard, nav_row, pairs, show
from handlers.menu import main_menu

MAX_QUERY_SHOWN = 60


async def free_text(update: Update, ctx: AppContext) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None
    query = message.text.strip()
    shown = query if len(query) <= MAX_QUERY_SHOWN else query[: MAX_QUERY_SHOWN - 1] + "…"
    found = ctx.library.find(query)
    if not found:
        await show(update, ctx, ctx.t("not_found", query=shown), main_menu(ctx))
        return
    entries = []
    for method_id in found:
        method = ctx.library.method(ctx.lang, method_id)
        entries.append(button(f"{method.emoji} {method.button}", callbacks.card(method_id, "find")))
    await show(update, ctx, ctx.t("found", query=shown), keyboard([*pairs(entries), nav_row(ctx)]))


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
        MessageHandler(private & filters.TEXT & ~filters.FORWARDED, free_text),
        MessageHandler(private, unsupported),
        CallbackQueryHandler(stale_button),
    ]
