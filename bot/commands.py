"""The bot's command list, built from one source for every language and chat type."""

from __future__ import annotations

from typing import Any

from telegram import (
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeDefault,
)
from telegram.ext import Application

from bot.config import LANGUAGES
from bot.content import Library

PRIVATE_COMMANDS = ("start", "methods", "quiz", "mypath", "tips", "language", "help")
# What works in groups (handlers.groups); the personal screens stay in private chats.
GROUP_COMMANDS = ("methods", "language", "help")


def bot_commands(library: Library, language: str, names: tuple[str, ...]) -> list[BotCommand]:
    return [BotCommand(name, library.t(language, f"cmd.{name}")) for name in names]


async def publish_commands(
    application: Application[Any, Any, Any, Any, Any, Any], library: Library, default_language: str
) -> None:
    """Set the private and group command menus per language (`language_code`), and the fallback.

    A user who picks a language in the bot also gets a chat-scoped list (see handlers.language),
    and so does a group whose admins pick its language (see handlers.groups).
    """
    bot = application.bot
    menus: tuple[tuple[BotCommandScope, tuple[str, ...]], ...] = (
        (BotCommandScopeDefault(), PRIVATE_COMMANDS),
        (BotCommandScopeAllPrivateChats(), PRIVATE_COMMANDS),
        (BotCommandScopeAllGroupChats(), GROUP_COMMANDS),
    )
    for scope, names in menus:
        await bot.set_my_commands(bot_commands(library, default_language, names), scope=scope)
        for language in LANGUAGES:
            await bot.set_my_commands(
                bot_commands(library, language, names), scope=scope, language_code=language
            )
