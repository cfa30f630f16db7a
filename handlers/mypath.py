"""My path: the methods a user chose (at most three) with a first-steps checklist they tick off.

A checklist opened on a card goes Back to that card (its origin rides along in every button of
the checklist); opened from My path, Back goes to My path. A tick carries the state it sets, so
tapping it twice, or two taps in flight at once, leave the step as one tap did.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot import callbacks
from bot.callbacks import on_tap
from bot.context import AppContext
from bot.store import Path
from bot.ui import button, keyboard, nav_row, show


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
            [button(ctx.t("btn.quiz"), callbacks.Quiz().pack())],
            [button(ctx.t("btn.all"), callbacks.MethodList("all").pack())],
        ]
        await show(update, ctx, ctx.t("path.empty"), keyboard([*rows, nav_row(ctx)]))
        return
    chosen = [(ctx.library.method(ctx.lang, p.method_id), p.done_steps) for p in paths]
    text = ctx.library.render(ctx.lang, "my_paths.j2", paths=chosen)
    rows = [[button(f"{m.emoji} {m.button}", callbacks.Checklist(m.id).pack())] for m, _ in chosen]
    await show(update, ctx, text, keyboard([*rows, nav_row(ctx)]))


async def show_checklist(
    update: Update, ctx: AppContext, method_id: str, origin: str | None = None
) -> None:
    """The checklist; with `origin` (that of the card it was opened on) Back returns to the card."""
    if origin == "path":  # a card opened from a checklist: that checklist's Back was My path
        origin = None
    path = next((p for p in await _paths(update, ctx) if p.method_id == method_id), None)
    if path is None:
        await not_chosen(update, ctx)
        return
    method = ctx.library.method(ctx.lang, method_id)
    text = ctx.library.render(ctx.lang, "checklist.j2", m=method, done=path.done_steps)
    ticks = [
        button(
            f"{'✅' if i in path.done_steps else '▫️'} {ctx.digits(i + 1)}",
            callbacks.Step(method_id, i, i not in path.done_steps, origin).pack(),
        )
        for i in range(len(method.first_steps))
    ]
    rows = [ticks[i : i + 4] for i in range(0, len(ticks), 4)]
    if origin is None:  # else Back is the card
        rows.append([button(ctx.t("btn.open_card"), callbacks.Card(method_id, "path").pack())])
    rows += [
        [button(ctx.t("btn.subscribe"), callbacks.Subscribe(method_id).pack())],
        [button(ctx.t("btn.remove"), callbacks.RemovePath(method_id, origin=origin).pack())],
    ]
    back = callbacks.Card(method_id, origin) if origin else callbacks.MY_PATH
    await show(update, ctx, text, keyboard([*rows, nav_row(ctx, back.pack())]))


async def mypath_command(update: Update, ctx: AppContext) -> None:
    await show_paths(update, ctx)


async def open_path(update: Update, ctx: AppContext, data: callbacks.Checklist) -> None:
    await show_checklist(update, ctx, data.method, data.origin)


async def not_chosen(update: Update, ctx: AppContext) -> None:
    """A checklist of a method the user does not have on their path (or that is gone)."""
    ctx.notify(ctx.t("path.not_chosen"))
    await show_paths(update, ctx)


async def set_step(update: Update, ctx: AppContext, data: callbacks.Step) -> None:
    """A tick: step `index` done (1) or not (0), whatever it was; the answer says which."""
    assert update.effective_user is not None
    method_id = data.method
    if method_id not in {p.method_id for p in await _paths(update, ctx)}:
        await not_chosen(update, ctx)
        return
    await ctx.store.set_step(update.effective_user.id, method_id, data.index, done=data.done)
    ctx.notify(ctx.t("path.step_done" if data.done else "path.step_undone"))
    await show_checklist(update, ctx, method_id, data.origin)


async def remove(update: Update, ctx: AppContext, data: callbacks.RemovePath) -> None:
    assert update.effective_user is not None
    method_id, origin = data.method, data.origin
    name = ctx.library.method(ctx.lang, method_id).button
    if not data.confirmed:
        confirm = callbacks.RemovePath(method_id, True, origin)
        rows = [
            [button(ctx.t("btn.confirm_remove"), confirm.pack())],
            [button(ctx.t("btn.cancel"), callbacks.Checklist(method_id, origin).pack())],
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
        on_tap(callbacks.MY_PATH, mypath_command),
        # a removed method's checklist: as if it was never chosen (it is skipped on My path)
        on_tap(callbacks.Checklist, open_path, stale=not_chosen),
        on_tap(callbacks.Step, set_step),
        on_tap(callbacks.RemovePath, remove),
    ]
