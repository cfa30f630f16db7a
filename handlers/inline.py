"""Inline mode: `@AyerPothBot <query>` in any chat lists the matching method cards to post there.

The results are in the user's language (picked in bot.app.identify_user). Each one posts the
compact share card with a button that opens the full card in the bot: a `/start <method id>`
deep link, which handlers.menu.open_payload understands. The "Share" button on a private card
pre-fills the method's button name, which finds exactly that method.
"""

from __future__ import annotations

from telegram import InlineQueryResultArticle, InputTextMessageContent, Update
from telegram.ext import BaseHandler, InlineQueryHandler

from bot.context import AppContext
from bot.ui import keyboard, open_in_bot

MAX_RESULTS = 50  # Telegram's limit for one answer
# Content only changes with a restart; a few minutes of Telegram-side caching spares the bot
# a request per keystroke for popular queries.
CACHE_SECONDS = 300


async def inline_query(update: Update, ctx: AppContext) -> None:
    query = update.inline_query
    assert query is not None
    text = query.query.strip()
    found = ctx.library.find(text, limit=MAX_RESULTS) if text else list(ctx.library.method_ids)
    await query.answer(
        [article(ctx, method_id) for method_id in found[:MAX_RESULTS]],
        cache_time=CACHE_SECONDS,
        # Telegram shares cached answers between everyone who types the same query: only
        # answers in the default language may be shared.
        is_personal=ctx.lang != ctx.services.settings.default_language,
    )


def article(ctx: AppContext, method_id: str) -> InlineQueryResultArticle:
    """One result: the method's name and summary in the list, its share card once chosen."""
    method = ctx.library.method(ctx.lang, method_id)
    return InlineQueryResultArticle(
        id=f"{method_id}.{ctx.lang}",
        title=f"{method.emoji} {method.title}",
        description=method.summary,
        input_message_content=InputTextMessageContent(ctx.library.card(ctx.lang, method_id)),
        reply_markup=keyboard([[open_in_bot(ctx, ctx.t("btn.open_card"), method_id)]]),
    )


def handlers() -> list[BaseHandler[Update, AppContext, None]]:
    return [InlineQueryHandler(inline_query)]
