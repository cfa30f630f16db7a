"""The floor for PTB: a bare echo bot, with PTB's httpx backend or ours (bot.request)."""

from __future__ import annotations

import argparse
import os

from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.app import CONCURRENT_UPDATES
from bot.request import build_requests


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.message is not None and update.message.text is not None
    await update.message.reply_text(update.message.text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["httpx", "aiohttp"], default="httpx")
    args = parser.parse_args()
    request, get_updates_request = build_requests(args.backend)
    application = (
        ApplicationBuilder()
        .token(os.environ["BOT_TOKEN"])
        .base_url(f"{os.environ['BOT_API_URL']}/bot")
        .request(request)
        .get_updates_request(get_updates_request)
        .concurrent_updates(
            CONCURRENT_UPDATES
        )  # as the full bot; PTB's default handles one at a time
        .build()
    )
    application.add_handler(MessageHandler(filters.TEXT, echo))
    application.run_polling(allowed_updates=Update.ALL_TYPES)


if __name__ == "__main__":
    main()
