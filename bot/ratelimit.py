"""Rate limiting in two lanes: people waiting for a reply, and broadcasts that nobody waits for.

PTB's AIORateLimiter puts every request that names a chat into one 30/s bucket, so on a busy bot a
tap on a button queues behind every other reply and behind the weekly tips. Here:

* the **user lane** (the default) is not paced across chats: a reply goes out at once, except that
  a group or channel keeps Telegram's 20 messages a minute;
* the **broadcast lane** (``rate_limit_args={"lane": "broadcast"}``, used by the tips dispatcher
  and admin broadcasts) is paced by its own limiter at BROADCAST_RATE and never takes from the
  user lane;
* the broadcast lane also leaves room for the replies: the messages both lanes send in any one
  second stay within Telegram's bot-wide limit (``bot_wide_rate``, about 30), replies first, so
  a busy minute of replies slows the broadcast down instead of getting it a 429; and at most half
  a second's worth of broadcast requests is in flight, so a stall cannot release a burst;
* answerCallbackQuery and answerInlineQuery are never held back: the user's spinner is waiting;
* a 429 is always honoured: the request is retried after ``retry_after`` (a bounded number of
  times), and meanwhile nothing else is sent to that chat; a 429 in the broadcast lane also pauses
  the whole broadcast lane, as the limit it hit may be the bot-wide one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

__all__ = ["BROADCAST", "LaneRateLimiter", "retry_delay"]

log = logging.getLogger(__name__)

BROADCAST = "broadcast"
UNPACED = frozenset({"answerCallbackQuery", "answerInlineQuery"})
# Requests that put a new message in a chat: what Telegram's bot-wide limit counts.
_NEW_MESSAGES = ("send", "copyMessage", "forwardMessage")
# Group limiters kept at most; idle ones (full capacity, so no state lost) are dropped beyond it.
MAX_GROUP_LIMITERS = 512

Result = bool | dict[str, Any] | list[dict[str, Any]]


class LaneRateLimiter(BaseRateLimiter[dict[str, Any]]):
    """A `BaseRateLimiter` that routes each request by ``rate_limit_args["lane"]``.

    ``sleep`` and ``clock`` are injectable so tests can check the waiting without waiting.
    """

    def __init__(
        self,
        *,
        broadcast_rate: float,
        bot_wide_rate: int = 30,
        group_max_rate: float = 20,
        group_time_period: float = 60,
        max_retries: int = 3,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.broadcast_rate = broadcast_rate
        # One at a time every 1/rate s, no burst: a burst on top of replies trips Telegram's
        # bot-wide 30/s even when the average is below it.
        self._broadcast = AsyncLimiter(1, 1 / broadcast_rate)
        # Broadcast requests in flight at once: half a second's worth. Pacing sets when a request
        # leaves, not when it arrives; if Telegram (or the network) stalls, what is in flight
        # arrives together, so the bound keeps such a bunch well under the bot-wide burst.
        self._broadcast_slots = asyncio.Semaphore(max(1, math.ceil(broadcast_rate / 2)))
        self._bot_wide_rate = bot_wide_rate
        self._sent: deque[float] = deque()  # when each message of the last second went out
        self._group_max_rate = group_max_rate
        self._group_time_period = group_time_period
        self._groups: dict[int | str, AsyncLimiter] = {}
        self._max_retries = max_retries
        self._sleep = sleep
        self._clock = clock
        # Monotonic times before which nothing may be sent: per chat, and for the broadcast lane.
        self._chat_pause: dict[int | str, float] = {}
        self._broadcast_pause = 0.0

    async def initialize(self) -> None:
        """Nothing to set up; the limiters are created as chats appear."""

    async def shutdown(self) -> None:
        """Nothing to release."""

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
        broadcast = (rate_limit_args or {}).get("lane") == BROADCAST
        chat = _chat_key(data.get("chat_id"))
        attempt = 0
        while True:
            try:
                if endpoint in UNPACED:
                    return await callback(*args, **kwargs)
                slot = self._broadcast_slots if broadcast else contextlib.nullcontext()
                async with slot:
                    await self._wait_pauses(chat, broadcast)
                    async with self._paced(chat, broadcast):
                        if _is_new_message(endpoint):
                            if broadcast:
                                await self._wait_bot_wide_room()
                            self._count_sent()
                        return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if attempt == self._max_retries:
                    log.warning("%s: still flood-limited after %d retries", endpoint, attempt)
                    raise
                attempt += 1
                delay = retry_delay(exc).total_seconds()
                log.info("%s: flood-limited, retrying in %.1fs", endpoint, delay)
                until = self._now() + delay
                if chat is not None:
                    self._chat_pause[chat] = max(self._chat_pause.get(chat, 0.0), until)
                if broadcast:
                    self._broadcast_pause = max(self._broadcast_pause, until)
                await self._sleep(delay)

    async def _wait_pauses(self, chat: int | str | None, broadcast: bool) -> None:
        """Hold the request while its chat (or its lane) is paused after a 429."""
        while True:
            until = self._broadcast_pause if broadcast else 0.0
            if chat is not None:
                chat_until = self._chat_pause.get(chat)
                if chat_until is not None:
                    if chat_until <= self._now():
                        del self._chat_pause[chat]
                    else:
                        until = max(until, chat_until)
            wait = until - self._now()
            if wait <= 0:
                return
            await self._sleep(wait)

    def _recent_sends(self) -> int:
        """Messages sent in the last second (both lanes)."""
        cutoff = self._now() - 1.0
        while self._sent and self._sent[0] <= cutoff:
            self._sent.popleft()
        return len(self._sent)

    def _count_sent(self) -> None:
        self._recent_sends()  # drops the old ones: the window never holds more than a second
        self._sent.append(self._now())

    async def _wait_bot_wide_room(self) -> None:
        """Hold a broadcast while the last second's messages already reach the bot-wide limit."""
        while self._recent_sends() >= self._bot_wide_rate:
            await self._sleep(self._sent[0] + 1.0 - self._now())

    def _paced(
        self, chat: int | str | None, broadcast: bool
    ) -> contextlib.AbstractAsyncContextManager[Any]:
        group = self._group(chat) if _is_group(chat) else None
        if broadcast and group is not None:
            return _both(self._broadcast, group)
        if broadcast:
            return self._broadcast
        return group if group is not None else contextlib.nullcontext()

    def _group(self, chat: int | str | None) -> AsyncLimiter | None:
        """The per-group limiter, shared by both lanes: Telegram counts per chat, not per lane."""
        if chat is None or not self._group_max_rate:
            return None
        limiter = self._groups.get(chat)
        if limiter is None:
            if len(self._groups) >= MAX_GROUP_LIMITERS:
                for key, idle in list(self._groups.items()):
                    if idle.has_capacity(idle.max_rate):
                        del self._groups[key]
            limiter = self._groups[chat] = AsyncLimiter(
                self._group_max_rate, self._group_time_period
            )
        return limiter


@contextlib.asynccontextmanager
async def _both(first: AsyncLimiter, second: AsyncLimiter) -> Any:
    async with first, second:
        yield


def retry_delay(exc: RetryAfter) -> timedelta:
    """Telegram's retry_after as a timedelta.

    PTB 22 keeps it as one but its public attribute gives int seconds with a deprecation warning
    (the type changes in a future major version), so the stored value is read.
    """
    return exc._retry_after


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
