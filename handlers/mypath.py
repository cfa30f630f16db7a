"""My path: the methods a user chose (at most three) with a first-steps checklist they tick off.

A checklist opened on a card goes Back to that card (its origin rides along in every button of
the checklist); opened from My path, Back goes to My path. A tick carries the state it sets, so
tapping it twice, or two taps in flight at once, leave the step as one tap did.
"""

from __future__ import annotations

from html import escape

from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot import callbacks
from bot.context import AppContext
from bot.store import Path
from bot.ui import StaleButton, button, keyboard, nav_row, show

_ID = r"([a-z][a-z0-9_]{1,15})"
_ORIGIN = f"(?::({'|'.join(callbacks.ORIGINS)}))?"


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


async def show_checklist(
    update: Update, ctx: AppContext, method_id: str, origin: str | None = None
) -> None:
    """The checklist; with `origin` (that of the card it was opened on) Back returns to the card."""
    if origin == "path":  # a card opened from a checklist: that checklist's Back was My path
        origin = None
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
            callbacks.step(method_id, i, i not in path.done_steps, origin),
        )
        for i in range(len(method.first_steps))
    ]
    rows = [ticks[i : i + 4] for i in range(0, len(ticks), 4)]
    if origin is None:  # else Back is the card
        rows.append([button(ctx.t("btn.open_card"), callbacks.card(method_id, "path"))])
    rows += [
        [button(ctx.t("btn.subscribe"), callbacks.subscribe(method_id))],
        [button(ctx.t("btn.remove"), callbacks.remove_path(method_id, origin=origin))],
    ]
    back = callbacks.card(method_id, origin) if origin else callbacks.MY_PATH
    await show(update, ctx, text, keyboard([*rows, nav_row(ctx, back)]))


async def mypath_command(update: Update, ctx: AppContext) -> None:
    await show_paths(update, ctx)


async def open_path(update: Update, ctx: AppContext) -> None:
    assert ctx.match is not None
    method_id = ctx.match.group(1)
    await show_checklist(update, ctx, method_id, ctx.match.group(2))


async def set_step(update: Update, ctx: AppContext) -> None:
    """A tick: step `index` done (1) or not (0), whatever it was; the answer says which."""
    assert ctx.match is not None and update.effective_user is not None
    method_id, step, done = ctx.match.group(1), int(ctx.match.group(2)), ctx.match.group(3) == "1"
    origin = ctx.match.group(4)
    if not ctx.library.has_method(method_id) or step >= len(
        ctx.library.method(ctx.lang, method_id).first_steps
    ):
        raise StaleButton
    if method_id not in {p.method_id for p in await _paths(update, ctx)}:
        ctx.notify(ctx.t("path.not_chosen"))
        await show_paths(update, ctx)
        return
    await ctx.store.set_step(update.effective_user.id, method_id, step, done=done)
    ctx.notify(ctx.t("path.step_done" if done else "path.step_undone"))
    await show_checklist(update, ctx, method_id, origin)


async def remove(update: Update, ctx: AppContext) -> None:
    assert ctx.match is not None and update.effective_user is not None
    method_id, confirmed = ctx.match.group(1), ctx.match.group(2) == "1"
    origin = ctx.match.group(3)
    if not ctx.library.has_method(method_id):
        raise StaleButton
    name = ctx.library.method(ctx.lang, method_id).button
    if not confirmed:
        rows = [
            [button(ctx.t("btn.confirm_remove"), callbacks.remove_path(method_id, True, origin))],
            [button(ctx.t("btn.cancel"), callbacks.path(method_id, origin))],
        ]
        await show(update, ctx, ctx.t("path.confirm_remove", name=name), keyboard(rows))
        return
    # Removing what is gone already changes nothing, and says the same.
    await ctx.store.remove_path(update.effective_user.id, method_id)
    ctx.notify(ctx.t("path.removed", name=name))
    await show_paths(update, ctx)


def handlers() -> list[BaseHandler[Update, AppContext, None]]:
    return [
        CommandHandler("mypath", mypath_command, filters=filters.ChatType.PRIVATE),
        CallbackQueryHandler(mypath_command, pattern=f"^{callbacks.MY_PATH}$"),
        CallbackQueryHandler(open_path, pattern=f"^path:{_ID}{_ORIGIN}$"),
        CallbackQueryHandler(set_step, pattern=f"^step:{_ID}:(\\d{{1,2}}):([01]){_ORIGIN}$"),
        CallbackQueryHandler(remove, pattern=f"^drop:{_ID}:([01]){_ORIGIN}$"),
    ]
