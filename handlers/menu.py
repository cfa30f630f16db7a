"""Welcome, main menu, method lists, info pages and help: the entry points of the guided tour.

/start <payload> opens its target directly (a method card, the quiz, my path); an unknown payload
falls back to the welcome.
"""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot import callbacks
from bot.content import LANGUAGES, PAGE_IDS
from bot.context import AppContext
from bot.ui import button, keyboard, nav_row, pairs, show
from handlers import answers, methods, mypath, quiz

LIST_KINDS = ("all", "active", "passive")


def main_menu(ctx: AppContext) -> InlineKeyboardMarkup:
    lib, lang = ctx.library, ctx.lang
    page = {pid: lib.page(lang, pid) for pid in PAGE_IDS}
    return keyboard(
        [
            [button(ctx.t("btn.active_passive"), callbacks.page("active_passive"))],
            [
                button(ctx.t("btn.active"), callbacks.list_of("active")),
                button(ctx.t("btn.passive"), callbacks.list_of("passive")),
            ],
            [button(ctx.t("btn.all"), callbacks.list_of("all"))],
            [button(ctx.t("btn.quiz"), callbacks.quiz())],
            [
                button(ctx.t("btn.my_path"), callbacks.MY_PATH),
                button(ctx.t("btn.tips"), callbacks.TIPS),
            ],
            *pairs(
                [
                    button(f"{page[pid].emoji} {page[pid].button}", callbacks.page(pid))
                    for pid in ("before_start", "safety", "getting_paid")
                ]
                + [
                    button(ctx.t("btn.faq"), callbacks.answers("faq")),
                    button(ctx.t("btn.help"), callbacks.HELP),
                ]
            ),
            # names the language it switches to, so a second tap changes nothing
            [button(ctx.t("btn.language"), callbacks.set_language(_other_language(ctx.lang)))],
        ]
    )


def _other_language(language: str) -> str:
    return next(code for code in LANGUAGES if code != language)


async def start(update: Update, ctx: AppContext) -> None:
    payload = ctx.args[0] if ctx.args else ""
    if payload and await open_payload(update, ctx, payload):
        return
    user = update.effective_user
    text = (
        ctx.t("welcome", name=user.first_name if user else "") if ctx.is_new_user else ctx.t("menu")
    )
    await show(update, ctx, text, main_menu(ctx))


async def open_payload(update: Update, ctx: AppContext, payload: str) -> bool:
    """Deep links: `?start=<method id>`, `?start=quiz`, `?start=mypath`."""
    if ctx.library.has_method(payload):
        await methods.show_card(update, ctx, payload, "all")
    elif payload == "quiz":
        await quiz.show_question(update, ctx, "")
    elif payload == "mypath":
        await mypath.show_paths(update, ctx)
    else:
        return False
    return True


async def home(update: Update, ctx: AppContext) -> None:
    await show(update, ctx, ctx.t("menu"), main_menu(ctx))


async def method_list(update: Update, ctx: AppContext) -> None:
    kind = (ctx.match.group(1) if ctx.match else "") or "all"
    await show_list(update, ctx, kind)


async def show_list(update: Update, ctx: AppContext, kind: str) -> None:
    entries = [
        button(f"{m.emoji} {m.button}", callbacks.card(m.id, kind))
        for m in ctx.library.methods(ctx.lang, kind)
    ]
    await show(update, ctx, ctx.t(f"list.{kind}"), keyboard([*pairs(entries), nav_row(ctx)]))


async def methods_command(update: Update, ctx: AppContext) -> None:
    await show_list(update, ctx, "all")


async def info_page(update: Update, ctx: AppContext) -> None:
    text, rows = answers.page_screen(ctx, ctx.match.group(1) if ctx.match else "")
    await show(update, ctx, text, keyboard(rows))


async def help_screen(update: Update, ctx: AppContext) -> None:
    await show(update, ctx, ctx.t("help"), keyboard([nav_row(ctx)]))


def handlers() -> list[BaseHandler[Update, AppContext, None]]:
    private = filters.ChatType.PRIVATE
    pages = "|".join(PAGE_IDS)
    return [
        CommandHandler("start", start, filters=private),
        CommandHandler("help", help_screen, filters=private),
        CommandHandler("methods", methods_command, filters=private),
        CallbackQueryHandler(home, pattern=f"^{callbacks.HOME}$"),
        CallbackQueryHandler(help_screen, pattern=f"^{callbacks.HELP}$"),
        CallbackQueryHandler(method_list, pattern=f"^list:({'|'.join(LIST_KINDS)})$"),
        CallbackQueryHandler(info_page, pattern=f"^page:({pages})$"),
    ]
