"""Wiring in one place: the Application, its defaults, rate limiter, persistence and handlers in order.

`ayerpoth run`, the playground and the tests all build the bot here, so what is tested is what runs.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from telegram import Update
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseUpdateProcessor,
    ChatMemberHandler,
    ContextTypes,
    Defaults,
    PersistenceInput,
    TypeHandler,
)

from bot.commands import publish_commands
from bot.config import LANGUAGES, Settings
from bot.content import Library, load_library
from bot.context import AppContext, BotData, Services, utc_now
from bot.errors import on_error, send_failed
from bot.outbox import Outbox
from bot.persistence import SQLitePersistence
from bot.ratelimit import LaneRateLimiter
from bot.request import build_requests
from bot.store import Store
from bot.tips import JOB_NAME, Dispatcher
from bot.ui import NO_PREVIEW
from handlers import (
    account,
    admin,
    answers,
    fallback,
    groups,
    inline,
    language,
    menu,
    methods,
    mypath,
    quiz,
    tips,
)

log = logging.getLogger(__name__)

BotApplication = Application[Any, AppContext, dict[str, Any], dict[str, Any], BotData, Any]
# Updates handled at once; each user's updates still arrive in order from Telegram.
CONCURRENT_UPDATES = 64
# The store's SQLite threads hand every result back through the GIL. At Python's default 5 ms
# switch interval, a busy event loop made each hand-off wait up to 5 ms, and taps that write
# queued behind one another: p99 under load 424 ms, 255 ms at 1 ms (docs/performance.md).
GIL_SWITCH_INTERVAL = 0.001


def build_application(
    settings: Settings,
    store: Store,
    *,
    library: Library | None = None,
    update_processor: BaseUpdateProcessor | None = None,
    clock: Callable[[], datetime] = utc_now,
    rate_limiter: LaneRateLimiter | None = None,
) -> BotApplication:
    """The whole bot, ready for run_polling/run_webhook or `running()`; no network used yet.

    The store is opened by the caller, in the event loop the bot will run in: PTB loads
    persistence from it before any start-up hook could open it. Sets the process's GIL switch
    interval (GIL_SWITCH_INTERVAL). `rate_limiter` replaces the default one (tests scale its
    budgets and clock).
    """
    if settings.bot_token is None:
        raise ValueError("BOT_TOKEN is required to build the application")
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    library = library or load_library(settings.content_dir)
    request, get_updates_request = build_requests(settings.http_backend)
    builder = (
        ApplicationBuilder()
        .token(settings.bot_token)
        .base_url(f"{settings.bot_api_url}/bot")
        .base_file_url(f"{settings.bot_api_url}/file/bot")
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=NO_PREVIEW,  # saves data on slow phones
            )
        )
        .request(request)
        .get_updates_request(get_updates_request)
        .rate_limiter(rate_limiter or LaneRateLimiter(broadcast_rate=settings.broadcast_rate))
        .persistence(SQLitePersistence(store, store_data=PersistenceInput(bot_data=False)))
        .context_types(ContextTypes(context=AppContext, bot_data=BotData))
        .concurrent_updates(update_processor or CONCURRENT_UPDATES)
        .post_init(_post_init)
        .post_stop(_post_stop)
        .post_shutdown(_post_shutdown)
    )
    application: BotApplication = builder.build()
    application.bot_data.services = Services(
        settings, library, store, clock, outbox=Outbox(on_failure=send_failed)
    )
    register_handlers(application)
    return application


def register_handlers(application: BotApplication) -> None:
    """Every handler, in the order they are tried; the first match in a group wins."""
    application.add_handler(TypeHandler(Update, identify_user), group=-2)
    application.add_handler(
        ChatMemberHandler(track_block, ChatMemberHandler.MY_CHAT_MEMBER, chat_id=None), group=-1
    )
    # groups first: in a group it answers every button, so private screens never show there.
    for module in (groups, inline, menu, methods, answers, quiz, mypath, tips, account, language):
        application.add_handlers(module.handlers())
    application.add_handlers(admin.handlers(application.bot_data.services.settings.admin_ids))
    application.add_handlers(fallback.handlers())  # last: whatever nothing else took
    application.add_error_handler(on_error)


async def identify_user(update: Update, ctx: AppContext) -> None:
    """Before any handler: remember the user (one upsert) and pick the language for this update."""
    user = update.effective_user
    chat = update.effective_chat
    settings = ctx.services.settings
    if chat is not None and chat.type in (ChatType.GROUP, ChatType.SUPERGROUP):
        # The group's language, whoever writes (anonymous admins write as a bot).
        group = await ctx.store.get_group(chat.id)
        ctx.lang = (group.language if group else None) or settings.default_language
        return
    if user is None or user.is_bot:
        return
    if chat is not None and chat.type == ChatType.PRIVATE:
        try:
            record = await ctx.store.touch_user(user.id, now=ctx.now())
        except sqlite3.Error as exc:
            # Disk full, or locked past busy_timeout: still answer, in the language on file;
            # a handler that must write fails on its own and gets the apology.
            log.error("could not record user %s (answering anyway): %s", user.id, exc)
            saved = await ctx.store.get_user(user.id)
            ctx.lang = (saved.language if saved else None) or settings.default_language
            return
        ctx.is_new_user = record.first_seen == record.last_seen
        ctx.lang = record.language or settings.default_language
    elif chat is None:  # inline queries: saved language, else the app's language, else the default
        saved = await ctx.store.get_user(user.id)
        hint = (user.language_code or "")[:2]
        ctx.lang = (saved.language if saved else None) or (
            hint if hint in LANGUAGES else settings.default_language
        )


async def track_block(update: Update, ctx: AppContext) -> None:
    """A user who blocks the bot gets no more messages until they come back."""
    change = update.my_chat_member
    if change is None or change.chat.type != ChatType.PRIVATE:
        return
    blocked = change.new_chat_member.status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT)
    await ctx.store.set_blocked(change.from_user.id, blocked, now=ctx.now())


async def _post_init(application: BotApplication) -> None:
    services = application.bot_data.services
    await publish_commands(application, services.library, services.settings.default_language)
    # Leases left by a killed process: send those tips now, not when the lease runs out.
    if released := await services.store.release_all_claims():
        log.warning("%d message(s) in flight when the last run stopped will be sent now", released)
    assert application.job_queue is not None
    dispatcher = Dispatcher(services)
    application.job_queue.run_repeating(
        dispatcher,
        interval=services.settings.tip_check_seconds,
        name=JOB_NAME,
        job_kwargs={"max_instances": 2},  # the second only nudges a run in progress
    )
    # PTB's first=0 does not run a repeating job at start-up (APScheduler skips to the next
    # interval), so tips that fell due while the bot was down get their own run now.
    application.job_queue.run_once(
        dispatcher, 0, name=f"{JOB_NAME}-now", job_kwargs={"misfire_grace_time": None}
    )
    log.info("bot @%s ready", application.bot.username)


async def _post_stop(application: BotApplication) -> None:
    """Handlers are done: let the replies they posted go out (for a bounded time)."""
    await application.bot_data.services.outbox.close()


async def _post_shutdown(application: BotApplication) -> None:
    await application.bot_data.services.store.close()


def webhook_options(settings: Settings) -> dict[str, Any]:
    """Where PTB's webhook server listens and what it tells Telegram (for run_webhook/start_webhook)."""
    assert settings.webhook_url is not None
    return {
        "listen": settings.webhook_listen,
        "port": settings.webhook_port,
        "url_path": urlsplit(settings.webhook_url).path.lstrip("/"),
        "webhook_url": settings.webhook_url,
        "secret_token": settings.webhook_secret,
        "allowed_updates": Update.ALL_TYPES,
    }


@asynccontextmanager
async def running(
    application: BotApplication, *, poll_timeout: float = 10
) -> AsyncIterator[BotApplication]:
    """Run the bot (long polling, or webhook when configured) inside an existing event loop.

    The same steps as `Application.run_polling`, which owns its loop and signals, and so cannot
    be used when something else (the fake Bot API, a test) shares the loop.
    """
    await application.initialize()
    if application.post_init is not None:
        await application.post_init(application)
    assert application.updater is not None
    settings = application.bot_data.services.settings
    if settings.webhook_url:
        await application.updater.start_webhook(**webhook_options(settings))
    else:
        await application.updater.start_polling(
            poll_interval=0, timeout=int(poll_timeout), allowed_updates=Update.ALL_TYPES
        )
    await application.start()
    try:
        yield application
    finally:
        if application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        if application.post_stop is not None:
            await application.post_stop(application)
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)
