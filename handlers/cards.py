"""Share as image (🖼): a method card, a weekly tip or a quiz result sent as a picture.

People in Bangladesh share pictures more than links: a card forwarded to a WhatsApp group or
posted on Facebook travels further than a Telegram message. The picture (bot.cards) carries the
bot's name and a QR code of the card's deep link; the caption has the link too, and a button
opens the full card in the bot where Telegram shows buttons.

The tap is answered at once; drawing and sending run in the outbox (bot.ui.post). A second tap
while the first picture is on its way sends nothing more.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, Update
from telegram.ext import BaseHandler, CallbackQueryHandler

from bot.cards.build import QUIZ_PAYLOAD, method_card, quiz_card, tip_card
from bot.cards.model import Card
from bot.context import AppContext
from bot.ui import StaleButton, answer, keyboard, open_in_bot, post
from handlers.quiz import recommend, valid_choices

_ID = r"([a-z][a-z0-9_]{1,15})"


async def share_method(update: Update, ctx: AppContext) -> None:
    assert ctx.match is not None
    method_id = ctx.match.group(1)
    if not ctx.library.has_method(method_id):
        raise StaleButton
    card = method_card(ctx.library, ctx.lang, method_id, ctx.bot.username)
    await _share(update, ctx, card, open_in_bot(ctx, ctx.t("btn.open_card"), method_id))


async def share_tip(update: Update, ctx: AppContext) -> None:
    assert ctx.match is not None
    method_id, index = ctx.match.group(1), int(ctx.match.group(2))
    if not ctx.library.has_method(method_id) or index >= ctx.library.tip_count(method_id):
        raise StaleButton
    card = tip_card(ctx.library, ctx.lang, method_id, index, ctx.bot.username)
    await _share(update, ctx, card, open_in_bot(ctx, ctx.t("btn.open_card"), method_id))


async def share_quiz(update: Update, ctx: AppContext) -> None:
    assert ctx.match is not None
    choices = ctx.match.group(1)
    if len(choices) != len(ctx.library.quiz_questions) or not valid_choices(ctx.library, choices):
        raise StaleButton  # the quiz changed since the result was shown
    picks = [pick.method_id for pick in recommend(ctx.library, choices).picks]
    card = quiz_card(ctx.library, ctx.lang, picks, ctx.bot.username)
    await _share(update, ctx, card, open_in_bot(ctx, ctx.t("btn.quiz"), QUIZ_PAYLOAD))


async def _share(update: Update, ctx: AppContext, card: Card, link: InlineKeyboardButton) -> None:
    await answer(update, ctx)
    chat = update.effective_chat
    assert chat is not None
    cards = ctx.services.cards
    sharing = (chat.id, card.name, card.language)
    if sharing in cards.sharing:  # a second tap while the first picture is on its way
        return
    cards.sharing.add(sharing)

    async def send() -> None:
        try:
            await cards.send(ctx.bot, chat.id, card, reply_markup=keyboard([[link]]))
        finally:
            cards.sharing.discard(sharing)

    post(update, ctx, send())


def handlers() -> list[BaseHandler[Update, AppContext, None]]:
    return [
        CallbackQueryHandler(share_method, pattern=f"^img:m:{_ID}$"),
        CallbackQueryHandler(share_tip, pattern=f"^img:t:{_ID}:(\\d{{1,2}})$"),
        CallbackQueryHandler(share_quiz, pattern=r"^img:q:(\d{1,8})$"),
    ]
