"""Weekly tips: subscribe (from a card, My path or /subscribe), see and change them, stop them.

The sending itself is the dispatcher's (bot/outbox/dispatcher.py); here the user only changes what
the store says, and the tip screen the dispatcher sends is drawn (`tip_screen`).
Re-subscribing resumes where the user left off; a finished path starts again from week one.
"""

from __future__ import annotations

from datetime import datetime

from babel.dates import get_day_names
from telegram import InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CommandHandler, filters

from bot import callbacks
from bot.callbacks import on_tap
from bot.content import Library
from bot.context import AppContext
from bot.outbox.schedule import next_slot, next_tip_due
from bot.store import AddPathResult, Subscription, TipClaim
from bot.ui import answer, button, keyboard, label, nav_row, pairs, show

WEEK_ORDER = (5, 6, 0, 1, 2, 3, 4)  # Saturday first, as the week runs in Bangladesh
HOURS = (7, 9, 12, 15, 18, 20, 21, 22)


def tip_message(
    library: Library, language: str, method_id: str, index: int, *, next_step: int | None = 0
) -> tuple[str, InlineKeyboardMarkup]:
    """Tip number `index` of a method, with its buttons; the last one also offers another path.

    `next_step` is the first step of the path not done yet (None: all are done): its "I did
    step n" button ticks that step, however often it is tapped.
    """
    method = library.method(language, method_id)
    text = library.tip_text(language, method_id, index)
    share_data = callbacks.ShareTipImage(method_id, index).pack()
    share = [button(library.t(language, "btn.share_image"), share_data)]
    if index == len(method.tips) - 1:  # the path is done: point to the next one
        rows = [
            [button(library.t(language, "btn.quiz"), callbacks.Quiz().pack())],
            [button(library.t(language, "btn.all"), callbacks.MethodList("all").pack())],
            share,
        ]
    else:
        step_done = library.t(language, "tips.step_button", n=(next_step or 0) + 1)
        rows = [
            [button(label(step_done), callbacks.TipStep(method_id, next_step).pack())]
            if next_step is not None
            else [],
            [
                button(f"{method.emoji} {method.button}", callbacks.Card(method_id, "all").pack()),
                button(
                    library.t(language, "btn.unsubscribe"), callbacks.Unsubscribe(method_id).pack()
                ),
            ],
            share,
        ]
    return text, keyboard(rows)


def first_undone(
    library: Library, language: str, method_id: str, done: frozenset[int] | None
) -> int | None:
    """The first step of a method's path not done yet (0 when it is not on the user's path)."""
    steps = len(library.method(language, method_id).first_steps)
    return next((i for i in range(steps) if i not in (done or frozenset())), None)


def tip_screen(
    library: Library, language: str, claim: TipClaim
) -> tuple[str, InlineKeyboardMarkup]:
    """A claimed tip as the dispatcher sends it: its "I did step n" names the first step not done."""
    next_step = first_undone(library, language, claim.method_id, claim.done_steps)
    return tip_message(library, language, claim.method_id, claim.position, next_step=next_step)


async def _subscriptions(update: Update, ctx: AppContext) -> list[Subscription]:
    assert update.effective_user is not None
    subs = await ctx.store.list_subscriptions(update.effective_user.id)
    return [s for s in subs if ctx.library.has_method(s.method_id)]


def _by_method(sub: Subscription) -> str:
    return sub.method_id  # the store's order


def _finished(ctx: AppContext, sub: Subscription) -> bool:
    return sub.position >= ctx.library.tip_count(sub.method_id)


def _upcoming(ctx: AppContext, sub: Subscription) -> tuple[int, datetime | None]:
    """The week of the next tip to come and when it comes (None: it is the last, due now).

    A tip that is due now is on its way (the dispatcher sends it within seconds), so the screen
    names the one after it: what it says stays true once the due tip has arrived.
    """
    week, now = sub.position + 1, ctx.now()
    if sub.next_due > now:
        return week, sub.next_due
    if week >= ctx.library.tip_count(sub.method_id):
        return week, None
    following = next_tip_due(
        ctx.services.settings,
        sub.next_due,
        now,
        weekday=sub.weekday,
        hour=sub.hour,
        minute=sub.minute,
    )
    return week + 1, following


async def show_tips(
    update: Update, ctx: AppContext, subs: list[Subscription] | None = None
) -> None:
    """The user's subscriptions; pass `subs` when they were just read or written (one query less)."""
    if subs is None:
        subs = await _subscriptions(update, ctx)
    if not subs:
        await show_subscribe_menu(update, ctx, intro=ctx.t("tips.none"), subs=subs)
        return
    tz = ctx.services.settings.timezone
    lines = [ctx.t("tips.title"), ctx.t("tips.intro"), ""]
    rows = []
    timed = False
    for sub in subs:
        name = ctx.library.method(ctx.lang, sub.method_id).button
        total = ctx.library.tip_count(sub.method_id)
        if _finished(ctx, sub):
            lines.append(ctx.t("tips.done", name=name))
            turn_on = label(ctx.t("tips.restart_one", name=name))
            rows.append([button(turn_on, callbacks.Subscribe(sub.method_id).pack())])
        elif sub.active:
            week, due = _upcoming(ctx, sub)
            if due is None:
                lines.append(ctx.t("tips.last_now", name=name, n=week, total=total))
            else:
                when = ctx.library.when(ctx.lang, due.astimezone(tz), at=True)
                lines.append(ctx.t("tips.active", name=name, n=week, total=total, when=when))
                timed = True
            # The off switch says what it does: "🔕 YouTube-এর টিপস বন্ধ".
            turn_off = label(ctx.t("tips.stop_one", name=name))
            turn_off_data = callbacks.Unsubscribe(sub.method_id, from_settings=True)
            rows.append([button(turn_off, turn_off_data.pack())])
        else:
            week = min(sub.position + 1, total)
            lines.append(ctx.t("tips.stopped", name=name, n=week, total=total))
            turn_on = label(ctx.t("tips.resume_one", name=name))
            rows.append([button(turn_on, callbacks.Subscribe(sub.method_id).pack())])
    if timed:
        lines += ["", ctx.t("tips.zone", zone=ctx.library.zone(ctx.lang, tz))]
    if len(subs) < len(ctx.library.method_ids):
        rows.append([button(ctx.t("btn.subscribe_more"), callbacks.SUBSCRIBE_MENU.pack())])
    if any(s.active and not _finished(ctx, s) for s in subs):
        rows.append([button(ctx.t("btn.schedule"), callbacks.Schedule().pack())])
    await show(update, ctx, "\n".join(lines), keyboard([*rows, nav_row(ctx)]))


async def show_subscribe_menu(
    update: Update,
    ctx: AppContext,
    *,
    intro: str | None = None,
    subs: list[Subscription] | None = None,
) -> None:
    """Methods to get tips for that have none yet (the others have their own button on the tips
    screen): the user's chosen paths first, then the rest."""
    assert update.effective_user is not None
    if subs is None:
        subs = await _subscriptions(update, ctx)
    taken = {s.method_id for s in subs}
    chosen = [p.method_id for p in await ctx.store.list_paths(update.effective_user.id)]
    order = [m for m in chosen if ctx.library.has_method(m)]
    order += [m for m in ctx.library.method_ids if m not in order]
    order = [m for m in order if m not in taken]
    if not order:  # tips for every method already: each is on the tips screen
        await show_tips(update, ctx, subs)
        return
    entries = []
    for method_id in order:
        method = ctx.library.method(ctx.lang, method_id)
        entries.append(
            button(f"{method.emoji} {method.button}", callbacks.Subscribe(method_id).pack())
        )
    text = intro or ctx.t("tips.choose_method")
    await show(
        update, ctx, f"{ctx.t('tips.title')}\n{text}", keyboard([*pairs(entries), nav_row(ctx)])
    )


def _turned_on(sub: Subscription, now: datetime) -> str:
    """The popup for a subscribe tap: the same for the tap that turned the tips on and for a
    second tap on that button, even once this week's tip has gone out."""
    if now - sub.subscribed_at > callbacks.REPEAT_WINDOW:
        return "tips.already_on"
    # Turned on just now: the tip due then went out at once unless it is still due.
    started_at = sub.position - (1 if sub.next_due > now and sub.position > 0 else 0)
    return "tips.resumed" if started_at > 0 else "tips.subscribed"


async def subscribe(update: Update, ctx: AppContext, data: callbacks.Subscribe) -> None:
    """Tips on for one method: a new path starts now, a stopped one resumes, a finished one
    starts over; one that is on stays as it is (the store makes sure of it, also for two taps
    in flight at once)."""
    assert update.effective_user is not None
    method_id = data.method
    name = ctx.library.method(ctx.lang, method_id).button
    subs = await _subscriptions(update, ctx)
    existing = next((s for s in subs if s.method_id == method_id), None)
    now = ctx.now()
    sub = existing
    if existing is None or not existing.active or _finished(ctx, existing):
        local = now.astimezone(ctx.services.settings.timezone)
        # A new subscription's tips come on this weekday at this time; an old one keeps its own.
        weekday, hour, minute = (
            (existing.weekday, existing.hour, existing.minute)
            if existing
            else (local.weekday(), local.hour, local.minute)
        )
        sub = await ctx.store.subscribe(
            update.effective_user.id,
            method_id,
            now=now,
            weekday=weekday,
            hour=hour,
            minute=minute,
            first_due=now,
            reset_position=existing is not None and _finished(ctx, existing),
        )
        ctx.services.dispatcher.soon()
        subs = sorted([s for s in subs if s.method_id != method_id] + [sub], key=_by_method)
    assert sub is not None
    ctx.notify(ctx.t(_turned_on(sub, now), name=name))
    await show_tips(update, ctx, subs)


async def unsubscribe(update: Update, ctx: AppContext, data: callbacks.Unsubscribe) -> None:
    """Tips off for one method (off already: nothing changes, the answer is the same)."""
    assert update.effective_user is not None
    method_id = data.method
    await ctx.store.unsubscribe(update.effective_user.id, method_id)
    name = ctx.library.method(ctx.lang, method_id).button
    if data.from_settings:
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
        update,
        ctx,
        text,
        keyboard([[button(ctx.t("btn.tips"), callbacks.TIPS.pack())], nav_row(ctx)]),
    )


async def step_done(update: Update, ctx: AppContext, data: callbacks.TipStep) -> None:
    """Under a tip, "I did step n": that first step of the method's path is done (the path is
    added if needed). The tip's button names the step, so a second tap ticks nothing more."""
    assert update.effective_user is not None
    method_id, user_id, step = data.method, update.effective_user.id, data.step
    steps = len(ctx.library.method(ctx.lang, method_id).first_steps)
    if step is None or step >= steps:
        # A tip sent before buttons named their step, or the steps changed since: the checklist
        # is the place to tick (the tip itself is left as it is).
        await answer(update, ctx, ctx.t("tips.step_old"), alert=True)
        return
    path = next((p for p in await ctx.store.list_paths(user_id) if p.method_id == method_id), None)
    if (
        path is None
        and await ctx.store.add_path(user_id, method_id, now=ctx.now()) is AddPathResult.FULL
    ):
        await answer(update, ctx, ctx.t("tips.no_room"), alert=True)
        return
    await ctx.store.set_step(user_id, method_id, step, done=True)
    await answer(update, ctx, ctx.t("tips.step_ticked", n=step + 1))


async def pick_schedule(update: Update, ctx: AppContext, data: callbacks.Schedule) -> None:
    """Day, then hour; then every active subscription moves to that weekly slot."""
    assert update.effective_user is not None
    weekday, at = data.weekday, data.hour
    tz = ctx.services.settings.timezone
    zone = ctx.library.zone(ctx.lang, tz)
    names = get_day_names("wide", locale=ctx.lang)
    if weekday is None:
        days = [button(names[d], callbacks.Schedule(d).pack()) for d in WEEK_ORDER]
        await show(
            update,
            ctx,
            ctx.t("tips.pick_day"),
            keyboard([*pairs(days), nav_row(ctx, callbacks.TIPS.pack())]),
        )
        return
    if at is None:
        hours = [
            button(ctx.library.clock(ctx.lang, h), callbacks.Schedule(weekday, h).pack())
            for h in HOURS
        ]
        text = ctx.t("tips.pick_hour", zone=zone)
        back = callbacks.Schedule().pack()
        await show(update, ctx, text, keyboard([*pairs(hours), nav_row(ctx, back)]))
        return
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
    time = ctx.library.clock(ctx.lang, at, at=True)
    ctx.notify(ctx.t("tips.schedule_set", day=names[weekday], time=time, zone=zone))
    await show_tips(update, ctx)


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
        on_tap(callbacks.TIPS, tips_command),
        on_tap(callbacks.SUBSCRIBE_MENU, subscribe_command),
        on_tap(callbacks.Subscribe, subscribe),
        on_tap(callbacks.Unsubscribe, unsubscribe),
        on_tap(callbacks.TipStep, step_done),
        on_tap(callbacks.Schedule, pick_schedule),
    ]
