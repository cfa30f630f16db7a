"""Inline mode: `@AyerPothBot <query>` in any chat lists the matching method cards to post there.

The results are in the user's language (picked in bot.app.identify_user). Each one posts the
compact share card with a button that opens the full card in the bot: a `/start <method id>`
deep link, which handlers.menu.open_payload understands. The "Share" button on a private card
pre-fills the method's button name, which finds exactly that method.

A method whose picture card Telegram already has (someone shared it as an image, or it was
uploaded ahead to CARD_UPLOAD_CHAT_ID) is offered as that photo too, right after its text card.
"""

from __future__ import annotations

from telegram import (
    InlineQueryResultArticle,
    InlineQueryResultCachedPhoto,
    InputTextMessageContent,
    Update,
)
from telegram.ext import BaseHandler, InlineQueryHandler

from bot.cards.build import method_card
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
    results: list[InlineQueryResultArticle | InlineQueryResultCachedPhoto] = []
    for method_id in found:
        results.append(article(ctx, method_id))
        if picture := await photo(ctx, method_id):
            results.append(picture)
    await query.answer(
        results[:MAX_RESULTS],
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


async def photo(ctx: AppContext, method_id: str) -> InlineQueryResultCachedPhoto | None:
    """The method's picture card, if Telegram has it (no upload is possible in an answer)."""
    card = method_card(ctx.library, ctx.lang, method_id, ctx.bot.username)
    file_id = await ctx.services.cards.file_id(card)
    if file_id is None:
        return None
    method = ctx.library.method(ctx.lang, method_id)
    return InlineQueryResultCachedPhoto(
        id=f"{method_id}.{ctx.lang}.photo",
        photo_file_id=file_id,
        title=f"{method.emoji} {method.title}",
        description=method.summary,
        caption=card.caption,
        reply_markup=keyboard([[open_in_bot(ctx, ctx.t("btn.open_card"), method_id)]]),
    )


def handlers() -> list[BaseHandler[Update, AppContext, None]]:
    return [InlineQueryHandler(inline_query)]
