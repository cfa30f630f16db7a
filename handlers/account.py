"""Data rights: /mydata shows everything stored about the user; /forget deletes all of it.

Confirming /forget twice (a double tap, two taps in flight) deletes the same and says the same:
the second tap finds nothing left but the row its own update just made, and deletes that too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot import callbacks
from bot.callbacks import on_tap
from bot.context import AppContext
from bot.languages import LANGUAGE_NAMES
from bot.ui import button, keyboard, nav_row, show


async def my_data(update: Update, ctx: AppContext) -> None:
    assert update.effective_user is not None
    data = await ctx.store.export_user(update.effective_user.id)
    none = ctx.t("data.none")
    user = data.get("user") or {}
    tz = ctx.services.settings.timezone

    def when(iso: str | None) -> str:
        return (
            ctx.library.when(ctx.lang, datetime.fromisoformat(iso).astimezone(tz)) if iso else none
        )

    def method_name(method_id: str) -> str:
        if ctx.library.has_method(method_id):
            return ctx.library.method(ctx.lang, method_id).button
        return method_id  # a method since removed from the content: still the user's data

    def path_line(path: dict[str, Any]) -> str:
        done = len(path["done_steps"])
        if not ctx.library.has_method(path["method_id"]):
            return f"{path['method_id']} ({ctx.digits(done)})"
        total = len(ctx.library.method(ctx.lang, path["method_id"]).first_steps)
        return (
            f"{method_name(path['method_id'])} ({ctx.t('path.progress', done=done, total=total)})"
        )

    paths = [path_line(p) for p in data.get("paths", [])]
    quiz = data.get("quiz")
    subs = [
        f"{method_name(s['method_id'])} ({'🔔' if s['active'] else '🔕'})"
        for s in data.get("subscriptions", [])
    ]
    lines = [
        ctx.t("data.title"),
        "",
        # Never chosen: the language in use all along, the default one ("ভাষা: বাংলা", not "নেই").
        ctx.t("data.language", value=LANGUAGE_NAMES.get(user.get("language") or ctx.lang, none)),
        ctx.t("data.first_seen", value=when(user.get("first_seen"))),
        ctx.t("data.last_seen", value=when(user.get("last_seen"))),
        ctx.t("data.paths", value=", ".join(paths) or none),
        ctx.t(
            "data.quiz",
            value=", ".join(method_name(m) for m in quiz["ranking"][:3]) if quiz else none,
        ),
        ctx.t("data.subscriptions", value=", ".join(subs) or none),
        ctx.t("data.tips_sent", value=data.get("tips_sent", {}).get("count", 0)),
        "",
        ctx.t("data.footer"),
    ]
    await show(update, ctx, "\n".join(lines), keyboard([nav_row(ctx)]))


async def forget(update: Update, ctx: AppContext) -> None:
    rows = [
        [button(ctx.t("btn.forget_yes"), callbacks.FORGET_YES.pack())],
        [button(ctx.t("btn.cancel"), callbacks.FORGET_NO.pack())],
    ]
    await show(update, ctx, ctx.t("data.forget_confirm"), keyboard(rows))


async def keep_data(update: Update, ctx: AppContext) -> None:
    await show(update, ctx, ctx.t("data.kept"), keyboard([nav_row(ctx)]))


async def forget_all(update: Update, ctx: AppContext) -> None:
    assert update.effective_user is not None
    user_id = update.effective_user.id
    await ctx.store.forget_user(user_id)
    # Not a dead end: one tap starts again (a new user from then on).
    again = keyboard([[button(ctx.t("btn.start_again"), callbacks.HOME.pack())]])
    await show(update, ctx, ctx.t("data.forgotten"), again)


def handlers() -> list[BaseHandler[Update, AppContext, None]]:
    private = filters.ChatType.PRIVATE
    return [
        CommandHandler("mydata", my_data, filters=private),
        CommandHandler("forget", forget, filters=private),
        on_tap(callbacks.FORGET_YES, forget_all),
        on_tap(callbacks.FORGET_NO, keep_data),
    ]
