"""The floors for aiogram 3 (a bench-only dependency): a bare echo bot, and a bare menu bot that
does per tap the API work the full bot does (answer the callback, edit the message with a new
screen of Bangla HTML and buttons) without a store or templates.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from aiogram import Bot, Dispatcher, F
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import CommandStart
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

SCREENS = 12
# About the size of the full bot's screens: a bold title, a few Bangla paragraphs, 2-8 buttons.
_BODY = (
    "অনলাইনে আয়ের পথ অনেক, কিন্তু কোনোটাই রাতারাতি নয়। শুরুর খরচ, প্রথম আয় পর্যন্ত সময়, দরকারি দক্ষতা "
    "আর সাধারণ ভুলগুলো জেনে নিন, তারপর একটি পথ বেছে প্রথম ধাপগুলো শেষ করুন।\n\n"
)


def screen(number: int) -> tuple[str, InlineKeyboardMarkup]:
    text = f"<b>পর্দা {number}</b>\n\n" + _BODY * (1 + number % 3)
    targets = [(number + step) % SCREENS for step in range(1, 2 + number % 7)]
    rows = [
        [
            InlineKeyboardButton(text=f"➡️ পর্দা {t}", callback_data=f"s:{t}")
            for t in targets[i : i + 2]
        ]
        for i in range(0, len(targets), 2)
    ]
    if number:  # no button leads to the screen it is on: Telegram refuses an unchanged edit
        rows.append([InlineKeyboardButton(text="🏠 মূল মেনু", callback_data="s:0")])
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


def build(kind: str) -> Dispatcher:
    dispatcher = Dispatcher()
    if kind == "echo":

        @dispatcher.message(F.text)
        async def echo(message: Message) -> None:
            await message.answer(message.text or "")

        return dispatcher

    @dispatcher.message(CommandStart())
    async def start(message: Message) -> None:
        text, markup = screen(0)
        await message.answer(text, reply_markup=markup)

    @dispatcher.callback_query(F.data.startswith("s:"))
    async def tap(query: CallbackQuery) -> None:
        number = int((query.data or "s:0")[2:])
        text, markup = screen(number)
        await query.answer()
        if isinstance(query.message, Message):
            await query.message.edit_text(text, reply_markup=markup)

    return dispatcher


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["echo", "menu"])
    args = parser.parse_args()
    session = AiohttpSession(api=TelegramAPIServer.from_base(os.environ["BOT_API_URL"]))
    bot = Bot(
        os.environ["BOT_TOKEN"], session=session, default=DefaultBotProperties(parse_mode="HTML")
    )
    await build(args.kind).start_polling(bot, polling_timeout=10, handle_signals=True)


if __name__ == "__main__":
    asyncio.run(main())
