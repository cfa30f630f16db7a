"""The bot's command list, built from one source for every language and chat type."""

from __future__ import annotations

from typing import Any

from telegram import BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeDefault
from telegram.ext import Application

from bot.config import LANGUAGES
from bot.content import Library

PRIVATE_COMMANDS = ("start", "methods", "quiz", "mypath", "language", "help")


def bot_commands(library: Library, language: str, names: tuple[str, ...]) -> list[BotCommand]:
    return [BotCommand(name, library.t(language, f"cmd.{name}")) for name in names]


async def publish_commands(
    application: Application[Any, Any, Any, Any, Any, Any], library: Library, default_language: str
) -> None:
    """Set the private-chat command menu per language (`language_code`), and the fallback.

    A user who picks a language in the bot also gets a chat-scoped list (see handlers.language).
    """
    bot = application.bot
    for scope in (BotCommandScopeDefault(), BotCommandScopeAllPrivateChats()):
        await bot.set_my_commands(
            bot_commands(library, default_language, PRIVATE_COMMANDS), scope=scope
        )
        for language in LANGUAGES:
            await bot.set_my_commands(
                bot_commands(library, language, PRIVATE_COMMANDS),
                scope=scope,
                language_code=language,
            )
