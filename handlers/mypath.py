"""My path: the methods a user chose (at most three) with a first-steps checklist they tick off."""

from __future__ import annotations

from html import escape

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot import callbacks
from bot.context import AppContext
from bot.store import Path
from bot.ui import StaleButton, button, keyboard, nav_row, show

_ID = r"([a-z][a-z0-9_]{1,15})"


async def _paths(update: Update, ctx: AppContext) -> list[Path]:
    assert update.effective_user is not None
    # A method removed from the content is skipped rather than shown broken.
    return [
        p
        for p in await ctx.store.list_paths(update.effective_user.id)
        if ctx.library.has_method(p.method_id)
    ]


async def show_paths(update: Update, ctx: AppContext) -> None:
    paths = await _paths(update, ctx)
    if not paths:
        rows = [
            [button(ctx.t("btn.quiz"), callbacks.quiz())],
            [button(ctx.t("btn.all"), callbacks.list_of("all"))],
        ]
        await show(update, ctx, ctx.t("path.empty"), keyboard([*rows, nav_row(ctx)]))
        return
    lines = [ctx.t("path.title")]
    rows = []
    for p in paths:
        method = ctx.library.method(ctx.lang, p.method_id)
        progress = ctx.t(
            "path.progress",
            done=len(p.done_steps),
            total=len(method.first_steps),
        )
        lines.append(f"{method.emoji} {escape(method.button)} — {progress}")  # "&" in names
        rows.append([button(f"{method.emoji} {method.button}", callbacks.path(p.method_id))])
    await show(update, ctx, "\n".join(lines), keyboard([*rows, nav_row(ctx)]))


async def show_checklist(update: Update, ctx: AppContext, method_id: str) -> None:
    path = next((p for p in await _paths(update, ctx) if p.method_id == method_id), None)
    if path is None:
        ctx.notify(ctx.t("path.not_chosen"))
        await show_paths(update, ctx)
        return
    method = ctx.library.method(ctx.lang, method_id)
    text = ctx.library.render(ctx.lang, "section_steps.j2", m=method, done=path.done_steps)
    progress = ctx.t(
        "path.progress",
        done=len(path.done_steps),
        total=len(method.first_steps),
    )
    text += f"\n\n<b>{progress}</b>\n{ctx.t('path.checklist')}"
    ticks = [
        button(
            f"{'✅' if i in path.done_steps else '▫️'} {ctx.digits(i + 1)}",
            callbacks.toggle_step(method_id, i),
        )
        for i in range(len(method.first_steps))
    ]
    rows = [ticks[i : i + 4] for i in range(0, len(ticks), 4)] + [
        [button(ctx.t("btn.open_card"), callbacks.card(method_id, "path"))],
        [button(ctx.t("btn.subscribe"), callbacks.subscribe(method_id))],
        [button(ctx.t("btn.remove"), callbacks.remove_path(method_id))],
    ]
    await show(update, ctx, text, keyboard([*rows, nav_row(ctx, callbacks.MY_PATH)]))


async def mypath_command(update: Update, ctx: AppContext) -> None:
    await show_paths(update, ctx)


async def open_path(update: Update, ctx: AppContext) -> None:
    assert ctx.match is not None
    await show_checklist(update, ctx, ctx.match.group(1))


async def toggle_step(update: Update, ctx: AppContext) -> None:
    assert ctx.match is not None and update.effective_user is not None
    method_id, step = ctx.match.group(1), int(ctx.match.group(2))
    if not ctx.library.has_method(method_id) or step >= len(
        ctx.library.method(ctx.lang, method_id).first_steps
    ):
        raise StaleButton
    if method_id not in {p.method_id for p in await _paths(update, ctx)}:
        ctx.notify(ctx.t("path.not_chosen"))
        await show_paths(update, ctx)
        return
    done = await ctx.store.toggle_step(update.effective_user.id, method_id, step)
    ctx.notify(ctx.t("path.step_done" if step in done else "path.step_undone"))
    await show_checklist(update, ctx, method_id)


async def remove(update: Update, ctx: AppContext) -> None:
    assert ctx.match is not None and update.effective_user is not None
    method_id, confirmed = ctx.match.group(1), ctx.match.group(2) == "1"
    if not ctx.library.has_method(method_id):
        raise StaleButton
    name = ctx.library.method(ctx.lang, method_id).button
    if not confirmed:
        rows = [
            [button(ctx.t("btn.confirm_remove"), callbacks.remove_path(method_id, True))],
            [button(ctx.t("btn.cancel"), callbacks.path(method_id))],
        ]
        await show(update, ctx, ctx.t("path.confirm_remove", name=name), keyboard(rows))
        return
    await ctx.store.remove_path(update.effective_user.id, method_id)
    ctx.notify(ctx.t("path.removed", name=name))
    await show_paths(update, ctx)


def handlers() -> list[BaseHandler[Update, AppContext, None]]:
    return [
        CommandHandler("mypath", mypath_command, filters=filters.ChatType.PRIVATE),
        CallbackQueryHandler(mypath_command, pattern=f"^{callbacks.MY_PATH}$"),
        CallbackQueryHandler(open_path, pattern=f"^path:{_ID}$"),
        CallbackQueryHandler(toggle_step, pattern=f"^step:{_ID}:(\\d{{1,2}})$"),
        CallbackQueryHandler(remove, pattern=f"^drop:{_ID}:([01])$"),
    ]
