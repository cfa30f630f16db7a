"""Wiring in one place: the Application, its defaults, rate limiter, dispatcher and handlers in order.

`ayerpoth run`, the playground and the tests all build the bot here, so what is tested is what runs.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import uvloop
from telegram import Update
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseUpdateProcessor,
    ChatMemberHandler,
    ContextTypes,
    Defaults,
    SimpleUpdateProcessor,
    TypeHandler,
)

from bot.cards.service import CardService
from bot.commands import publish_commands
from bot.config import Settings
from bot.content import Library, load_library
from bot.context import AppContext, BotData, Services, update_language, utc_now
from bot.errors import error_handler, send_failed
from bot.fastcalls import NO_PREVIEW
from bot.guard import GUARD_GROUP, guard
from bot.intake import HANDLER_GRACE, STOP_BOUND, Inbox, LedgerProcessor, Poller, WebhookServer
from bot.leader import Leadership
from bot.outbox import Outbox
from bot.outbox.dispatcher import Dispatcher
from bot.ratelimit import ClusterBudget, LaneRateLimiter
from bot.request import build_requests
from bot.search import on_search_thread
from bot.store import Store, StoreError
from handlers import (
    account,
    admin,
    answers,
    cards,
    fallback,
    groups,
    inline,
    language,
    menu,
    methods,
    mypath,
    quiz,
    subscriptions,
)

log = logging.getLogger(__name__)

BotApplication = Application[Any, AppContext, dict[str, Any], dict[str, Any], BotData, Any]
# Updates handled at once; each user's updates still arrive in order from Telegram.
CONCURRENT_UPDATES = 64
# Allocations between two collections of the youngest generation once serving (`_settle_gc`).
GC_YOUNG_THRESHOLD = 10_000


def build_application(
    settings: Settings,
    store: Store,
    *,
    library: Library | None = None,
    update_processor: BaseUpdateProcessor | None = None,
    clock: Callable[[], datetime] = utc_now,
    rate_limiter: LaneRateLimiter | None = None,
) -> BotApplication:
    """The whole bot, ready for `running()` (or `serve()`); no network used yet.

    The store is opened by the caller, in the event loop the bot will run in. `rate_limiter`
    replaces the default one (tests scale its budgets and clock).
    """
    if settings.bot_token is None:
        raise ValueError("BOT_TOKEN is required to build the application")
    library = library or load_library(settings.content_dir)
    # Raises ShapingUnavailable (with what to install) when Pillow cannot shape Bangla.
    pictures = CardService(library, store, settings.card_cache_dir, clock=clock)
    request, get_updates_request = build_requests(settings.http_backend)
    outbox = Outbox(on_failure=send_failed)
    inbox = Inbox(outbox)  # an update is in hand until the replies it posted are out
    processor = LedgerProcessor(
        update_processor or SimpleUpdateProcessor(CONCURRENT_UPDATES), inbox
    )
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
        .rate_limiter(
            rate_limiter
            or LaneRateLimiter(
                broadcast_rate=settings.broadcast_rate,
                # Several processes on one database share Telegram's bot-wide budget through it.
                cluster=None if store.backend == "sqlite" else ClusterBudget(store),
            )
        )
        .context_types(ContextTypes(context=AppContext, bot_data=BotData))
        .concurrent_updates(processor)
        .updater(None)  # bot.intake takes updates in (see there why not PTB's Updater)
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
    )
    application: BotApplication = builder.build()
    inbox.attach(application)
    leadership = Leadership(store, settings.worker_id, clock, exclusive=store.backend == "sqlite")
    services = Services(
        settings, library, store, pictures, leadership, clock, inbox=inbox, outbox=outbox
    )
    services.dispatcher = Dispatcher(services, subscriptions.tip_screen)
    application.bot_data.services = services
    register_handlers(application)
    return application


def register_handlers(application: BotApplication) -> None:
    """Every handler, in the order they are tried; the first match in a group wins."""
    application.add_handler(guard(), group=GUARD_GROUP)  # kinds the bot does not serve stop here
    application.add_handler(TypeHandler(Update, identify_user), group=-2)
    application.add_handler(
        ChatMemberHandler(track_block, ChatMemberHandler.MY_CHAT_MEMBER, chat_id=None), group=-1
    )
    # groups first: in a group it answers every button, so private screens never show there.
    for module in (
        groups, inline, menu, methods, answers, quiz, mypath, subscriptions, cards, account,
        language,
    ):  # fmt: skip
        application.add_handlers(module.handlers())
    application.add_handlers(admin.handlers(application.bot_data.services.settings.admin_ids))
    application.add_handlers(fallback.handlers())  # last: whatever nothing else took
    application.add_error_handler(error_handler(fallback.stale_button))


async def identify_user(update: Update, ctx: AppContext) -> None:
    """Before any handler: remember the user (one upsert) and pick the language for this update."""
    user = update.effective_user
    chat = update.effective_chat
    if user is not None and not user.is_bot and chat is not None and chat.type == ChatType.PRIVATE:
        try:
            record = await ctx.store.touch_user(user.id, now=ctx.now())
        except StoreError as exc:
            # Disk full, or locked past busy_timeout: still answer, in the language on file;
            # a handler that must write fails on its own and gets the apology.
            log.error("could not record user %s (answering anyway): %s", user.id, exc)
        else:
            ctx.is_new_user = record.first_seen == record.last_seen
    ctx.lang = await update_language(update, ctx.services)


async def track_block(update: Update, ctx: AppContext) -> None:
    """A user who blocks the bot gets no more messages until they come back."""
    change = update.my_chat_member
    if change is None or change.chat.type != ChatType.PRIVATE:
        return
    blocked = change.new_chat_member.status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT)
    await ctx.store.set_blocked(change.from_user.id, blocked, now=ctx.now())


async def _post_init(application: BotApplication) -> None:
    services = application.bot_data.services
    # The search index (a quarter of a second to build) is built while the bot starts serving.
    services.in_background(on_search_thread(lambda: services.library.search))
    await publish_commands(application, services.library, services.settings.default_language)
    assert application.job_queue is not None
    # Leadership first: the runs below send only from the process that holds it (bot.leader).
    # Taking it over frees the claims of a process that died mid-dispatch: sent now.
    await services.leadership.start()
    if services.store.backend != "sqlite":  # one process per SQLite file: it keeps the lease
        services.in_background(services.dispatcher.keep_leadership(application.bot))
    services.dispatcher.start(application.job_queue)
    # Cached pictures nobody used for a week go; with CARD_UPLOAD_CHAT_ID, the method cards
    # Telegram does not have yet are uploaded there, for inline answers.
    services.in_background(asyncio.to_thread(services.cards.prune))
    if (upload_chat := services.settings.card_upload_chat_id) is not None:
        services.in_background(services.cards.upload_ahead(application.bot, upload_chat))
    log.info("bot @%s ready", application.bot.username)


async def _post_shutdown(application: BotApplication) -> None:
    services = application.bot_data.services
    await services.cancel_background()  # the lease keeper and the runs it started
    try:
        await services.cards.close()  # the render process
        await services.leadership.resign()  # the next leader sends what this one had claimed
    finally:
        await services.store.close()


def intake(application: BotApplication, *, poll_timeout: float = 10) -> Poller | WebhookServer:
    """Long polling, or the webhook server when WEBHOOK_URL is set."""
    services = application.bot_data.services
    settings = services.settings
    if not settings.webhook_url:
        return Poller(application, services.inbox, int(poll_timeout))
    assert settings.webhook_secret is not None  # Settings require it with a URL
    return WebhookServer(
        application,
        services.inbox,
        listen=settings.webhook_listen,
        port=settings.webhook_port,
        path=urlsplit(settings.webhook_url).path,
        secret=settings.webhook_secret,
        url=settings.webhook_url,
        health=lambda: health(services),
        register=False,  # the dispatcher leader does it (`running`), once for the cluster
    )


def health(services: Services) -> dict[str, object]:
    """What `GET /healthz` reports to a balancer and an operator: which worker, whether it runs
    the tips dispatcher now, and its load."""
    return {
        "worker": services.settings.worker_id,
        "leader": services.leadership.is_leader,
        "in_hand": services.inbox.in_hand,
        "replies_queued": services.outbox.pending,
    }


@asynccontextmanager
async def running(
    application: BotApplication,
    *,
    poll_timeout: float = 10,
    grace: float = HANDLER_GRACE,
    bound: float = STOP_BOUND,
) -> AsyncIterator[BotApplication]:
    """Run the bot (long polling, or webhook when configured) inside an existing event loop.

    Start: PTB's initialize and start, then the updates a previous stop handed back, then new
    updates. Stop, within `bound` seconds: take no more updates, give the ones in hand `grace`
    seconds (an update is in hand until the replies it posted to the outbox are out), store what
    is left for the next start and cancel its queued replies (only then confirm the offset to
    Telegram), stop PTB and close the store, whatever fails on the way.
    """
    services = application.bot_data.services
    source = intake(application, poll_timeout=poll_timeout)
    started = False
    try:
        await application.initialize()
        if application.post_init is not None:
            await application.post_init(application)
        await application.start()
        started = True
        held = await services.store.take_held_updates()
        for raw in held:
            services.inbox.offer(json.loads(raw), replayed=True)
        if held:
            log.info("%d update(s) handed back by the last stop are handled first", len(held))
        await source.start()
        if isinstance(source, WebhookServer):
            # One process of a cluster registers the webhook: the one leading the dispatcher
            # now, or later whichever takes the lead over (a new URL reaches Telegram either way).
            services.leadership.on_gained = source.register_webhook
            if services.leadership.is_leader:
                await source.register_webhook()
    except BaseException:
        await _stop(application, source, started=started, grace=0, bound=bound)
        raise
    try:
        yield application
    finally:
        await _stop(application, source, started=True, grace=grace, bound=bound)


async def _stop(
    application: BotApplication,
    source: Poller | WebhookServer,
    *,
    started: bool,
    grace: float,
    bound: float,
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    services = application.bot_data.services
    inbox = services.inbox
    try:
        await source.stop()
        if started and not await inbox.drain(grace):
            log.warning("%d update(s) still in hand after %.0fs", inbox.in_hand, grace)
        left = await inbox.hand_back()
        stored = True
        if left:
            try:
                await services.store.hold_updates([json.dumps(raw) for raw in left])
                log.warning(
                    "%d update(s) handed back, to be handled at the next start: %s",
                    len(left),
                    ", ".join(str(raw["update_id"]) for raw in left),
                )
            except StoreError as exc:
                stored = False  # then leave them unconfirmed: Telegram sends them again
                log.error("could not keep %d update(s) in hand: %s", len(left), exc)
        await source.finish(stored)
        if inbox.skipped:
            log.warning("%d update(s) PTB could not read were skipped in this run", inbox.skipped)
        if application.running:
            try:
                async with asyncio.timeout(max(0.5, deadline - loop.time() - 1)):
                    await application.stop()
            except TimeoutError:
                log.error("PTB did not stop within %.0fs; shutting down anyway", bound)
            if application.post_stop is not None:
                await application.post_stop(application)
        # Replies posted by no update in hand (an error handler's apology for one handed back):
        # out within what is left of the bound, or given up and logged.
        await services.outbox.close(deadline - loop.time() - 0.5)
        await application.shutdown()
    finally:
        if application.post_shutdown is not None:
            await application.post_shutdown(application)


async def serve(application: BotApplication) -> None:
    """Run until SIGTERM or SIGINT (Ctrl-C), then stop as `running` does (`ayerpoth run`)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with running(application):
            _settle_gc()
            await stop.wait()
            log.info("stopping")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def _settle_gc() -> None:
    """Once the bot serves: what start-up built (content, templates, search index, PTB) is moved
    out of the collector's sight, and young objects are collected less often.

    A tap makes thousands of short-lived objects (PTB's, aiohttp's, Jinja's) that reference
    counting frees; at the default threshold (700) the collector still ran every few taps and
    walked the whole start-up heap at each older-generation pass. Measured with the 200-user
    bench: 7% of the bot's CPU in the collector before, 2% after, CPU per tap -10%
    (docs/performance.md). A cycle now waits for up to GC_YOUNG_THRESHOLD allocations.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """`ayerpoth run`'s event loop: uvloop (libuv) rather than asyncio's own.

    Same asyncio API, but its transports, timers and callbacks cost less CPU: -7 to -17% CPU per
    menu tap in the 200-user bench, together with `_settle_gc` (docs/performance.md). Tests run
    on asyncio's loop; tests/test_crash.py and test_foundation.py start `ayerpoth run` itself.
    """
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)
