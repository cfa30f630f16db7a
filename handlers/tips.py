"""Weekly tips: subscribe (from a card, My path or /subscribe), see and change them, stop them.

The sending itself is bot/tips.py's dispatcher; here the user only changes what the store says.
Re-subscribing resumes where the user left off; a finished path starts again from week one.
"""

from __future__ import annotations

from datetime import time

from babel.dates import format_time, get_day_names
from telegram import Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from bot import callbacks
from bot.context import AppContext
from bot.store import AddPathResult, Subscription
from bot.tips import dispatch_soon, next_slot
from bot.ui import StaleButton, answer, button, keyboard, nav_row, pairs, show

_ID = r"([a-z][a-z0-9_]{1,15})"
WEEK_ORDER = (5, 6, 0, 1, 2, 3, 4)  # Saturday first, as the week runs in Bangladesh
HOURS = (7, 9, 12, 15, 18, 20, 21, 22)


async def _subscriptions(update: Update, ctx: AppContext) -> list[Subscription]:
    assert update.effective_user is not None
    subs = await ctx.store.list_subscriptions(update.effective_user.id)
    return [s for s in subs if ctx.library.has_method(s.method_id)]


def _by_method(sub: Subscription) -> str:
    return sub.method_id  # the store's order


def _finished(ctx: AppContext, sub: Subscription) -> bool:
    return sub.position >= ctx.library.tip_count(sub.method_id)


async def show_tips(
    update: Update, ctx: AppContext, subs: list[Subscription] | None = None
) -> None:
    """The user's subscriptions; pass `subs` when they were just read or written (one query less)."""
    if subs is None:
        subs = await _subscriptions(update, ctx)
    if not subs:
        await show_subscribe_menu(update, ctx, intro=ctx.t("tips.none"))
        return
    tz = ctx.services.settings.timezone
    lines = [ctx.t("tips.title"), ctx.t("tips.intro"), ""]
    rows = []
    for sub in subs:
        method = ctx.library.method(ctx.lang, sub.method_id)
        total = ctx.library.tip_count(sub.method_id)
        week = min(sub.position + 1, total)
        if _finished(ctx, sub):
            lines.append(ctx.t("tips.done", name=method.button))
            rows.append([button(f"🔄 {method.button}", callbacks.subscribe(sub.method_id))])
        elif sub.active:
            when = (
                ctx.library.when(ctx.lang, sub.next_due.astimezone(tz))
                if sub.next_due > ctx.now()
                else ctx.t("tips.now")
            )
            lines.append(ctx.t("tips.active", name=method.button, n=week, total=total, when=when))
            rows.append(
                [
                    button(
                        f"🔕 {method.button}",
                        callbacks.unsubscribe(sub.method_id, from_settings=True),
                    )
                ]
            )
        else:
            lines.append(ctx.t("tips.stopped", name=method.button, n=week, total=total))
            rows.append([button(f"🔔 {method.button}", callbacks.subscribe(sub.method_id))])
    if len(subs) < len(ctx.library.method_ids):
        rows.append([button(ctx.t("btn.subscribe_more"), callbacks.SUBSCRIBE_MENU)])
    if any(s.active and not _finished(ctx, s) for s in subs):
        rows.append([button(ctx.t("btn.schedule"), callbacks.schedule())])
    await show(update, ctx, "\n".join(lines), keyboard([*rows, nav_row(ctx)]))


async def show_subscribe_menu(update: Update, ctx: AppContext, *, intro: str | None = None) -> None:
    """Methods to get tips for: the user's chosen paths first, then the rest."""
    assert update.effective_user is not None
    chosen = [p.method_id for p in await ctx.store.list_paths(update.effective_user.id)]
    order = [m for m in chosen if ctx.library.has_method(m)]
    order += [m for m in ctx.library.method_ids if m not in order]
    entries = []
    for method_id in order:
        method = ctx.library.method(ctx.lang, method_id)
        entries.append(button(f"{method.emoji} {method.button}", callbacks.subscribe(method_id)))
    text = intro or ctx.t("tips.choose_method")
    await show(
        update, ctx, f"{ctx.t('tips.title')}\n{text}", keyboard([*pairs(entries), nav_row(ctx)])
    )


async def subscribe(update: Update, ctx: AppContext) -> None:
    assert ctx.match is not None and update.effective_user is not None
    method_id = ctx.match.group(1)
    if not ctx.library.has_method(method_id):
        raise StaleButton
    name = ctx.library.method(ctx.lang, method_id).button
    subs = await _subscriptions(update, ctx)
    existing = next((s for s in subs if s.method_id == method_id), None)
    if existing is None or not existing.active or _finished(ctx, existing):
        now = ctx.now()
        local = now.astimezone(ctx.services.settings.timezone)
        # A new subscription's tips come on this weekday at this time; an old one keeps its own.
        weekday, hour, minute = (
            (existing.weekday, existing.hour, existing.minute)
            if existing
            else (local.weekday(), local.hour, local.minute)
        )
        added = await ctx.store.subscribe(
            update.effective_user.id,
            method_id,
            now=now,
            weekday=weekday,
            hour=hour,
            minute=minute,
            first_due=now,
            reset_position=existing is not None and _finished(ctx, existing),
        )
        resumed = existing is not None and not _finished(ctx, existing)
        ctx.notify(ctx.t("tips.resumed" if resumed else "tips.subscribed", name=name))
        dispatch_soon(ctx.job_queue)
        subs = sorted([s for s in subs if s.method_id != method_id] + [added], key=_by_method)
    await show_tips(update, ctx, subs)


async def unsubscribe(update: Update, ctx: AppContext) -> None:
    assert ctx.match is not None and update.effective_user is not None
    method_id, from_settings = ctx.match.group(1), ctx.match.group(2) == "1"
    if not ctx.library.has_method(method_id):
        raise StaleButton
    await ctx.store.unsubscribe(update.effective_user.id, method_id)
    name = ctx.library.method(ctx.lang, method_id).button
    if from_settings:
        ctx.notify(ctx.t("tips.unsubscribed", name=name))
        await show_tips(update, ctx)
    else:  # under a tip: the tip stays as it is, so the popup must be noticed
        await answer(update, ctx, ctx.t("tips.unsubscribed", name=name), alert=True)


async def stop_all(update: Update, ctx: AppContext) -> None:
    """/unsubscribe and /stop: every subscription off (positions kept for a later resume)."""
    assert update.effective_user is not None
    stopped = await ctx.store.unsubscribe(update.effective_user.id)
    text = ctx.t("tips.unsubscribed_all" if stopped else "tips.nothing_to_stop")
    await show(
        update, ctx, text, keyboard([[button(ctx.t("btn.tips"), callbacks.TIPS)], nav_row(ctx)])
    )


async def step_done(update: Update, ctx: AppContext) -> None:
    """Under a tip: tick the next unticked first step of that method's path (adding the path)."""
    assert ctx.match is not None and update.effective_user is not None
    method_id, user_id = ctx.match.group(1), update.effective_user.id
    if not ctx.library.has_method(method_id):
        raise StaleButton
    path = next((p for p in await ctx.store.list_paths(user_id) if p.method_id == method_id), None)
    if (
        path is None
        and await ctx.store.add_path(user_id, method_id, now=ctx.now()) is AddPathResult.FULL
    ):
        await answer(update, ctx, ctx.t("tips.no_room"), alert=True)
        return
    done = path.done_steps if path else frozenset()
    steps = len(ctx.library.method(ctx.lang, method_id).first_steps)
    step = next((i for i in range(steps) if i not in done), None)
    if step is None:
        await answer(update, ctx, ctx.t("tips.all_steps_done"))
        return
    await ctx.store.toggle_step(user_id, method_id, step)
    await answer(update, ctx, ctx.t("tips.step_ticked", n=step + 1))


async def pick_schedule(update: Update, ctx: AppContext) -> None:
    """Day, then hour; then every active subscription moves to that weekly slot."""
    assert ctx.match is not None and update.effective_user is not None
    day, hour = ctx.match.group(1), ctx.match.group(2)
    tz = ctx.services.settings.timezone
    names = get_day_names("wide", locale=ctx.lang)
    if day is None:
        days = [button(names[d], callbacks.schedule(d)) for d in WEEK_ORDER]
        await show(
            update,
            ctx,
            ctx.t("tips.pick_day"),
            keyboard([*pairs(days), nav_row(ctx, callbacks.TIPS)]),
        )
        return
    if hour is None:
        hours = [button(_hour_label(ctx, h), callbacks.schedule(int(day), h)) for h in HOURS]
        text = ctx.t("tips.pick_hour", zone=str(tz))
        await show(update, ctx, text, keyboard([*pairs(hours), nav_row(ctx, callbacks.schedule())]))
        return
    weekday, at = int(day), int(hour)
    if weekday > 6 or at > 23:
        raise StaleButton
    due = next_slot(ctx.now(), weekday=weekday, hour=at, minute=0, tz=tz)
    for sub in await _subscriptions(update, ctx):
        if sub.active:
            await ctx.store.set_schedule(
                update.effective_user.id,
                sub.method_id,
                weekday=weekday,
                hour=at,
                minute=0,
                next_due=due,
            )
    ctx.notify(ctx.t("tips.schedule_set", day=names[weekday], time=_hour_label(ctx, at)))
    await show_tips(update, ctx)


def _hour_label(ctx: AppContext, hour: int) -> str:
    return ctx.library.digits(ctx.lang, format_time(time(hour), format="h:mm a", locale=ctx.lang))


async def tips_command(update: Update, ctx: AppContext) -> None:
    await show_tips(update, ctx)


async def subscribe_command(update: Update, ctx: AppContext) -> None:
    await show_subscribe_menu(update, ctx)


def handlers() -> list[BaseHandler[Update, AppContext, None]]:
    private = filters.ChatType.PRIVATE
    return [
        CommandHandler("tips", tips_command, filters=private),
        CommandHandler("subscribe", subscribe_command, filters=private),
        CommandHandler(["unsubscribe", "stop"], stop_all, filters=private),
        CallbackQueryHandler(tips_command, pattern=f"^{callbacks.TIPS}$"),
        CallbackQueryHandler(subscribe_command, pattern=f"^{callbacks.SUBSCRIBE_MENU}$"),
        CallbackQueryHandler(subscribe, pattern=f"^sub:{_ID}$"),
        CallbackQueryHandler(unsubscribe, pattern=f"^unsub:{_ID}:([01])$"),
        CallbackQueryHandler(step_done, pattern=f"^tipstep:{_ID}$"),
        CallbackQueryHandler(pick_schedule, pattern=r"^when(?::(\d))?(?::(\d{1,2}))?$"),
    ]
