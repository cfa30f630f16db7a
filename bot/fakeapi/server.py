"""A fake Telegram Bot API server on 127.0.0.1, faithful enough to run the real PTB Application.

Why: the bot's tests and the playground must exercise python-telegram-bot exactly as production
does (HTTP, JSON, long polling, webhooks, error handling) without ever reaching
api.telegram.org. The server keeps a small simulated world (users, groups, a channel), records
every call, rejects what Telegram rejects with Telegram's texts, and can emulate flood limits,
5xx errors and timeouts deterministically. Users are driven through :mod:`bot.fakeapi.driver`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from bot.fakeapi.driver import ChannelDriver, GroupDriver, Reply, UserDriver
from bot.fakeapi.files import FileStore
from bot.fakeapi.models import (
    ApiError,
    BotMessage,
    Call,
    CallbackAnswer,
    ChatEvent,
    Faults,
    FloodLimiter,
    FloodRules,
    InlineAnswer,
    plain_html,
)
from bot.fakeapi.validation import (
    WRONG_FILE,
    bad_request,
    format_text,
    validate_commands,
    validate_inline_results,
    validate_language_code,
    validate_reply_markup,
)
from bot.telegram_html import ParsedText

__all__ = ["FakeBotAPI"]

Params = dict[str, Any]
Handler = Callable[[Params], Awaitable[Any]]

#: Form fields that Telegram (and PTB) encode as JSON inside form bodies.
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "results",
        "commands",
        "scope",
        "allowed_updates",
        "reply_parameters",
        "link_preview_options",
        "message_ids",
        "button",
        "menu_button",
    }
)
#: Update types Telegram delivers when allowed_updates is empty or was never set.
_DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_SCOPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)
_SCRIPTED_DESCRIPTIONS = {
    400: "Bad Request: scripted failure",
    403: "Forbidden: bot was blocked by the user",
    500: "Internal Server Error",
    502: "Bad Gateway",
    504: "Gateway Timeout",
}
_CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_CONFLICT_POLL = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
_QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
#: setWebhook's max_connections when not given, as Telegram's.
WEBHOOK_DEFAULT_CONNECTIONS = 40
#: A failed delivery is tried again after this, doubling up to WEBHOOK_RETRY_MAX. Telegram starts
#: at a second and goes up to a minute or two; the fake is faster so tests do not wait.
WEBHOOK_RETRY_FIRST = 0.05
WEBHOOK_RETRY_MAX = 2.0
#: A POST that has not been answered by then failed (the bot's webhook answers within seconds).
WEBHOOK_TIMEOUT = 10.0


@dataclass
class SimUser:
    """A simulated Telegram user and the state of their private chat with the bot."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    has_started: bool = False
    blocked: bool = False

    def to_api(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                user[key] = getattr(self, key)
        return user


@dataclass
class SimChat:
    """A simulated chat; for private chats ``id`` equals the user's id."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    members: dict[int, str] = field(default_factory=dict)
    bot_status: str = "member"
    message_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    migrated_to: int | None = None  # a group that became this supergroup takes no more messages


@dataclass
class _ScriptedFault:
    method: str
    status: int
    description: str
    retry_after: int | None
    remaining: int
    chat_id: int | str | None
    delay: float | None


@dataclass
class _Query:
    """A callback or inline query the bot has yet to answer."""

    chat_id: int
    answered: bool = False
    asked: float = 0.0  # the fake's clock when the user pressed (for callback_timeout)


class FakeBotAPI:
    """The fake Bot API server plus its simulated world.

    Start it (``async with FakeBotAPI() as api``), point PTB at ``api.base_url``, create people
    with :meth:`private_user` / :meth:`group` and talk through the returned drivers. Afterwards
    inspect ``calls``, ``rejections``, ``events`` and :meth:`sent_to`. Flood limits
    (``flood=FloodRules()``), random faults (``api.faults = Faults(...)``) and scripted
    failures (:meth:`fail_next`) are off until asked for, so ordinary tests stay deterministic.
    """

    def __init__(
        self,
        *,
        token: str = "123456789:TEST_fake_token_for_tests_only_000",
        bot_username: str = "AyerPothBot",
        bot_first_name: str = "Ayer Poth",
        flood: bool | FloodRules = False,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        webhook_delivery: bool = True,
        track_processing: bool = True,
        handled_when_answered: bool = False,
        callback_timeout: float | None = None,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.clock = clock
        self.seed = seed
        self.webhook_delivery = webhook_delivery
        #: False when the bot cannot report finished updates (e.g. it runs in another process);
        #: the driver then waits for the bot's first reaction plus a quiet period instead.
        self.track_processing = track_processing
        #: A 2xx to a webhook POST reports the update handled (as notify_processed does): for a
        #: bot in other processes whose webhook answers only once it has handled the update and
        #: sent its replies (bot.intake.WebhookServer), the driver then waits for exactly that.
        self.handled_when_answered = handled_when_answered
        #: Seconds after a button press when Telegram stops accepting its answer ("query is too
        #: old"); None: no limit. ``late_answers`` counts answers refused for it.
        self.callback_timeout = callback_timeout
        self.late_answers = 0
        rules = FloodRules() if flood is True else flood or None
        self.flood: FloodLimiter | None = FloodLimiter(rules, clock) if rules else None
        self.faults = Faults(seed=seed)
        self.calls: list[Call] = []
        self.events: list[ChatEvent] = []
        self.users: dict[int, SimUser] = {}
        self.chats: dict[int, SimChat] = {}
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.descriptions: dict[tuple[str, str], str] = {}
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.webhook_errors: list[str] = []
        self.webhook_max_connections = WEBHOOK_DEFAULT_CONNECTIONS
        self._last_webhook_error: tuple[int, str] | None = None
        # Delivery state: the update in flight per queue (a chat), each update's failures and
        # when it may be sent again.
        self._in_flight: dict[object, int] = {}
        self._delivery_failures: dict[int, int] = {}
        self._retry_at: dict[int, float] = {}
        self._deliveries: set[asyncio.Task[None]] = set()
        self._allowed_updates: frozenset[str] | None = None
        self._messages: dict[tuple[int, int], BotMessage] = {}
        self._user_messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._pending: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._user_ids = itertools.count(10_000_001)
        self._group_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        #: Every file uploaded, by each of its file_ids (a send by file_id must name one).
        self.files = FileStore()
        self._callback_queries: dict[str, _Query] = {}
        self._inline_queries: dict[str, _Query] = {}
        self._scripted: list[_ScriptedFault] = []
        self._processed: set[int] = set()
        self._processed_waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._updates_changed = asyncio.Event()
        self._events_changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._poll_generation = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self.base_url = ""
        self.channel: ChannelDriver | None = None
        self._methods: dict[str, Handler] = {
            name.lower(): handler
            for name, handler in {
                "getMe": self._get_me,
                "logOut": self._true,
                "close": self._true,
                "getUpdates": self._get_updates,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "sendMessage": self._send_message,
                "sendPhoto": self._send_photo,
                "sendDocument": self._send_document,
                "editMessageText": self._edit_message_text,
                "editMessageCaption": self._edit_message_caption,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "deleteMessage": self._delete_message,
                "deleteMessages": self._delete_messages,
                "answerCallbackQuery": self._answer_callback_query,
                "answerInlineQuery": self._answer_inline_query,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "setMyDescription": self._description_setter("description", 512),
                "getMyDescription": self._description_getter("description"),
                "setMyShortDescription": self._description_setter("short_description", 120),
                "getMyShortDescription": self._description_getter("short_description"),
                "setMyName": self._description_setter("name", 64),
                "getMyName": self._description_getter("name"),
                "sendChatAction": self._send_chat_action,
                "getChat": self._get_chat,
                "getChatMember": self._get_chat_member,
                "getChatAdministrators": self._get_chat_administrators,
                "getChatMemberCount": self._get_chat_member_count,
                "leaveChat": self._leave_chat,
                "setChatMenuButton": self._true,
                "getChatMenuButton": self._get_chat_menu_button,
            }.items()
        }

    # -----------------------------------------------------------------------------------------
    # Lifecycle

    async def start(self) -> None:
        """Bind 127.0.0.1 on a free port and start serving."""
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/file/bot{token}/{path:.*}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        """Stop serving; pending long polls and injected delays end at once."""
        self._stopping.set()
        self._wake_pollers()
        tasks = [*self._deliveries, *([self._webhook_task] if self._webhook_task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._webhook_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -----------------------------------------------------------------------------------------
    # Public helpers for tests

    @property
    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    @property
    def webhook_connections(self) -> int:
        """Webhook POSTs open now (at most webhook_max_connections)."""
        return len(self._in_flight)

    @property
    def rejections(self) -> list[Call]:
        """Calls Telegram would have refused as a Bad Request: tests assert this stays empty."""
        return [c for c in self.calls if c.error_code == 400]

    @property
    def flood_rejections(self) -> int:
        """How many requests the flood limiter answered with 429."""
        return self.flood.rejected if self.flood else 0

    @property
    def bot_wide_floods(self) -> int:
        """How many of those 429s were for the bot-wide rule (30 a second in all chats)."""
        return self.flood.rejected_bot_wide if self.flood else 0

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def sent_to(self, chat_id: int) -> list[BotMessage]:
        """Current versions of the bot's messages in a chat, oldest first, deleted ones gone."""
        return [m for (chat, _), m in sorted(self._messages.items()) if chat == chat_id]

    def message(self, chat_id: int, message_id: int) -> BotMessage | None:
        return self._messages.get((chat_id, message_id))

    def private_user(
        self,
        first_name: str = "Rahim",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "bn",
    ) -> UserDriver:
        """Create a user (ids from 10_000_001 upward) and return the driver for their chat."""
        user = SimUser(next(self._user_ids), first_name, last_name, username, language_code)
        self.users[user.id] = user
        self.chats[user.id] = SimChat(user.id, "private", username=username)
        return UserDriver(self, user)

    def group(
        self, title: str, *, supergroup: bool = True, creator: UserDriver | None = None
    ) -> GroupDriver:
        """Create a group the bot is not yet in (ids -100… for supergroups, negative for groups)."""
        number = next(self._group_ids)
        chat_id = -1_000_000_000_000 - number if supergroup else -number
        chat = SimChat(chat_id, "supergroup" if supergroup else "group", title, bot_status="left")
        if creator is not None:
            chat.members[creator.id] = "creator"
        self.chats[chat_id] = chat
        return GroupDriver(self, chat)

    def channel_driver(self) -> ChannelDriver:
        """The one simulated channel (the bot is an administrator there)."""
        if self.channel is None:
            chat_id = -1_000_000_000_000 - next(self._group_ids)
            chat = SimChat(chat_id, "channel", "Ayer Poth Channel", bot_status="administrator")
            self.chats[chat_id] = chat
            self.channel = ChannelDriver(self, chat)
        return self.channel

    async def channel_post(self, text: str, *, timeout: float = 5.0) -> Reply:  # noqa: ASYNC109
        """Post ``text`` in the simulated channel (bots must ignore it); returns the Reply."""
        return await self.channel_driver().post(text, timeout=timeout)

    def fail_next(
        self,
        method: str,
        *,
        status: int = 500,
        description: str | None = None,
        retry_after: int | None = None,
        count: int = 1,
        chat_id: int | str | None = None,
        delay: float | None = None,
    ) -> None:
        """Make the next ``count`` calls of ``method`` (optionally only to ``chat_id``) fail.

        With ``delay`` the response is held that long first (to provoke client timeouts).
        The failed request is not performed.
        """
        if description is None:
            if status == 429:
                description = f"Too Many Requests: retry after {retry_after or 1}"
            else:
                description = _SCRIPTED_DESCRIPTIONS.get(status, f"Error {status}")
        if status == 429 and retry_after is None:
            retry_after = 1
        self._scripted.append(
            _ScriptedFault(method.lower(), status, description, retry_after, count, chat_id, delay)
        )

    def get_commands(
        self, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, str]]:
        """Exactly what setMyCommands stored for (scope, language_code), no fallback."""
        return list(self.commands.get((_scope_key(scope), language_code), []))

    def effective_commands(
        self, chat_id: int, user_id: int | None = None, language_code: str = ""
    ) -> list[dict[str, str]]:
        """The command menu a user sees in a chat, resolved like Telegram's clients do."""
        chat = self.chats[chat_id]
        scopes: list[dict[str, Any]]
        if chat.type == "private":
            scopes = [{"type": "chat", "chat_id": chat_id}, {"type": "all_private_chats"}]
        else:
            is_admin = user_id is not None and chat.members.get(user_id) in (
                "creator",
                "administrator",
            )
            scopes = []
            if user_id is not None:
                scopes.append({"type": "chat_member", "chat_id": chat_id, "user_id": user_id})
            if is_admin:
                scopes.append({"type": "chat_administrators", "chat_id": chat_id})
            scopes.append({"type": "chat", "chat_id": chat_id})
            if is_admin:
                scopes.append({"type": "all_chat_administrators"})
            scopes.append({"type": "all_group_chats"})
        scopes.append({"type": "default"})
        for scope in scopes:
            for language in (language_code, ""):
                found = self.commands.get((_scope_key(scope), language))
                if found:
                    return list(found)
        return []

    # -----------------------------------------------------------------------------------------
    # Updates and processing (used by the driver)

    @property
    def event_seq(self) -> int:
        return len(self.events)

    def events_since(self, seq: int) -> list[ChatEvent]:
        return self.events[seq:]

    def enqueue_update(self, kind: str, payload: dict[str, Any]) -> int:
        """Queue an update for getUpdates/webhook delivery and return its update_id.

        An update type that allowed_updates excludes is dropped like Telegram drops it, and is
        immediately marked processed so nobody waits for it.
        """
        update_id = next(self._update_ids)
        allowed = self._allowed_updates
        if (allowed is None and kind in _DEFAULT_EXCLUDED_UPDATES) or (
            allowed is not None and kind not in allowed
        ):
            self.notify_processed(update_id)
            return update_id
        self._pending.append({"update_id": update_id, kind: payload})
        self._wake_pollers()
        return update_id

    def inject_raw(self, update: dict[str, Any]) -> int:
        """Queue an update exactly as given (an update_id is added unless present), bypassing
        allowed_updates: what a self-hosted or future Bot API server might send, malformed ones
        included (e.g. a poll without a field PTB requires). Returns its update_id."""
        update = dict(update)
        update.setdefault("update_id", next(self._update_ids))
        self._pending.append(update)
        self._wake_pollers()
        return int(update["update_id"])

    def is_pending(self, update_id: int) -> bool:
        return any(u["update_id"] == update_id for u in self._pending)

    def notify_processed(self, update_id: int) -> None:
        """Called (via TrackingUpdateProcessor) when the bot finished handling an update."""
        self._processed.add(update_id)
        for future in self._processed_waiters.pop(update_id, []):
            if not future.done():
                future.set_result(None)

    async def wait_processed(self, update_id: int, timeout: float) -> None:  # noqa: ASYNC109
        """Wait until the bot reported ``update_id`` as handled; AssertionError on timeout."""
        if update_id in self._processed:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._processed_waiters.setdefault(update_id, []).append(future)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            where = "still queued" if self.is_pending(update_id) else "fetched by the bot"
            raise AssertionError(
                f"the bot did not finish update {update_id} within {timeout}s ({where}); is the "
                "Application running against this fake with a TrackingUpdateProcessor?"
            ) from None

    async def wait_event(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait for the next chat event (any chat); False when ``timeout`` passed first."""
        changed = self._events_changed
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def register_callback_query(self, chat_id: int) -> str:
        query_id = str(4_000_000_000_000 + next(self._query_ids))
        self._callback_queries[query_id] = _Query(chat_id, asked=self.clock())
        return query_id

    def register_inline_query(self, user_id: int) -> str:
        query_id = str(5_000_000_000_000 + next(self._query_ids))
        self._inline_queries[query_id] = _Query(user_id)
        return query_id

    def store_user_message(self, chat_id: int, message: dict[str, Any]) -> None:
        self._user_messages[(chat_id, message["message_id"])] = message

    def user_message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        return self._user_messages.get((chat_id, message_id))

    def next_message_id(self, chat_id: int) -> int:
        return next(self.chats[chat_id].message_ids)

    def chat_json(self, chat: SimChat) -> dict[str, Any]:
        if chat.type == "private":
            user = self.users[chat.id]
            data: dict[str, Any] = {"id": chat.id, "type": "private"}
            data["first_name"] = user.first_name
            if user.last_name:
                data["last_name"] = user.last_name
            if user.username:
                data["username"] = user.username
            return data
        data = {"id": chat.id, "type": chat.type, "title": chat.title}
        if chat.username:
            data["username"] = chat.username
        return data

    def message_json(self, message: BotMessage) -> dict[str, Any]:
        return message.to_api(self.bot_user, self.chat_json(self.chats[message.chat_id]))

    def _record_event(self, kind: str, chat_id: int, **fields: Any) -> None:
        self.events.append(ChatEvent(len(self.events), kind, chat_id, **fields))
        self._events_changed.set()
        self._events_changed = asyncio.Event()

    def _wake_pollers(self) -> None:
        self._updates_changed.set()
        self._updates_changed = asyncio.Event()

    # -----------------------------------------------------------------------------------------
    # HTTP layer

    async def _handle(self, request: web.Request) -> web.Response:
        method_name = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        handler = self._methods.get(method_name.lower())
        if handler is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        params: Params = {}
        try:
            params = await _read_params(request)
            await self._inject_faults(method_name, params)
            result = await handler(params)
        except ApiError as error:
            self._record_call(method_name, params, error)
            return web.json_response(error.to_json(), status=error.error_code)
        self._record_call(method_name, params, None)
        return web.json_response({"ok": True, "result": result})

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        return web.json_response(
            {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
        )

    def _record_call(self, method: str, params: Params, error: ApiError | None) -> None:
        self.calls.append(
            Call(
                method=method,
                params=params,
                ok=error is None,
                error_code=error.error_code if error else None,
                description=error.description if error else None,
                time=self.clock(),
            )
        )

    async def _inject_faults(self, method: str, params: Params) -> None:
        for fault in self._scripted:
            if fault.method != method.lower() or fault.remaining <= 0:
                continue
            if fault.chat_id is not None and str(params.get("chat_id")) != str(fault.chat_id):
                continue
            fault.remaining -= 1
            self._scripted = [f for f in self._scripted if f.remaining > 0]
            if fault.delay:
                await self._sleep(fault.delay)
            raise ApiError(fault.status, fault.description, fault.retry_after)
        faults = self.faults
        if (faults.error_rate or faults.timeout_rate) and faults.applies_to(method):
            outcome = faults.draw()
            if outcome == "error":
                raise faults.error()
            if outcome == "timeout":
                await self._sleep(faults.timeout_delay)
                raise ApiError(504, "Gateway Timeout")

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once when the server stops."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return

    # -----------------------------------------------------------------------------------------
    # Chat resolution and checks

    def _chat(self, params: Params, key: str = "chat_id") -> SimChat:
        raw = params.get(key)
        if raw is None or raw == "":
            raise bad_request("chat_id is empty")
        if isinstance(raw, str) and raw.startswith("@"):
            for chat in self.chats.values():
                if chat.username and chat.username.lower() == raw[1:].lower():
                    return chat
            raise bad_request("chat not found")
        try:
            chat_id = int(raw)
        except (TypeError, ValueError):
            raise bad_request("chat not found") from None
        found = self.chats.get(chat_id)
        if found is None:
            raise bad_request("chat not found")
        return found

    def _writable_chat(self, params: Params) -> SimChat:
        """Resolve chat_id for sending, with Telegram's 403s for unreachable chats."""
        chat = self._chat(params)
        if chat.type == "private":
            user = self.users[chat.id]
            if user.blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if not user.has_started:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        elif chat.migrated_to is not None:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=chat.migrated_to,
            )
        elif chat.bot_status == "kicked":
            raise ApiError(403, f"Forbidden: bot was kicked from the {chat.type} chat")
        elif chat.bot_status == "left":
            raise ApiError(403, f"Forbidden: bot is not a member of the {chat.type} chat")
        return chat

    def _throttle(self, chat: SimChat, *, edit: bool = False) -> None:
        if self.flood is None or (edit and not self.flood.rules.count_edits):
            return
        self.flood.check(chat.id, chat.type)

    def _check_reply_to(self, chat: SimChat, params: Params) -> None:
        reply = params.get("reply_parameters")
        target = reply.get("message_id") if isinstance(reply, dict) else None
        allow = isinstance(reply, dict) and bool(reply.get("allow_sending_without_reply"))
        if target is None and params.get("reply_to_message_id") is not None:
            target = params["reply_to_message_id"]
            allow = _bool(params.get("allow_sending_without_reply"))
        if target is None or allow:
            return
        key = (chat.id, _int(target, "message_id"))
        if key not in self._messages and key not in self._user_messages:
            raise bad_request("message to be replied not found")

    def _stored_message(self, params: Params, missing: str) -> BotMessage:
        if params.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._chat(params)
        if params.get("message_id") in (None, ""):
            raise bad_request("message identifier is not specified")
        key = (chat.id, _int(params["message_id"], "message_id"))
        message = self._messages.get(key)
        if message is None:
            if key in self._user_messages:
                raise bad_request("message can't be edited")
            raise bad_request(missing)
        return message

    def _new_message(
        self,
        chat: SimChat,
        html_text: str,
        parsed: ParsedText,
        markup: dict[str, Any] | None,
        *,
        kind: str = "text",
        media: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        message = BotMessage(
            chat_id=chat.id,
            message_id=self.next_message_id(chat.id),
            html=html_text,
            text=parsed.plain,
            entities=parsed.entities,
            reply_markup=markup,
            date=int(time.time()),
            kind=kind,
            media=media,
        )
        self._messages[(chat.id, message.message_id)] = message
        self._record_event("message", chat.id, message=message)
        return self.message_json(message)

    def _edited(self, old: BotMessage, new: BotMessage) -> dict[str, Any]:
        if (new.text, new.entities, new.reply_markup) == (old.text, old.entities, old.reply_markup):
            raise bad_request(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        new = replace(new, edit_date=int(time.time()))
        self._messages[(new.chat_id, new.message_id)] = new
        self._record_event("edit", new.chat_id, message=new)
        return self.message_json(new)

    # -----------------------------------------------------------------------------------------
    # Methods: bot and updates

    async def _true(self, params: Params) -> bool:
        return True

    async def _get_me(self, params: Params) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _set_allowed_updates(self, params: Params) -> None:
        allowed = params.get("allowed_updates")
        if allowed is None:
            return
        if not isinstance(allowed, list):
            raise bad_request("can't parse allowed updates JSON object")
        self._allowed_updates = frozenset(str(a) for a in allowed) or None

    def _drop_pending(self) -> None:
        for update in self._pending:
            self.notify_processed(update["update_id"])
        self._pending.clear()

    async def _get_updates(self, params: Params) -> list[dict[str, Any]]:
        if self.webhook_url:
            raise ApiError(409, _CONFLICT_WEBHOOK)
        self._set_allowed_updates(params)
        offset = _int(params.get("offset", 0), "offset")
        limit = min(max(_int(params.get("limit", 100), "limit"), 1), 100)
        timeout = max(float(params.get("timeout", 0) or 0), 0.0)
        if offset < 0:
            self._pending = self._pending[offset:]
        elif offset:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._pending and not self._stopping.is_set():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            changed = self._updates_changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                break
            if generation != self._poll_generation:
                raise ApiError(409, _CONFLICT_POLL)
            if self.webhook_url:
                raise ApiError(409, _CONFLICT_WEBHOOK)
        return list(self._pending[:limit])

    async def _set_webhook(self, params: Params) -> bool:
        url = str(params.get("url") or "")
        secret = params.get("secret_token")
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise bad_request("bad webhook: Wrong HTTP URL specified")
            if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
                raise bad_request(
                    "bad webhook: the fake Bot API only delivers to 127.0.0.1/localhost"
                )
        if secret is not None and (
            not 1 <= len(str(secret)) <= 256
            or not all(c.isalnum() or c in "_-" for c in str(secret))
        ):
            raise bad_request("secret token contains unallowed characters")
        connections = _int(
            params.get("max_connections", WEBHOOK_DEFAULT_CONNECTIONS), "max_connections"
        )
        if not 1 <= connections <= 100:
            raise bad_request("bad webhook: max_connections must be between 1 and 100")
        self._set_allowed_updates(params)
        if _bool(params.get("drop_pending_updates")):
            self._drop_pending()
        self.webhook_url = url
        self.webhook_secret = str(secret) if secret is not None else None
        self.webhook_max_connections = connections
        self._retry_at.clear()  # a new webhook is tried at once
        self._wake_pollers()
        if url and self.webhook_delivery and self._webhook_task is None:
            self._webhook_task = asyncio.create_task(self._deliver_webhooks())
        return True

    async def _delete_webhook(self, params: Params) -> bool:
        if _bool(params.get("drop_pending_updates")):
            self._drop_pending()
        self.webhook_url = ""
        self.webhook_secret = None
        self._wake_pollers()
        return True

    async def _get_webhook_info(self, params: Params) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self.webhook_url:
            info["max_connections"] = self.webhook_max_connections
            if self._allowed_updates is not None:
                info["allowed_updates"] = sorted(self._allowed_updates)
        if self._last_webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = self._last_webhook_error
        return info

    async def _deliver_webhooks(self) -> None:
        """POST pending updates to the webhook as Telegram does: up to `webhook_max_connections`
        at once, a chat's updates one at a time and in order (the next only once the one before
        got a 2xx), each retried with a growing delay (or the answer's Retry-After) until it is
        delivered, the webhook is deleted or the server stops. Nothing is given up."""
        loop = asyncio.get_running_loop()
        while self.webhook_url and not self._stopping.is_set():
            changed = self._updates_changed  # new updates, a delivery ended, the webhook changed
            ready, wait = None, None
            if len(self._in_flight) < self.webhook_max_connections:
                ready, wait = self._next_delivery(loop.time())
            if ready is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), wait)
                continue
            key, update = ready
            self._in_flight[key] = update["update_id"]
            task = asyncio.create_task(self._deliver(key, update))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        self._webhook_task = None

    def _next_delivery(
        self, now: float
    ) -> tuple[tuple[object, dict[str, Any]] | None, float | None]:
        """The oldest update that may be sent now (the first of its queue, none of that queue
        in flight, not waiting to be retried), or None and how long until one may be."""
        seen: set[object] = set()
        wait: float | None = None
        for update in self._pending:
            key = _delivery_queue(update)
            if key in seen:
                continue
            seen.add(key)
            if key in self._in_flight:
                continue
            retry_at = self._retry_at.get(update["update_id"], now)
            if retry_at > now:
                wait = retry_at - now if wait is None else min(wait, retry_at - now)
                continue
            return (key, update), None
        return None, wait

    async def _deliver(self, key: object, update: dict[str, Any]) -> None:
        update_id = update["update_id"]
        try:
            delivered, retry_after = await self._post_update(update)
        finally:
            del self._in_flight[key]
            self._wake_pollers()
        if delivered:
            self._pending = [u for u in self._pending if u is not update]
            self._delivery_failures.pop(update_id, None)
            self._retry_at.pop(update_id, None)
            if self.handled_when_answered:
                self.notify_processed(update_id)
            return
        failures = self._delivery_failures.get(update_id, 0) + 1
        self._delivery_failures[update_id] = failures
        delay = min(WEBHOOK_RETRY_FIRST * 2 ** (failures - 1), WEBHOOK_RETRY_MAX)
        self._retry_at[update_id] = asyncio.get_running_loop().time() + (retry_after or delay)

    async def _post_update(self, update: dict[str, Any]) -> tuple[bool, float | None]:
        """One POST: whether it got a 2xx, and the Retry-After it asked for, if any."""
        assert self._session is not None
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook_secret
        retry_after = None
        try:
            async with self._session.post(
                self.webhook_url,
                data=json.dumps(update),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT),
            ) as response:
                if 200 <= response.status < 300:
                    return True, None
                error = f"Wrong response from the webhook: {response.status} {response.reason}"
                header = response.headers.get("Retry-After", "")
                retry_after = min(float(header), 3600.0) if header.isdigit() else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"Connection failed: {exc.__class__.__name__}"
        self.webhook_errors.append(error)
        self._last_webhook_error = (int(time.time()), error)
        return False, retry_after

    # -----------------------------------------------------------------------------------------
    # Methods: messages

    async def _send_message(self, params: Params) -> dict[str, Any]:
        chat = self._writable_chat(params)
        parsed = format_text(params.get("text"), params.get("parse_mode"), params.get("entities"))
        markup = params.get("reply_markup")
        validate_reply_markup(markup)
        self._check_reply_to(chat, params)
        self._throttle(chat)
        return self._new_message(chat, _html_of(params, "text"), parsed, markup)

    async def _send_photo(self, params: Params) -> dict[str, Any]:
        return await self._send_media(params, "photo")

    async def _send_document(self, params: Params) -> dict[str, Any]:
        return await self._send_media(params, "document")

    async def _send_media(self, params: Params, kind: str) -> dict[str, Any]:
        """sendPhoto / sendDocument: a multipart upload (a new file_id) or a file_id this fake
        issued; anything else is refused as Telegram refuses an id it does not know."""
        chat = self._writable_chat(params)
        upload = params.get(kind)
        if isinstance(upload, str) and upload.startswith("attach://"):
            upload = params.get(upload.removeprefix("attach://"))
        if upload in (None, ""):
            raise bad_request(f"there is no {kind} in the request")
        parsed = format_text(
            params.get("caption"),
            params.get("parse_mode"),
            params.get("caption_entities"),
            caption=True,
        )
        markup = params.get("reply_markup")
        validate_reply_markup(markup)
        self._check_reply_to(chat, params)
        if isinstance(upload, dict):
            stored = self.files.upload(kind, upload)
        elif str(upload).startswith(("http://", "https://")):
            raise bad_request(f"{WRONG_FILE} (the fake Bot API fetches no URLs)")
        else:
            stored = self.files.get(kind, str(upload))
        self._throttle(chat)
        return self._new_message(
            chat, _html_of(params, "caption"), parsed, markup, kind=kind, media=stored.media
        )

    async def _edit_message_text(self, params: Params) -> dict[str, Any]:
        return self._edit_content(params, caption=False)

    async def _edit_message_caption(self, params: Params) -> dict[str, Any]:
        return self._edit_content(params, caption=True)

    def _edit_content(self, params: Params, *, caption: bool) -> dict[str, Any]:
        """editMessageText / editMessageCaption: the same rules on a text or a media message."""
        old = self._stored_message(params, "message to edit not found")
        if (old.kind != "text") != caption:
            what = "caption" if caption else "text"
            raise bad_request(f"there is no {what} in the message to edit")
        field = "caption" if caption else "text"
        parsed = format_text(
            params.get(field),
            params.get("parse_mode"),
            params.get("caption_entities" if caption else "entities"),
            caption=caption,
        )
        markup = params.get("reply_markup")
        validate_reply_markup(markup, inline_only=True)
        new = replace(
            old,
            html=_html_of(params, field),
            text=parsed.plain,
            entities=parsed.entities,
            reply_markup=markup,
        )
        self._throttle(self.chats[old.chat_id], edit=True)
        return self._edited(old, new)

    async def _edit_message_reply_markup(self, params: Params) -> dict[str, Any]:
        old = self._stored_message(params, "message to edit not found")
        markup = params.get("reply_markup")
        validate_reply_markup(markup, inline_only=True)
        self._throttle(self.chats[old.chat_id], edit=True)
        return self._edited(old, replace(old, reply_markup=markup))

    def _delete(self, chat: SimChat, message_id: int) -> bool:
        key = (chat.id, message_id)
        if self._messages.pop(key, None) is None and self._user_messages.pop(key, None) is None:
            return False
        self._record_event("delete", chat.id, message_id=message_id)
        return True

    async def _delete_message(self, params: Params) -> bool:
        chat = self._chat(params)
        if params.get("message_id") in (None, ""):
            raise bad_request("message identifier is not specified")
        if not self._delete(chat, _int(params["message_id"], "message_id")):
            raise bad_request("message to delete not found")
        return True

    async def _delete_messages(self, params: Params) -> bool:
        chat = self._chat(params)
        ids = params.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message identifiers are not specified")
        for message_id in ids:
            self._delete(chat, _int(message_id, "message_ids"))
        return True

    async def _send_chat_action(self, params: Params) -> bool:
        chat = self._writable_chat(params)
        action = str(params.get("action") or "")
        if action not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self._record_event("chat_action", chat.id, action=action)
        return True

    # -----------------------------------------------------------------------------------------
    # Methods: queries

    async def _answer_callback_query(self, params: Params) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        query = self._callback_queries.get(query_id)
        if query is None or query.answered:
            raise bad_request(_QUERY_TOO_OLD)
        if self.callback_timeout is not None and self.clock() - query.asked > self.callback_timeout:
            self.late_answers += 1
            raise bad_request(_QUERY_TOO_OLD)
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        url = params.get("url")
        query.answered = True
        answer = CallbackAnswer(
            query_id,
            None if text is None else str(text),
            _bool(params.get("show_alert")),
            None if url is None else str(url),
        )
        self._record_event("callback_answer", query.chat_id, callback_answer=answer)
        return True

    async def _answer_inline_query(self, params: Params) -> bool:
        query_id = str(params.get("inline_query_id") or "")
        query = self._inline_queries.get(query_id)
        if query is None or query.answered:
            raise bad_request(_QUERY_TOO_OLD)
        results = validate_inline_results(
            params.get("results"), known_photo=lambda file_id: self.files.knows("photo", file_id)
        )
        cache_time = params.get("cache_time")
        query.answered = True
        answer = InlineAnswer(
            query_id=query_id,
            results=results,
            cache_time=None if cache_time is None else _int(cache_time, "cache_time"),
            is_personal=_bool(params.get("is_personal")),
            next_offset=params.get("next_offset"),
            button=params.get("button"),
        )
        self._record_event("inline_answer", query.chat_id, inline_answer=answer)
        return True

    # -----------------------------------------------------------------------------------------
    # Methods: commands and descriptions

    def _scope(self, params: Params) -> str:
        scope = params.get("scope")
        if scope is None:
            return _scope_key(None)
        if not isinstance(scope, dict) or scope.get("type") not in _SCOPES:
            raise bad_request("can't parse BotCommandScope JSON object")
        if "chat_id" in scope:
            scope = {**scope, "chat_id": self._chat(scope).id}
        elif scope["type"] in ("chat", "chat_administrators", "chat_member"):
            raise bad_request("chat_id is empty")
        if scope["type"] == "chat_member":
            user_id = scope.get("user_id")
            if user_id is None or _int(user_id, "user_id") not in self.users:
                raise bad_request("user not found")
        return _scope_key(scope)

    async def _set_my_commands(self, params: Params) -> bool:
        commands = validate_commands(params.get("commands"))
        key = (self._scope(params), validate_language_code(params.get("language_code")))
        if commands:
            self.commands[key] = commands
        else:
            self.commands.pop(key, None)
        return True

    async def _get_my_commands(self, params: Params) -> list[dict[str, str]]:
        scope = self._scope(params)
        language = validate_language_code(params.get("language_code"))
        found = self.commands.get((scope, language))
        if found is None:
            found = self.commands.get((scope, ""), [])
        return list(found)

    async def _delete_my_commands(self, params: Params) -> bool:
        key = (self._scope(params), validate_language_code(params.get("language_code")))
        self.commands.pop(key, None)
        return True

    def _description_setter(self, field_name: str, limit: int) -> Handler:
        async def setter(params: Params) -> bool:
            language = validate_language_code(params.get("language_code"))
            value = str(params.get(field_name) or "")
            if len(value) > limit:
                raise bad_request(f"{field_name.replace('_', ' ')} is too long")
            if value:
                self.descriptions[(field_name, language)] = value
            else:
                self.descriptions.pop((field_name, language), None)
            return True

        return setter

    def _description_getter(self, field_name: str) -> Handler:
        async def getter(params: Params) -> dict[str, str]:
            language = validate_language_code(params.get("language_code"))
            value = self.descriptions.get((field_name, language))
            if value is None:
                value = self.descriptions.get((field_name, ""), "")
            if field_name == "name" and not value:
                value = self.bot_first_name
            return {field_name: value}

        return getter

    # -----------------------------------------------------------------------------------------
    # Methods: chats

    async def _get_chat(self, params: Params) -> dict[str, Any]:
        chat = self._chat(params)
        return {
            **self.chat_json(chat),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def member_json(self, chat: SimChat, user_id: int) -> dict[str, Any]:
        if user_id == self.bot_id:
            user, status = self.bot_user, chat.bot_status
        elif user_id in self.users:
            user = self.users[user_id].to_api()
            status = "member" if chat.type == "private" else chat.members.get(user_id, "left")
        else:
            raise bad_request("user not found")
        member: dict[str, Any] = {"status": status, "user": user}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(
                can_be_edited=False,
                is_anonymous=False,
                can_manage_chat=True,
                can_delete_messages=True,
                can_manage_video_chats=True,
                can_restrict_members=True,
                can_promote_members=False,
                can_change_info=True,
                can_invite_users=True,
                can_post_stories=False,
                can_edit_stories=False,
                can_delete_stories=False,
                can_pin_messages=True,
            )
        elif status == "kicked":
            member["until_date"] = 0
        return member

    async def _get_chat_member(self, params: Params) -> dict[str, Any]:
        chat = self._chat(params)
        if params.get("user_id") in (None, ""):
            raise bad_request("user not found")
        return self.member_json(chat, _int(params["user_id"], "user_id"))

    async def _get_chat_administrators(self, params: Params) -> list[dict[str, Any]]:
        chat = self._chat(params)
        if chat.type == "private":
            raise bad_request("there are no administrators in the private chat")
        admins = [
            self.member_json(chat, user_id)
            for user_id, status in chat.members.items()
            if status in ("creator", "administrator")
        ]
        if chat.bot_status == "administrator":
            admins.append(self.member_json(chat, self.bot_id))
        return admins

    async def _get_chat_member_count(self, params: Params) -> int:
        chat = self._chat(params)
        if chat.type == "private":
            return 2
        members = sum(1 for s in chat.members.values() if s not in ("left", "kicked"))
        return members + (chat.bot_status in ("member", "administrator"))

    async def _leave_chat(self, params: Params) -> bool:
        chat = self._chat(params)
        if chat.type == "private":
            raise bad_request("chat member status can't be changed in private chats")
        chat.bot_status = "left"
        return True

    async def _get_chat_menu_button(self, params: Params) -> dict[str, str]:
        return {"type": "commands"}


# ---------------------------------------------------------------------------------------------
# Request parsing helpers


async def _read_params(request: web.Request) -> Params:
    """Read query, JSON, urlencoded or multipart parameters into one dict.

    Form values that Telegram treats as JSON objects (reply_markup, entities, ...) are decoded;
    uploaded files become ``{"filename", "size", "content_type", "data"}`` descriptors.
    """
    params: Params = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except json.JSONDecodeError:
                raise bad_request("can't parse JSON object") from None
            if not isinstance(body, dict):
                raise bad_request("can't parse JSON object")
            params.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    data = value.file.read()
                    params[key] = {
                        "filename": value.filename,
                        "size": len(data),
                        "content_type": value.content_type,
                        "data": data,
                    }
                else:
                    params[key] = value
    for key in _JSON_FIELDS & params.keys():
        if isinstance(params[key], str):
            try:
                params[key] = json.loads(params[key])
            except json.JSONDecodeError:
                what = "reply keyboard markup" if key == "reply_markup" else key
                raise bad_request(f"can't parse {what} JSON object") from None
    return params


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f'invalid parameter "{name}"') from None


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("true", "1")
    return bool(value)


def _html_of(params: Params, key: str) -> str:
    """The message as HTML: what was sent in HTML mode, else the text escaped."""
    raw = str(params.get(key) or "")
    if str(params.get("parse_mode") or "").lower() == "html":
        return raw
    return plain_html(raw)


def _scope_key(scope: dict[str, Any] | None) -> str:
    return json.dumps(scope or {"type": "default"}, sort_keys=True)


def _delivery_queue(update: dict[str, Any]) -> object:
    """Which of Telegram's delivery queues an update is in: its chat (else its sender), so one
    chat's updates arrive in order; an update with neither is a queue of its own."""
    for payload in update.values():
        if not isinstance(payload, dict):
            continue
        message = payload.get("message") if "chat" not in payload else payload
        chat = message.get("chat") if isinstance(message, dict) else None
        if isinstance(chat, dict) and "id" in chat:
            return ("chat", chat["id"])
        sender = payload.get("from")
        if isinstance(sender, dict) and "id" in sender:
            return ("chat", sender["id"])
    return ("update", update.get("update_id"))
