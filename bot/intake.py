"""Updates in: long polling or a webhook server, each update read on its own, and a ledger of the
updates in hand so that a stop can finish them or hand them back.

Why not PTB's Updater: it parses a whole getUpdates batch at once, so one update PTB cannot read
(a self-hosted Bot API server sending a poll without a field PTB requires) fails the batch, the
offset never moves, and the same batch is fetched again in a tight loop with CRITICAL logs holding
users' messages; in webhook mode its server answers 400 and Telegram holds every later update
behind that one. Its Tornado server also reads a whole body before the secret is checked, has no
timeouts for slow clients and no bound on connections, and a stop waits for every update in hand
however long that takes. Here:

* every raw update is parsed by itself; one PTB cannot read is logged once (its id, kind and field
  names, never its text), counted in `Inbox.skipped` and skipped, and the offset moves past it;
* `Inbox` knows every update accepted and not yet handled (as the raw JSON Telegram sent). An
  update is handled when its handlers have returned *and* the replies they posted to the outbox
  (`bot.outbox`) have ended, so a reply still waiting on flood control keeps its update in hand
  (not its handler slot). On a stop, what is not done within `HANDLER_GRACE` is cancelled
  (handler and queued replies) and stored (`Store.hold_updates`); the next start handles it
  first. Only then is the last offset confirmed to Telegram;
* `WebhookServer` checks path, method and secret from the headers alone, refuses bodies over
  `WEBHOOK_MAX_BODY` by their Content-Length, gives every client `WEBHOOK_CLIENT_TIMEOUT` seconds
  for its headers and body, and serves at most `WEBHOOK_MAX_CONNECTIONS` connections at once.
  It answers an update's POST with 200 only once the update is handled (its replies out), or
  after `WEBHOOK_ANSWER_WITHIN` at the latest: a process killed before that never said 200, so
  Telegram (or the balancer in front of several processes) sends the update again. `GET /healthz`
  tells a balancer whether this process takes updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from telegram import Update
from telegram.error import RetryAfter, TelegramError, TimedOut
from telegram.ext import Application, BaseUpdateProcessor

from bot.workarounds import get_updates_unread, retry_delay

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from bot.outbox import Outbox

log = logging.getLogger(__name__)

# What the bot serves; bot.guard ignores the rest even if a server sends it anyway.
ALLOWED_UPDATES = ("message", "callback_query", "inline_query", "my_chat_member")
# A stop waits this long for the updates in hand, then hands the rest back (stored for the next
# start). The whole stop stays within STOP_BOUND, well under systemd's TimeoutStopSec=30.
HANDLER_GRACE = 5.0
STOP_BOUND = 10.0
# Telegram's webhook settings, and what the server accepts (README: nginx in front keeps the same).
WEBHOOK_MAX_CONNECTIONS = 40  # setWebhook max_connections (Telegram's default)
WEBHOOK_SERVER_CONNECTIONS = 64  # the server's bound: Telegram's 40 plus room for nginx and probes
WEBHOOK_MAX_BODY = 1024 * 1024  # an update is a few kB; nginx's client_max_body_size 1m
WEBHOOK_MAX_HEADERS = 16 * 1024
WEBHOOK_CLIENT_TIMEOUT = 10.0  # for the request's headers, and again for its body
WEBHOOK_IDLE_TIMEOUT = 30.0  # a kept-alive connection with no next request is closed
# An update's POST is answered when it is handled, but never later than this: a reply held by a
# long retry_after must not hold Telegram's connection (nor look to a balancer like a dead worker).
WEBHOOK_ANSWER_WITHIN = 5.0
HEALTH_PATH = "/healthz"
SECRET_HEADER = "x-telegram-bot-api-secret-token"


class Inbox:
    """The updates accepted and not yet handled, by update_id, kept as the raw JSON received.

    With an `outbox`, an update whose handlers returned stays in hand until its posted replies
    have ended (`Outbox.on_settled`).
    """

    def __init__(self, outbox: Outbox | None = None) -> None:
        self.skipped = 0  # updates PTB could not read
        self.outbox = outbox
        if outbox is not None:
            outbox.on_settled = self._settled
        self._raw: dict[int, dict[str, Any]] = {}
        self._sending: set[int] = set()  # handled, their replies still in the outbox
        self._tasks: dict[int, asyncio.Task[Any]] = {}
        self._application: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._seen_replayed: set[int] = set()
        self._outcomes: dict[int, asyncio.Future[bool]] = {}  # True handled, False handed back
        self._drained: asyncio.Event | None = None
        self._closed = False  # handed back: nothing more is handled

    def attach(self, application: Application[Any, Any, Any, Any, Any, Any]) -> None:
        self._application = application

    @property
    def in_hand(self) -> int:
        return len(self._raw)

    def holds(self, update_id: int) -> bool:
        """Whether this update is accepted and not yet handled (nor handed back)."""
        return update_id in self._raw

    async def outcome(self, update_id: int, timeout: float) -> bool | None:  # noqa: ASYNC109
        """Wait until an update in hand leaves it: True when handled, False when a stop handed
        it back, None if `timeout` passed first (it stays in hand)."""
        if update_id not in self._raw:
            return True
        future = self._outcomes.get(update_id)
        if future is None:
            future = self._outcomes[update_id] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            return None

    def offer(self, raw: object, *, replayed: bool = False) -> bool:
        """Read one raw update and queue it for the handlers; False (logged once, counted) when
        PTB cannot read it or it was already handed back and replayed."""
        assert self._application is not None, "attach() the application first"
        update_id = raw.get("update_id") if isinstance(raw, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            self._skip(raw, None, "no update_id")
            return False
        assert isinstance(raw, dict)
        if replayed:
            self._seen_replayed.add(update_id)
        elif update_id in self._seen_replayed or update_id in self._raw:
            return False  # fetched again after a stop that could not confirm it: handled already
        try:
            update = Update.de_json(_as_read_by_ptb(raw), self._application.bot)
        except Exception as exc:
            self._skip(raw, update_id, _describe_error(exc))
            return False
        self._raw[update_id] = raw
        self._application.update_queue.put_nowait(update)
        return True

    def raw(self, update_id: int) -> dict[str, Any] | None:
        """The JSON Telegram sent for an update in hand, all of it (see _as_read_by_ptb)."""
        return self._raw.get(update_id)

    def _skip(self, raw: object, update_id: int | None, reason: str) -> None:
        self.skipped += 1
        kinds = [k for k in raw if k != "update_id"] if isinstance(raw, dict) else []
        fields = (
            {k: sorted(v) for k, v in raw.items() if isinstance(v, dict)}
            if isinstance(raw, dict)
            else {}
        )
        log.warning(
            "update %s skipped, PTB cannot read it (%s): kind %s, fields %s; %d skipped so far",
            update_id,
            reason,
            ", ".join(kinds) or type(raw).__name__,
            fields,
            self.skipped,
        )

    # --- called by LedgerProcessor around each update's handling --------------------------------

    def start_handling(self, update: object) -> bool:
        """Note the task handling `update` (a stop may cancel it); False once handed back."""
        if not isinstance(update, Update):
            return True
        if update.update_id not in self._raw:
            return not self._closed
        task = asyncio.current_task()
        if task is not None:
            self._tasks[update.update_id] = task
        return True

    def finished(self, update: object) -> None:
        """The handlers are done with `update`; it is done when its replies are out too."""
        if not isinstance(update, Update):
            return
        update_id = update.update_id
        self._tasks.pop(update_id, None)
        if update_id in self._raw and self.outbox is not None and self.outbox.sending(update_id):
            self._sending.add(update_id)
            return
        self._done(update_id)

    def _settled(self, update_id: int) -> None:
        """The outbox has ended the last reply posted for this update."""
        if update_id in self._sending:
            self._sending.discard(update_id)
            self._done(update_id)

    def _done(self, update_id: int) -> None:
        done = self._raw.pop(update_id, None) is not None
        self._resolve(update_id, handled=True)
        if done and not self._raw and self._drained is not None:
            self._drained.set()

    def _resolve(self, update_id: int, *, handled: bool) -> None:
        future = self._outcomes.pop(update_id, None)
        if future is not None and not future.done():
            future.set_result(handled)

    # --- stopping ---------------------------------------------------------------------------

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109 (one bound for the whole wait)
        """Wait until every update in hand is handled; False if `timeout` passed first."""
        if not self._raw:
            return True
        self._drained = asyncio.Event()
        try:
            async with asyncio.timeout(timeout):
                await self._drained.wait()
        except TimeoutError:
            return False
        finally:
            self._drained = None
        return True

    async def hand_back(self) -> list[dict[str, Any]]:
        """Stop handling what is left: cancel its tasks and the replies it posted that are still
        in the outbox, and return its raw JSON, oldest first."""
        ids = sorted(self._raw)
        left = [self._raw[update_id] for update_id in ids]
        self._raw.clear()
        for update_id in ids:
            self._resolve(update_id, handled=False)
        self._sending.clear()
        self._closed = True
        if self._application is not None:  # queued, not yet picked up by PTB
            queue = self._application.update_queue
            while not queue.empty():
                queue.get_nowait()
                queue.task_done()
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        if self.outbox is not None:
            await self.outbox.hand_back(ids)
        return left


# What PTB is not given of a tapped message (the raw update keeps them): see _as_read_by_ptb.
_UNREAD_OF_TAPPED = ("reply_markup", "entities")


def _as_read_by_ptb(raw: dict[str, Any]) -> dict[str, Any]:
    """The update as PTB reads it: a tapped message without its keyboard and text entities.

    PTB builds an object per button and per entity, half of the CPU of reading a tap
    (docs/performance.md), and only one thing reads them: bot.ui's check whether the message
    shows a screen already, which takes them from `Inbox.raw`. So in handlers
    `query.message.reply_markup` is None and `query.message.entities` is empty.
    """
    query = raw.get("callback_query")
    message = query.get("message") if isinstance(query, dict) else None
    if not isinstance(message, dict) or not any(key in message for key in _UNREAD_OF_TAPPED):
        return raw
    message = {key: value for key, value in message.items() if key not in _UNREAD_OF_TAPPED}
    return {**raw, "callback_query": {**query, "message": message}}  # type: ignore[dict-item]


class LedgerProcessor(BaseUpdateProcessor):
    """Wraps the application's update processor (same bound on concurrency) and tells the Inbox
    when an update's handling begins (its task, so a stop can cancel it) and ends, whatever the
    outcome. An update that waited for a slot while a stop handed it back is not handled."""

    def __init__(self, inner: BaseUpdateProcessor, inbox: Inbox) -> None:
        super().__init__(inner.max_concurrent_updates)
        self.inner = inner
        self.inbox = inbox

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if not self.inbox.start_handling(update):
            if isinstance(coroutine, Coroutine):
                coroutine.close()
            return
        try:
            await self.inner.do_process_update(update, coroutine)
        finally:
            self.inbox.finished(update)

    async def initialize(self) -> None:
        await self.inner.initialize()

    async def shutdown(self) -> None:
        await self.inner.shutdown()


# --- long polling --------------------------------------------------------------------------------


class Poller:
    """getUpdates in a loop; the raw JSON of each batch is read update by update (Inbox.offer)."""

    def __init__(
        self, application: Application[Any, Any, Any, Any, Any, Any], inbox: Inbox, timeout: int
    ) -> None:
        self.application = application
        self.inbox = inbox
        self.timeout = timeout
        self.offset = 0
        self.polls = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.application.bot.delete_webhook()
        self._task = asyncio.create_task(self._loop(), name="ayerpoth:polling")

    async def _fetch(self, timeout: int, limit: int = 100) -> list[Any]:  # noqa: ASYNC109
        self.polls += 1
        # Not Bot.get_updates: that parses the whole batch and fails on any one update.
        return await get_updates_unread(
            self.application.bot,
            offset=self.offset or None,
            limit=limit,
            timeout=timeout,
            allowed_updates=ALLOWED_UPDATES,
        )

    async def _loop(self) -> None:
        failures = 0
        while True:
            try:
                batch = await self._fetch(self.timeout)
            except RetryAfter as exc:
                await asyncio.sleep(retry_delay(exc).total_seconds())
                continue
            except TimedOut:
                continue  # a long poll the network dropped: ask again
            except TelegramError as exc:
                failures += 1
                delay = min(30.0, 0.5 * 2**failures)
                log.warning("getUpdates failed (%s); again in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            for raw in batch:
                update_id = raw.get("update_id") if isinstance(raw, dict) else None
                if isinstance(update_id, int):
                    if update_id < self.offset:
                        continue
                    self.offset = update_id + 1  # past it, whether or not PTB can read it
                self.inbox.offer(raw)

    async def stop(self) -> None:
        """Take no more updates (a long poll in progress is dropped; Telegram keeps its updates)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def finish(self, stored: bool) -> None:
        """After a stop: tell Telegram every update fetched is taken (handled, or handed back and
        `stored`); when they could not be stored, leave them unconfirmed, to come again."""
        if not self.offset or not stored:
            return
        try:
            async with asyncio.timeout(3):
                await self._fetch(0, limit=1)
        except (TelegramError, TimeoutError) as exc:
            log.warning("could not confirm the last updates (%s); they will come again", exc)


# --- the webhook server ------------------------------------------------------------------------


class WebhookServer:
    """Telegram's POSTs to `path`, served on asyncio streams with every limit set up front.

    A request is judged on its headers: wrong path 404, wrong method 405, wrong or missing secret
    403, no Content-Length 411, a body over `max_body` 413, each without reading the body, and the
    connection is closed. A readable update is answered 200 once it is handled and its replies
    are out, or after `answer_within` (Telegram holds only that chat's later updates meanwhile);
    one PTB cannot read (logged and skipped) at once. `GET /healthz` answers 200 with `health()`
    as JSON, and 503 once stopping, as does every request then: a balancer sends it elsewhere.

    With `register` (one process of a cluster does it) `start()` also sets the webhook.
    """

    def __init__(
        self,
        application: Application[Any, Any, Any, Any, Any, Any],
        inbox: Inbox,
        *,
        listen: str,
        port: int,
        path: str,
        secret: str,
        url: str,
        register: bool = True,
        health: Callable[[], Mapping[str, object]] = dict,
        max_connections: int = WEBHOOK_SERVER_CONNECTIONS,
        max_body: int = WEBHOOK_MAX_BODY,
        client_timeout: float = WEBHOOK_CLIENT_TIMEOUT,
        idle_timeout: float = WEBHOOK_IDLE_TIMEOUT,
        answer_within: float = WEBHOOK_ANSWER_WITHIN,
    ) -> None:
        self.application = application
        self.inbox = inbox
        self.listen, self.port, self.path, self.url = listen, port, "/" + path.lstrip("/"), url
        self._secret = secret.encode()
        self.register = register
        self.health = health
        self.max_connections = max_connections
        self.max_body = max_body
        self.client_timeout = client_timeout
        self.idle_timeout = idle_timeout
        self.answer_within = answer_within
        self.refused = 0  # connections closed at once because max_connections were open
        self.timed_out = 0
        self.answered_early = 0  # 200s given at answer_within, the update still in hand
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._waiting: set[asyncio.Task[Any]] = set()  # connections waiting on their update
        self._server: asyncio.Server | None = None
        self._stopping = False
        # After a stop handed updates back: set by finish(), with whether they were stored.
        self._finished = asyncio.Event()
        self._stored = False

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        await self.serve()
        if self.register:
            await self.register_webhook()

    async def register_webhook(self) -> None:
        """Tell Telegram where to post (the same URL, secret and kinds every time: repeating it
        changes nothing)."""
        await self.application.bot.set_webhook(
            self.url,
            secret_token=self._secret.decode(),
            allowed_updates=list(ALLOWED_UPDATES),
            max_connections=WEBHOOK_MAX_CONNECTIONS,
        )

    async def serve(self) -> None:
        """Listen (start() also registers the webhook with Telegram, if asked to)."""
        self._server = await asyncio.start_server(
            self._connection, self.listen, self.port, limit=WEBHOOK_MAX_HEADERS
        )

    async def stop(self) -> None:
        """Take no more updates: from now on every request is answered 503 (a balancer tries
        the next worker, Telegram sends it again later). Requests whose updates are in hand
        stay open: they are answered as those are handled, or at finish()."""
        self._stopping = True

    async def finish(self, stored: bool) -> None:
        """After a stop: answer the requests of updates handed back, 200 if they were `stored`
        (the next start handles them), else not at all (so they come again); then close the
        port and every connection."""
        self._stored = stored
        self._finished.set()
        if self._server is not None:
            self._server.close()
        if answering := set(self._waiting):  # their answers are written (then they close)
            await asyncio.wait(answering, timeout=self.client_timeout)
        open_now = dict(self._connections)
        for writer in open_now.values():  # a read in progress ends; the task closes
            writer.transport.abort()
        await asyncio.gather(*open_now, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= self.max_connections:
            self.refused += 1
            writer.transport.abort()
            return
        self._connections[task] = writer
        try:
            await self._serve(reader, writer)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        except ValueError:  # a header block longer than the stream's limit
            pass
        finally:
            del self._connections[task]
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = True
        while True:
            # Headers: within client_timeout of the first byte (idle_timeout for a kept-alive
            # connection to start its next request).
            try:
                async with asyncio.timeout(self.client_timeout if first else self.idle_timeout):
                    start = await reader.read(1)
                    if not start:
                        return
                async with asyncio.timeout(self.client_timeout):
                    head = start + await reader.readuntil(b"\r\n\r\n")
            except TimeoutError:
                self.timed_out += 1
                raise
            first = False
            status, keep_alive, body = await self._request(head, reader)
            if status is None:  # dropped unanswered: the sender tries again
                return
            keep_alive = keep_alive and not self._stopping
            headers = f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Length: {len(body)}\r\n"
            if body:
                headers += "Content-Type: application/json\r\n"
            connection = "keep-alive" if keep_alive else "close"
            writer.write(f"{headers}Connection: {connection}\r\n\r\n".encode() + body)
            await writer.drain()
            if not keep_alive:
                return

    async def _request(
        self, head: bytes, reader: asyncio.StreamReader
    ) -> tuple[int | None, bool, bytes]:
        """The status to answer (None: none at all), whether the connection may stay open, and
        the body."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return 400, False, b""
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, sep, value = line.partition(":")
                if not sep:
                    return 400, False, b""
                headers[name.strip().lower()] = value.strip()
        wants_close = headers.get("connection", "").lower() == "close"
        http10 = version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive"
        keep_alive = not (wants_close or http10)
        where = target.split("?", 1)[0]
        if where == HEALTH_PATH and method in ("GET", "HEAD"):
            if self._stopping:
                return 503, False, b'{"stopping": true}'
            report = json.dumps(dict(self.health()), separators=(",", ":")).encode()
            return 200, keep_alive, report if method == "GET" else b""
        if where != self.path:
            return 404, False, b""
        if method != "POST":
            return 405, False, b""
        secret = headers.get(SECRET_HEADER, "").encode("latin-1")
        if not hmac.compare_digest(secret, self._secret):
            return 403, False, b""
        if self._stopping:
            return 503, False, b""
        if "transfer-encoding" in headers or not headers.get("content-length", "").isdigit():
            return 411, False, b""
        length = int(headers["content-length"])
        if length > self.max_body:
            return 413, False, b""
        try:
            async with asyncio.timeout(self.client_timeout):
                body = await reader.readexactly(length)
        except TimeoutError:
            self.timed_out += 1
            raise
        try:
            raw = json.loads(body)
        except ValueError:
            return 400, False, b""
        if not isinstance(raw, dict):
            return 400, False, b""
        self.inbox.offer(raw)
        update_id = raw.get("update_id")
        if isinstance(update_id, int) and self.inbox.holds(update_id):
            task = asyncio.current_task()
            assert task is not None
            self._waiting.add(task)
            try:
                handled = await self.inbox.outcome(update_id, self.answer_within)
                if handled is None:
                    self.answered_early += 1
                elif not handled:  # a stop handed it back: 200 only once it is stored
                    await self._finished.wait()
                    if not self._stored:
                        return None, False, b""
            finally:
                self._waiting.discard(task)
        return 200, keep_alive, b""


_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    503: "Service Unavailable",
}
_QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")


def _describe_error(exc: Exception) -> str:
    """The exception's type and message with any quoted value that is not a name blanked out:
    PTB's messages name the missing field, but a message may also quote what a user wrote."""

    def blank(match: re.Match[str]) -> str:
        value = match.group(1) if match.group(1) is not None else match.group(2)
        return match.group(0) if value.isidentifier() else "'…'"

    return f"{type(exc).__name__}: {_QUOTED.sub(blank, str(exc))[:200]}"
