"""Language: /language switches Bangla ⇄ English at once, for every screen and the command list."""

from __future__ import annotations

from telegram import BotCommandScopeChat, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot import callbacks
from bot.commands import PRIVATE_COMMANDS, bot_commands
from bot.config import LANGUAGES
from bot.context import AppContext
from bot.ui import post, show
from handlers.menu import main_menu


async def switch_language(update: Update, ctx: AppContext) -> None:
    """`lang:<code>` sets that language: tapped twice, or twice at once, it stays set and the
    answer is the same. /language and a bare `lang` button switch to the other language."""
    user = update.effective_user
    assert user is not None
    target = ctx.match.group(1) if ctx.match and ctx.match.group(1) else None
    ctx.lang = target or next(lang for lang in LANGUAGES if lang != ctx.lang)
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
    codes = "|".join(LANGUAGES)
    return [
        CommandHandler("language", switch_language, filters=filters.ChatType.PRIVATE),
        CallbackQueryHandler(switch_language, pattern=f"^{callbacks.LANGUAGE}(?::({codes}))?$"),
    ]
