"""Flood control as a scheduler: every send waits in its chat's queue, never in a handler.

Telegram allows a bot about 30 new messages a second in all, about one a second in one private
chat (a short burst is tolerated) and 20 a minute in one group. PTB hands every request to
`BaseRateLimiter.process_request` and whoever made the request awaits it, so *where* a request
waits decides who is held up. Here:

* **Handlers never wait for a send.** `bot.ui.show` / `bot.ui.answer` (and the error handler's
  apology) hand their requests to `bot.outbox.Outbox`, which runs each in its own task and accounts
  for its outcome; the handler returns at once and its update slot (one of CONCURRENT_UPDATES) is
  free. This was chosen over a custom update processor that stops counting an update while it
  waits on a send: that would still keep every waiting update (and the handler's locals) alive,
  would need the slot handed back and re-taken around each await, and the handler would still not
  be done for as long as the chat is flooded. Fire-and-forget with an owner that counts, logs and
  apologises keeps handlers as they were (they call `show`/`answer`) and the limiter in one place.
* **One queue per chat** (FIFO, so a chat's messages arrive in order) with that chat's budget:
  private chats a token bucket (``private_rate`` a second, ``private_burst`` at once) for new
  messages — 0.9/s, a little under Telegram's 1/s: at exactly its rate, jitter on the way makes
  two sends arrive closer than Telegram counts, and the 429 costs a whole second; groups and channels at most ``group_max_rate`` requests (new messages and edits) in any
  rolling ``group_time_period`` (plus GROUP_MARGIN) — a true rolling window, so never more than
  20 in any minute.
* **The bot-wide budget** (``bot_wide_rate`` new messages in any one second) is handed out by
  priority: replies in private chats first, then groups, then broadcasts. Callback and inline
  query answers are not queued at all (Telegram has no flood limit on them and the user's spinner
  is waiting), so under overload the bot degrades in that order: answers, private replies,
  groups, broadcasts.
* **A 429 delays only that chat's queue**, for Telegram's ``retry_after``; the request is then
  retried. Nothing else waits for it.
* **Nothing is dropped silently.** A reply has a deadline (``reply_deadline``, ``group_deadline``);
  one that cannot go out by then — refused at once when the chat's queue already reaches past it,
  or found late at the head of the queue — raises `Undeliverable`, is logged (at most one line per
  chat per DROP_LOG_SECONDS, with the count) and counted in ``dropped``. A group that floods the
  bot thus gets a slower bot in that group only, and the rest of its requests are shed. A private
  reply's deadline (a minute) outlasts a 30 s retry_after: a person flood-limited once still gets
  the answer they asked for, late, and a stop meanwhile hands it back (bot.intake) for the next
  start to send.
* **The broadcast lane** (``rate_limit_args={"lane": "broadcast"}``: tips and admin broadcasts)
  never waits long on a chat: a chat that is paused, or whose replies or budget would hold the
  message more than BROADCAST_MAX_WAIT, raises `RetryAfter` and the dispatcher reschedules that
  message; replies already queued for that person go first. It is
  paced at ``broadcast_rate`` without bursts, at most half a second's worth in flight, and takes
  only what replies leave of the bot-wide budget. A 429 there is not retried (the dispatcher
  reschedules it); 429s from two different chats within a second look like the bot-wide limit and
  pause the lane for at most a second.

``sleep`` and ``clock`` are injectable so tests can check the waiting without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter

from bot.store import RuntimeStore, StoreError
from bot.workarounds import retry_delay

__all__ = ["BROADCAST", "ClusterBudget", "LaneRateLimiter", "Undeliverable", "retry_delay"]

log = logging.getLogger(__name__)

BROADCAST = "broadcast"
UNPACED = frozenset({"answerCallbackQuery", "answerInlineQuery"})
# Requests that put a new message in a chat: what Telegram's bot-wide and per-chat limits count.
_NEW_MESSAGES = ("send", "copyMessage", "forwardMessage")
# Requests that change what a chat shows: queued in that chat (reads such as getChatMember are not).
_CHAT_WRITES = ("send", "copy", "forward", "edit", "delete", "pin", "unpin", "stop")
# Priorities of the bot-wide budget, most urgent first.
PRIVATE, GROUP, BROADCAST_PRIORITY = 0, 1, 2
# The group window is this much longer than Telegram's (a fraction of the period).
GROUP_MARGIN = 0.02
# A broadcast message waits at most this long for its chat; else it is rescheduled.
BROADCAST_MAX_WAIT = 1.0
# Dropped replies are logged at most once per chat in this time (with how many were dropped).
DROP_LOG_SECONDS = 10.0
# Chat states kept before idle ones (nothing queued, budget refilled) are dropped.
MAX_IDLE_CHATS = 4096

Result = bool | dict[str, Any] | list[dict[str, Any]]


class Undeliverable(TelegramError):
    """The scheduler gave up on a send without sending it (it could not go out in time).

    Already logged and counted by the limiter; whoever sent it must not answer it with another
    send into the same chat (an apology would join the same flood).
    """


@dataclass
class _Chat:
    """One chat's queue and budget."""

    group: bool
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pause_until: float = 0.0  # after a 429: nothing goes to this chat before then
    tokens: float = 0.0  # private chats: the token bucket
    updated: float = 0.0
    window: deque[float] = field(default_factory=deque)  # groups: requests in the last period
    queued: int = 0  # requests waiting in or holding this chat's queue
    queued_counted: int = 0  # of those, how many will take from the chat's budget
    dropped: int = 0  # not yet logged
    logged_at: float = -math.inf

    def idle(self, now: float, period: float, refilled: float) -> bool:
        """Nothing queued, no pause, and nothing in the budget left to remember."""
        if self.queued or self.pause_until > now or self.dropped:
            return False
        if self.group:
            return not self.window or self.window[-1] <= now - period
        return self.updated <= now - refilled


class _Waiter:
    """One request waiting for room in the bot-wide second; `wake` is set when it is its turn."""

    __slots__ = ("wake",)

    def __init__(self) -> None:
        self.wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class ClusterBudget:
    """Telegram's bot-wide budget shared by every process on one database (PostgreSQL).

    Time is cut into slots of SLOT_SECONDS; all processes together may send `rate * SLOT_SECONDS`
    messages in a slot, counted in the database (`Store.take_send_tokens`, one short transaction
    per message). Any stretch of T seconds meets at most T / SLOT_SECONDS + 2 slots, so the
    cluster sends at most 30·T + 12 messages in it: inside Telegram's 30 a second with a burst of
    30, with room for the processes' clocks (wall time) to differ by a few hundred milliseconds.
    Each process still keeps its own per-second count too. If the database cannot be asked, a
    process sends one message a slot (5 a second) until it can.
    """

    SLOT_SECONDS = 0.2

    def __init__(
        self,
        store: RuntimeStore,
        rate: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.per_slot = max(1, round(rate * self.SLOT_SECONDS))
        self._clock = clock
        self._fallback_slot = -1

    async def take(self) -> float:
        """One message's worth: 0 if granted, else how long until the next slot."""
        now = self._clock()
        slot = int(now / self.SLOT_SECONDS)
        try:
            granted = await self._store.take_send_tokens(slot, 1, limit=self.per_slot)
        except StoreError as exc:
            log.warning("send budget not shared this slot (database error): %s", exc)
            granted = int(self._fallback_slot != slot)
            self._fallback_slot = slot
        if granted:
            return 0.0
        return max(0.001, (slot + 1) * self.SLOT_SECONDS - now)


class _BotWide:
    """At most `rate` new messages in any one second, handed out by priority, FIFO within one;
    with a `cluster` budget, also within what all processes together may send."""

    def __init__(
        self,
        rate: int,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        cluster: ClusterBudget | None = None,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._cluster = cluster
        self._sent: deque[float] = deque()
        self._queues: tuple[deque[_Waiter], ...] = (deque(), deque(), deque())

    def _room_at(self, now: float) -> float:
        while self._sent and self._sent[0] <= now - 1.0:
            self._sent.popleft()
        if len(self._sent) < self.rate:
            return now
        return self._sent[len(self._sent) - self.rate] + 1.0

    def _head(self) -> _Waiter | None:
        for queue in self._queues:
            if queue:
                return queue[0]
        return None

    async def acquire(self, priority: int, deadline: float | None) -> None:
        """Wait for room in the bot-wide second; `Undeliverable` once `deadline` has passed.

        Only the first waiter of the most urgent priority watches the clock; the others sleep
        until it leaves. A more urgent arrival becomes the head at once, and the former head,
        when it wakes, finds it is no longer first and waits for its turn again.
        """
        now = self._clock()
        if self._cluster is None and self._head() is None and self._room_at(now) <= now:
            self._sent.append(now)
            return
        waiter = _Waiter()
        queue = self._queues[priority]
        queue.append(waiter)
        try:
            while True:
                if self._head() is not waiter:
                    if waiter.wake.done():
                        waiter.wake = asyncio.get_running_loop().create_future()
                    await waiter.wake
                    continue
                now = self._clock()
                if deadline is not None and now > deadline:
                    raise Undeliverable("not sent in time: the bot-wide limit")
                room = self._room_at(now)
                if room <= now and self._cluster is not None:
                    wait = await self._cluster.take()
                    if wait:
                        room = now + wait
                if room <= now:
                    self._sent.append(now)
                    return
                await self._sleep((room if deadline is None else min(room, deadline)) - now)
        finally:
            was_head = self._head() is waiter
            queue.remove(waiter)
            head = self._head()
            if was_head and head is not None and not head.wake.done():
                head.wake.set_result(None)


class LaneRateLimiter(BaseRateLimiter[dict[str, Any]]):
    """The scheduler described in the module docstring; one per bot."""

    def __init__(
        self,
        *,
        broadcast_rate: float,
        bot_wide_rate: int = 30,
        private_rate: float = 0.9,
        private_burst: int = 3,
        group_max_rate: int = 20,
        group_time_period: float = 60,
        reply_deadline: float = 60,
        group_deadline: float = 60,
        max_retries: int = 3,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] | None = None,
        cluster: ClusterBudget | None = None,
    ) -> None:
        self.broadcast_rate = broadcast_rate
        self._sleep = sleep
        self._clock = clock
        # One at a time every 1/rate s, no burst: a burst on top of replies trips Telegram's
        # bot-wide 30/s even when the average is below it.
        self._broadcast_next = -math.inf  # when the next broadcast may leave
        # Broadcast requests in flight at once: half a second's worth. Pacing sets when a request
        # leaves, not when it arrives; if Telegram (or the network) stalls, what is in flight
        # arrives together, so the bound keeps such a bunch well under the bot-wide burst.
        self._broadcast_slots = asyncio.Semaphore(max(1, math.ceil(broadcast_rate / 2)))
        self._broadcast_pause = 0.0
        self._broadcast_floods: deque[tuple[float, int | str]] = deque()
        self._bot_wide = _BotWide(bot_wide_rate, self._now, sleep, cluster)
        self._private_rate = private_rate
        self._private_burst = private_burst
        self._group_max_rate = group_max_rate
        # Telegram counts when a message arrives, we when it leaves: a small margin keeps jitter
        # on the way from putting 21 into one of Telegram's minutes.
        self._group_time_period = group_time_period * (1 + GROUP_MARGIN)
        self._reply_deadline = reply_deadline
        self._group_deadline = group_deadline
        self._max_retries = max_retries
        self._chats: dict[int | str, _Chat] = {}
        self._sweep_at = MAX_IDLE_CHATS
        #: Replies given up on (never sent), and 429s met, since start.
        self.dropped = 0
        self.floods = 0

    async def initialize(self) -> None:
        """Nothing to set up; chat queues are created as chats appear."""

    async def shutdown(self) -> None:
        """Nothing to release; the outbox cancels what still waits (bot.outbox.Outbox.close)."""

    def _now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: dict[str, Any] | None,
    ) -> Result:
        if endpoint in UNPACED:
            return await callback(*args, **kwargs)
        chat = _chat_key(data.get("chat_id"))
        if chat is None or not endpoint.startswith(_CHAT_WRITES):  # getChatMember & co.
            return await self._unqueued(callback, args, kwargs, endpoint)
        if (rate_limit_args or {}).get("lane") == BROADCAST:
            return await self._broadcast_request(callback, args, kwargs, endpoint, chat)
        return await self._queued(callback, args, kwargs, endpoint, chat)

    # ------------------------------------------------------------------------------------------
    # Chat budgets

    def _chat(self, key: int | str) -> _Chat:
        state = self._chats.get(key)
        if state is None:
            now = self._now()
            if len(self._chats) >= self._sweep_at:
                refilled = self._private_burst / self._private_rate
                for other, old in list(self._chats.items()):
                    if old.idle(now, self._group_time_period, refilled):
                        del self._chats[other]
                # busy chats stay; sweep again only when as many more have come
                self._sweep_at = max(MAX_IDLE_CHATS, 2 * len(self._chats))
            state = self._chats[key] = _Chat(
                group=_is_group(key), tokens=self._private_burst, updated=now
            )
        return state

    def _ready_at(self, chat: _Chat, now: float, counted: bool, ahead: int = 0) -> float:
        """When the next request (with `ahead` counted ones before it) may go to this chat."""
        ready = max(now, chat.pause_until)
        if not counted:
            return ready
        if chat.group:
            window, limit, period = chat.window, self._group_max_rate, self._group_time_period
            while window and window[0] <= now - period:
                window.popleft()
            index = len(window) + ahead - limit
            if index < 0:
                return ready
            if index < len(window):
                return max(ready, window[index] + period)
            return max(ready, now + (index // limit + 1) * period)  # beyond the window: estimate
        tokens = min(self._private_burst, chat.tokens + (now - chat.updated) * self._private_rate)
        missing = ahead + 1 - tokens
        return ready if missing <= 0 else max(ready, now + missing / self._private_rate)

    def _take(self, chat: _Chat, now: float) -> None:
        if chat.group:
            chat.window.append(now)
            return
        chat.tokens = (
            min(self._private_burst, chat.tokens + (now - chat.updated) * self._private_rate) - 1
        )
        chat.updated = now

    def _drop(self, key: int | str, chat: _Chat, endpoint: str, why: str) -> Undeliverable:
        self.dropped += 1
        chat.dropped += 1
        now = self._now()
        if now - chat.logged_at >= DROP_LOG_SECONDS:
            log.warning(
                "%s to chat %s not sent: %s (%d dropped in this chat since the last such line)",
                endpoint, key, why, chat.dropped,
            )  # fmt: skip
            chat.logged_at, chat.dropped = now, 0
        return Undeliverable(f"not sent in time: {why}")

    def _paused_for_flood(
        self, key: int | str, chat: _Chat, endpoint: str, exc: RetryAfter
    ) -> float:
        self.floods += 1
        delay = retry_delay(exc).total_seconds()
        chat.pause_until = max(chat.pause_until, self._now() + delay)
        log.info("%s to chat %s: flood-limited for %.1fs", endpoint, key, delay)
        return delay

    # ------------------------------------------------------------------------------------------
    # The three kinds of request

    async def _queued(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        key: int | str,
    ) -> Result:
        """A reply: in its chat's queue, within the chat's and the bot-wide budget, by a deadline."""
        chat = self._chat(key)
        new = _is_new_message(endpoint)
        counted = new or (chat.group and endpoint.startswith("edit"))
        now = self._now()
        deadline = now + (self._group_deadline if chat.group else self._reply_deadline)
        if counted and self._ready_at(chat, now, True, chat.queued_counted) > deadline:
            raise self._drop(key, chat, endpoint, "the chat's queue is full")
        chat.queued += 1
        chat.queued_counted += counted
        try:
            async with chat.lock:
                while True:
                    now = self._now()
                    ready = self._ready_at(chat, now, counted)
                    if ready > deadline:
                        raise self._drop(key, chat, endpoint, "flood-limited past its deadline")
                    if ready > now:
                        await self._sleep(ready - now)
                        continue
                    if new:
                        priority = GROUP if chat.group else PRIVATE
                        try:
                            await self._bot_wide.acquire(priority, deadline)
                        except Undeliverable:
                            raise self._drop(key, chat, endpoint, "the bot-wide limit") from None
                    if counted:
                        self._take(chat, self._now())
                        chat.queued_counted -= 1
                        counted = False  # a retry after a 429 does not take again
                    try:
                        return await callback(*args, **kwargs)
                    except RetryAfter as exc:
                        self._paused_for_flood(key, chat, endpoint, exc)
        finally:
            chat.queued -= 1
            if counted:
                chat.queued_counted -= 1

    async def _broadcast_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        key: int | str,
    ) -> Result:
        """A broadcast: paced, last in the bot-wide budget, and never waiting long on its chat."""
        counted = _is_new_message(endpoint)
        self._reschedule_if_blocked(key, counted)
        async with self._broadcast_slots:
            while True:  # paced, and held while the lane is paused (also if paused meanwhile)
                while (pause := self._broadcast_pause - self._now()) > 0:
                    await self._sleep(pause)
                await self._broadcast_turn()
                if self._broadcast_pause <= self._now():
                    break
            if counted:
                await self._bot_wide.acquire(BROADCAST_PRIORITY, None)
            chat = self._chat(key)
            if chat.lock.locked():  # replies queued for this person go first, if they go soon
                try:
                    await asyncio.wait_for(chat.lock.acquire(), BROADCAST_MAX_WAIT)
                except TimeoutError:
                    raise RetryAfter(timedelta(seconds=BROADCAST_MAX_WAIT)) from None
            else:
                await chat.lock.acquire()
            try:
                while (wait := self._reschedule_if_blocked(key, counted)) > 0:
                    await self._sleep(wait)
                if counted:
                    self._take(chat, self._now())
                try:
                    return await callback(*args, **kwargs)
                except RetryAfter as exc:
                    self._paused_for_flood(key, chat, endpoint, exc)
                    self._note_broadcast_flood(key, exc)
                    raise
            finally:
                chat.lock.release()

    async def _broadcast_turn(self) -> None:
        """Evenly spaced, one every 1/broadcast_rate s: each caller books the next free moment."""
        now = self._now()
        at = max(now, self._broadcast_next)
        self._broadcast_next = at + 1 / self.broadcast_rate
        if at > now:
            await self._sleep(at - now)

    def _reschedule_if_blocked(self, key: int | str, counted: bool) -> float:
        """How long a broadcast must wait for its chat: RetryAfter if over BROADCAST_MAX_WAIT."""
        chat = self._chats.get(key)
        if chat is None:
            return 0.0
        now = self._now()
        wait = self._ready_at(chat, now, counted) - now
        if wait > BROADCAST_MAX_WAIT:
            raise RetryAfter(timedelta(seconds=wait))
        return wait

    def _note_broadcast_flood(self, key: int | str, exc: RetryAfter) -> None:
        """429s from two chats within a second: likely the bot-wide limit; pause the lane briefly."""
        now = self._now()
        floods = self._broadcast_floods
        floods.append((now, key))
        while floods and floods[0][0] <= now - 1.0:
            floods.popleft()
        if len({chat for _, chat in floods}) >= 2:
            pause = min(retry_delay(exc).total_seconds(), 1.0)
            self._broadcast_pause = max(self._broadcast_pause, now + pause)

    async def _unqueued(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
    ) -> Result:
        """Requests that post nothing in a chat (commands, getMe, getChatMember…): sent at once,
        a 429 retried a few times."""
        attempt = 0
        while True:
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if attempt == self._max_retries:
                    log.warning("%s: still flood-limited after %d retries", endpoint, attempt)
                    raise
                attempt += 1
                self.floods += 1
                delay = retry_delay(exc).total_seconds()
                log.info("%s: flood-limited, retrying in %.1fs", endpoint, delay)
                await self._sleep(delay)


def _is_new_message(endpoint: str) -> bool:
    return endpoint.startswith(_NEW_MESSAGES) and endpoint != "sendChatAction"


def _chat_key(chat_id: object) -> int | str | None:
    """Chat ids arrive as int or str ("@channel", "-100…"); one key per chat either way."""
    if chat_id is None:
        return None
    if isinstance(chat_id, int):
        return chat_id
    text = str(chat_id)
    try:
        return int(text)
    except ValueError:
        return text


def _is_group(chat: int | str | None) -> bool:
    """Groups and channels have negative ids (or an @username); private chats positive ones."""
    return isinstance(chat, str) or (isinstance(chat, int) and chat < 0)
