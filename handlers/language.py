"""Language: /language switches Bangla ⇄ English at once, for every screen and the command list."""

from __future__ import annotations

from telegram import BotCommandScopeChat, Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot import callbacks
from bot.callbacks import on_tap
from bot.commands import PRIVATE_COMMANDS, bot_commands
from bot.context import AppContext
from bot.languages import other_language
from bot.ui import post, show
from handlers.menu import main_menu


async def language_command(update: Update, ctx: AppContext) -> None:
    """/language: the other language."""
    await switch_language(update, ctx, other_language(ctx.lang))


async def language_button(update: Update, ctx: AppContext, data: callbacks.SetLanguage) -> None:
    """`lang:<code>` sets that language: tapped twice, or twice at once, it stays set and the
    answer is the same. A bare `lang` button switches to the other language."""
    await switch_language(update, ctx, data.code or other_language(ctx.lang))


async def switch_language(update: Update, ctx: AppContext, language: str) -> None:
    user = update.effective_user
    assert user is not None
    ctx.lang = language
    await ctx.store.set_language(user.id, ctx.lang, now=ctx.now())
    ctx.notify(ctx.t("language_changed"))
    # The command menu follows the chosen language, whatever the Telegram app's language is;
    # it is set while the new menu is shown, so the person does not wait for both in turn.
    post(
        update,
        ctx,
        ctx.bot.set_my_commands(
            bot_commands(ctx.library, ctx.lang, PRIVATE_COMMANDS),
            scope=BotCommandScopeChat(user.id),
        ),
    )
    await show(update, ctx, f"{ctx.t('language_changed')}\n\n{ctx.t('menu')}", main_menu(ctx))


def handlers() -> list[BaseHandler[Update, AppContext, None]]:
    return [
        CommandHandler("language", language_command, filters=filters.ChatType.PRIVATE),
        on_tap(callbacks.SetLanguage, language_button),
    ]
