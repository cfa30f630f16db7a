"""Admin commands, for the user ids in ADMIN_IDS only: /stats and /broadcast.

Anyone else falls through to the ordinary "unknown command" answer, so the commands stay unseen.
A broadcast is written, previewed and confirmed; the durable tips dispatcher then sends it, paced
on the broadcast lane, and reports sent/blocked/failed to the admin when it is done. The preview's
buttons name the draft (the admin's message): however often they are tapped, and however many
taps are in flight at once, a draft becomes one broadcast, and every tap is answered with it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from telegram import Update
from telegram.ext import (
    ApplicationHandlerStop,
    BaseHandler,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot import callbacks
from bot.callbacks import StaleButton, on_tap
from bot.context import AppContext
from bot.languages import LANGUAGE_NAMES
from bot.store import AdminDraft
from bot.ui import button, keyboard, post, show

AUDIENCES = {"all": None, "bn": "bn", "en": "en"}
TOP_UNANSWERED = 10


async def stats(update: Update, ctx: AppContext) -> None:
    numbers = await ctx.store.stats(now=ctx.now())

    languages = [
        f"{'—' if k is None else LANGUAGE_NAMES.get(k, k)} {ctx.digits(v)}"
        for k, v in numbers.by_language.items()
    ]
    paths = [f"{_method(ctx, k)} {ctx.digits(v)}" for k, v in numbers.paths_by_method.items()]
    text = ctx.t(
        "admin.stats",
        users=numbers.users,
        active=numbers.active_users,
        languages=", ".join(languages) or "—",
        paths=", ".join(paths) or "—",
        subscriptions=numbers.active_subscriptions,
        paused=numbers.paused_subscriptions,
        blocked=numbers.blocked_users,
        tips_sent=numbers.tips_sent,
        groups=numbers.groups,
    )
    unanswered = await ctx.store.top_unanswered(limit=TOP_UNANSWERED, now=ctx.now())
    lines = [ctx.t("admin.unanswered_line", query=q, count=n) for q, n in unanswered]
    text += "\n\n" + ctx.t("admin.unanswered", count=len(lines)) + "".join(f"\n{x}" for x in lines)
    await show(update, ctx, text, None)


def _method(ctx: AppContext, method_id: str) -> str:
    return (
        ctx.library.method(ctx.lang, method_id).button
        if ctx.library.has_method(method_id)
        else method_id
    )


async def start_broadcast(update: Update, ctx: AppContext) -> None:
    assert update.effective_user is not None
    await ctx.store.set_admin_draft(update.effective_user.id, AdminDraft(writing=True))
    await show(update, ctx, ctx.t("admin.broadcast_ask"), None)


async def preview(update: Update, ctx: AppContext) -> None:
    """An admin's text after /broadcast is the draft: shown back with the audience buttons.
    Any other text of theirs goes on to the handlers every user has."""
    message, admin = update.effective_message, update.effective_user
    assert message is not None and admin is not None
    pending = await ctx.store.admin_draft(admin.id)
    if pending is None or not pending.writing:
        return
    draft = message.message_id  # unique in the admin's chat: the draft's number
    # Telegram's own formatting, as valid HTML
    await ctx.store.set_admin_draft(
        admin.id, AdminDraft(writing=False, draft=draft, text=message.text_html)
    )
    post(update, ctx, message.reply_text(message.text_html))
    rows = [
        [button(ctx.t("btn.broadcast_all"), callbacks.Broadcast(draft, "all").pack())],
        [
            button(ctx.t("btn.broadcast_bn"), callbacks.Broadcast(draft, "bn").pack()),
            button(ctx.t("btn.broadcast_en"), callbacks.Broadcast(draft, "en").pack()),
        ],
        [button(ctx.t("btn.cancel"), callbacks.Broadcast(draft, "no").pack())],
    ]
    post(
        update,
        ctx,
        message.reply_text(ctx.t("admin.broadcast_preview"), reply_markup=keyboard(rows)),
    )
    raise ApplicationHandlerStop


async def confirm(update: Update, ctx: AppContext, data: callbacks.Broadcast) -> None:
    """Queue the draft the button names (or drop it); a draft already queued is not queued again,
    and the answer is the same broadcast's, whichever of the preview's buttons was tapped."""
    assert update.effective_user is not None
    draft, choice, admin = data.draft, data.audience, update.effective_user.id
    store = ctx.store
    pending = await store.admin_draft(admin)
    text = pending.text if pending is not None and pending.draft == draft else None
    broadcast_id = await store.broadcast_of_draft(admin, draft)
    if broadcast_id is None and text and choice != "no":
        language = AUDIENCES[choice]
        broadcast_id = await store.create_broadcast(
            text,
            language=language,
            created_by=admin,
            now=ctx.now(),
            include_unset_language=language == ctx.services.settings.default_language,
            draft=draft,
        )
        ctx.services.dispatcher.soon()
    if text is not None:  # this draft is settled either way
        await store.set_admin_draft(admin, None)
    if broadcast_id is None:
        await show(update, ctx, ctx.t("admin.broadcast_cancelled"), None)
    else:
        count = sum((await store.broadcast_report(broadcast_id)).values())  # its recipients
        await show(update, ctx, ctx.t("admin.broadcast_queued", count=count), None)


async def cancel(update: Update, ctx: AppContext) -> None:
    assert update.effective_user is not None
    await ctx.store.set_admin_draft(update.effective_user.id, None)
    await show(update, ctx, ctx.t("admin.broadcast_cancelled"), None)


def handlers(admin_ids: Collection[int]) -> dict[int, Sequence[BaseHandler[Any, AppContext, Any]]]:
    """Write → preview → confirm, per admin, with the draft in the store (whichever process gets
    the next message or tap knows it). The draft's text is looked for before any other handler
    (group -1), and only in an admin's private chat."""
    admins = filters.User(user_id=admin_ids) & filters.ChatType.PRIVATE

    async def confirm_from_admin(
        update: Update, ctx: AppContext, data: callbacks.Broadcast
    ) -> None:
        """From anyone but an admin, a preview's button is a forged one."""
        if update.effective_user is None or update.effective_user.id not in admin_ids:
            raise StaleButton
        await confirm(update, ctx, data)

    return {
        -1: [MessageHandler(admins & filters.TEXT & ~filters.COMMAND, preview)],
        0: [
            CommandHandler("stats", stats, filters=admins),
            CommandHandler("broadcast", start_broadcast, filters=admins),
            CommandHandler("cancel", cancel, filters=admins),
            on_tap(callbacks.Broadcast, confirm_from_admin),
        ],
    }
