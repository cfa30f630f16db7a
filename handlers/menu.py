"""Welcome, main menu, method lists, info pages and help: the entry points of the guided tour.

/start <payload> opens its target directly (a method card, the quiz, my path); an unknown payload
falls back to the welcome.
"""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot import callbacks
from bot.callbacks import on_tap
from bot.content import PAGE_IDS
from bot.context import AppContext
from bot.languages import other_language
from bot.ui import button, keyboard, nav_row, pairs, show
from handlers import answers, methods, mypath, quiz


def main_menu(ctx: AppContext) -> InlineKeyboardMarkup:
    lib, lang = ctx.library, ctx.lang
    page = {pid: lib.page(lang, pid) for pid in PAGE_IDS}
    return keyboard(
        [
            [button(ctx.t("btn.active_passive"), callbacks.InfoPage("active_passive").pack())],
            [
                button(ctx.t("btn.active"), callbacks.MethodList("active").pack()),
                button(ctx.t("btn.passive"), callbacks.MethodList("passive").pack()),
            ],
            [button(ctx.t("btn.all"), callbacks.MethodList("all").pack())],
            [button(ctx.t("btn.quiz"), callbacks.Quiz().pack())],
            [
                button(ctx.t("btn.my_path"), callbacks.MY_PATH.pack()),
                button(ctx.t("btn.tips"), callbacks.TIPS.pack()),
            ],
            *pairs(
                [
                    button(f"{page[pid].emoji} {page[pid].button}", callbacks.InfoPage(pid).pack())
                    for pid in ("before_start", "safety", "getting_paid")
                ]
                + [
                    button(ctx.t("btn.faq"), callbacks.AnswerList("faq").pack()),
                    button(ctx.t("btn.help"), callbacks.HELP.pack()),
                ]
            ),
            # names the language it switches to, so a second tap changes nothing
            [
                button(
                    ctx.t("btn.language"),
                    callbacks.SetLanguage(other_language(ctx.lang)).pack(),
                )
            ],
        ]
    )


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


async def method_list(update: Update, ctx: AppContext, data: callbacks.MethodList) -> None:
    await show_list(update, ctx, data.kind)


async def show_list(update: Update, ctx: AppContext, kind: str) -> None:
    entries = [
        button(f"{m.emoji} {m.button}", callbacks.Card(m.id, kind).pack())
        for m in ctx.library.methods(ctx.lang, kind)
    ]
    await show(update, ctx, ctx.t(f"list.{kind}"), keyboard([*pairs(entries), nav_row(ctx)]))


async def methods_command(update: Update, ctx: AppContext) -> None:
    await show_list(update, ctx, "all")


async def info_page(update: Update, ctx: AppContext, data: callbacks.InfoPage) -> None:
    text, rows = answers.page_screen(ctx, data.page)
    await show(update, ctx, text, keyboard(rows))


async def help_screen(update: Update, ctx: AppContext) -> None:
    await show(update, ctx, ctx.t("help"), keyboard([nav_row(ctx)]))


def handlers() -> list[BaseHandler[Update, AppContext, None]]:
    private = filters.ChatType.PRIVATE
    return [
        CommandHandler("start", start, filters=private),
        CommandHandler("help", help_screen, filters=private),
        CommandHandler("methods", methods_command, filters=private),
        on_tap(callbacks.HOME, home),
        on_tap(callbacks.HELP, help_screen),
        on_tap(callbacks.MethodList, method_list),
        on_tap(callbacks.InfoPage, info_page),
    ]
