"""Admin commands, for the user ids in ADMIN_IDS only: /stats and /broadcast.

Anyone else falls through to the ordinary "unknown command" answer, so the commands stay unseen.
A broadcast is written, previewed and confirmed; the durable tips dispatcher then sends it, paced
on the broadcast lane, and reports sent/blocked/failed to the admin when it is done. The preview's
buttons name the draft (the admin's message): however often they are tapped, and however many
taps are in flight at once, a draft becomes one broadcast, and every tap is answered with it.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from typing import Any

from telegram import Update
from telegram.ext import (
    BaseHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot import callbacks
from bot.callbacks import StaleButton, on_tap
from bot.context import AppContext
from bot.languages import LANGUAGE_NAMES
from bot.tips import dispatch_soon
from bot.ui import button, keyboard, post, show

WRITING, CONFIRMING = range(2)
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


async def start_broadcast(update: Update, ctx: AppContext) -> int:
    await show(update, ctx, ctx.t("admin.broadcast_ask"), None)
    return WRITING


async def preview(update: Update, ctx: AppContext) -> int:
    message = update.effective_message
    assert message is not None and ctx.user_data is not None
    draft = message.message_id  # unique in the admin's chat: the draft's number
    # Telegram's own formatting, as valid HTML
    ctx.user_data["broadcast"] = {"draft": draft, "text": message.text_html}
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
    return CONFIRMING


async def confirm(update: Update, ctx: AppContext, data: callbacks.Broadcast) -> int:
    """Queue the draft the button names (or drop it); a draft already queued is not queued again,
    and the answer is the same broadcast's, whichever of the preview's buttons was tapped."""
    assert ctx.user_data is not None and update.effective_user is not None
    draft, choice, admin = data.draft, data.audience, update.effective_user.id
    pending = ctx.user_data.get("broadcast")
    text = (
        pending.get("text") if isinstance(pending, dict) and pending.get("draft") == draft else None
    )
    store = ctx.store
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
        dispatch_soon(ctx.job_queue)
    if text is not None:  # this draft is settled either way
        ctx.user_data.pop("broadcast", None)
    if broadcast_id is None:
        await show(update, ctx, ctx.t("admin.broadcast_cancelled"), None)
    else:
        count = sum((await store.broadcast_report(broadcast_id)).values())  # its recipients
        await show(update, ctx, ctx.t("admin.broadcast_queued", count=count), None)
    return CONFIRMING if ctx.user_data.get("broadcast") else ConversationHandler.END


async def cancel(update: Update, ctx: AppContext) -> int:
    if ctx.user_data is not None:
        ctx.user_data.pop("broadcast", None)
    await show(update, ctx, ctx.t("admin.broadcast_cancelled"), None)
    return ConversationHandler.END


def handlers(admin_ids: Collection[int]) -> list[BaseHandler[Update, AppContext, Any]]:
    admins = filters.User(user_id=admin_ids) & filters.ChatType.PRIVATE

    async def confirm_again(update: Update, ctx: AppContext, data: callbacks.Broadcast) -> None:
        """A preview's button once its conversation has ended: a second tap, answered as the
        first was. From anyone else it is a forged button."""
        if update.effective_user is None or update.effective_user.id not in admin_ids:
            raise StaleButton
        await confirm(update, ctx, data)

    return [
        CommandHandler("stats", stats, filters=admins),
        _broadcast_conversation(admins),
        on_tap(callbacks.Broadcast, confirm_again),
    ]


def _broadcast_conversation(admins: filters.BaseFilter) -> ConversationHandler[AppContext]:
    """Write → preview → confirm, per admin. PTB warns that buttons are not tracked per message;
    that is the intent here (one draft per admin), so the warning is silenced for this handler.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="If 'per_message=False'", category=PTBUserWarning)
        return ConversationHandler(
            entry_points=[CommandHandler("broadcast", start_broadcast, filters=admins)],
            states={
                WRITING: [MessageHandler(admins & filters.TEXT & ~filters.COMMAND, preview)],
                CONFIRMING: [on_tap(callbacks.Broadcast, confirm)],
            },
            fallbacks=[CommandHandler("cancel", cancel, filters=admins)],
            name="broadcast",
            persistent=True,
        )
