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
from telegram.ext import BaseHandler

from bot import callbacks
from bot.callbacks import on_tap
from bot.cards.build import QUIZ_PAYLOAD, method_card, quiz_card, tip_card
from bot.cards.model import Card
from bot.context import AppContext
from bot.ui import answer, keyboard, open_in_bot, post
from handlers.quiz import recommend


async def share_method(update: Update, ctx: AppContext, data: callbacks.ShareMethodImage) -> None:
    card = method_card(ctx.library, ctx.lang, data.method, ctx.bot.username)
    await _share(update, ctx, card, open_in_bot(ctx, ctx.t("btn.open_card"), data.method))


async def share_tip(update: Update, ctx: AppContext, data: callbacks.ShareTipImage) -> None:
    card = tip_card(ctx.library, ctx.lang, data.method, data.index, ctx.bot.username)
    await _share(update, ctx, card, open_in_bot(ctx, ctx.t("btn.open_card"), data.method))


async def share_quiz(update: Update, ctx: AppContext, data: callbacks.ShareQuizImage) -> None:
    picks = [pick.method_id for pick in recommend(ctx.library, data.answers).picks]
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
        on_tap(callbacks.ShareMethodImage, share_method),
        on_tap(callbacks.ShareTipImage, share_tip),
        on_tap(callbacks.ShareQuizImage, share_quiz),
    ]
