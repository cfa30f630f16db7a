"""The two-lane rate limiter (bot.ratelimit): replies are not queued behind broadcasts, every 429
is honoured, and answers to button taps are never held back.

Waiting is observed, not done: `sleep` is injected and blocks on an event the test controls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from conftest import CONTENT, BotHarness, Clock
from telegram.error import RetryAfter

from bot.config import Settings
from bot.fakeapi import FakeBotAPI, FloodRules
from bot.ratelimit import LaneRateLimiter

BROADCAST = {"lane": "broadcast"}


class Gate:
    """An injected `sleep` and clock: sleeping records the delay and waits for `open()`."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._opened = asyncio.Event()
        self._asleep = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._asleep.set()
        await self._opened.wait()
        self.now += seconds

    async def someone_sleeps(self) -> None:
        await self._asleep.wait()
        self._asleep.clear()

    def open(self) -> None:
        self._opened.set()


class Recorder:
    """Stands in for PTB's `_do_post`: records what was sent, fails with 429 when told to."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.floods: dict[Any, int] = {}

    async def __call__(self, endpoint: str, data: dict[str, Any]) -> bool:
        chat = data.get("chat_id")
        if self.floods.get(chat, 0):
            self.floods[chat] -= 1
            raise RetryAfter(5)
        self.sent.append((endpoint, chat))
        return True


def request(
    limiter: LaneRateLimiter,
    post: Recorder,
    endpoint: str,
    chat_id: int | str | None,
    lane: dict[str, str] | None = None,
) -> asyncio.Task[Any]:
    data: dict[str, Any] = {} if chat_id is None else {"chat_id": chat_id}
    return asyncio.create_task(
        limiter.process_request(post, (endpoint, data), {}, endpoint, data, lane)
    )


async def settle() -> None:
    """Let every task run until it waits on something."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_replies_are_not_queued_behind_broadcasts() -> None:
    limiter, post = LaneRateLimiter(broadcast_rate=1), Recorder()
    broadcasts = [request(limiter, post, "sendMessage", 100 + i, BROADCAST) for i in range(3)]
    reply = request(limiter, post, "editMessageText", 7)
    answer = request(limiter, post, "answerCallbackQuery", None)
    await asyncio.gather(reply, answer)
    await settle()
    assert ("editMessageText", 7) in post.sent and ("answerCallbackQuery", None) in post.sent
    assert sum(1 for e, _ in post.sent if e == "sendMessage") == 1  # one per second: the rest wait
    for task in broadcasts:
        task.cancel()
    await asyncio.gather(*broadcasts, return_exceptions=True)


async def test_the_broadcast_lane_keeps_its_rate_without_bursts() -> None:
    rate, count = 200, 41
    limiter, post = LaneRateLimiter(broadcast_rate=rate, bot_wide_rate=1000), Recorder()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(
        *(request(limiter, post, "sendMessage", i, BROADCAST) for i in range(count))
    )
    elapsed = loop.time() - started
    assert 0.9 * (count - 1) / rate <= elapsed < 3 * (count - 1) / rate  # evenly spaced
    assert len(post.sent) == count


async def test_groups_keep_their_limit_in_the_user_lane() -> None:
    limiter, post = LaneRateLimiter(broadcast_rate=30, group_max_rate=2), Recorder()
    group = [request(limiter, post, "sendMessage", -1001, None) for _ in range(3)]
    private = request(limiter, post, "sendMessage", 5)
    await private
    await settle()
    assert post.sent.count(("sendMessage", -1001)) == 2
    by_name = request(limiter, post, "sendMessage", "@channel")
    await by_name
    for task in group:
        task.cancel()
    await asyncio.gather(*group, return_exceptions=True)


class Timeline:
    """An injected clock that sleeping moves on at once: time passes only when someone waits."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, wake)


async def test_broadcasts_leave_the_bot_wide_limit_to_replies() -> None:
    time = Timeline()
    limiter = LaneRateLimiter(
        broadcast_rate=1000, bot_wide_rate=10, sleep=time.sleep, clock=time.clock
    )
    sent_at: list[tuple[float, str]] = []

    async def post(endpoint: str, data: dict[str, Any]) -> bool:
        sent_at.append((time.now, "broadcast" if data["chat_id"] >= 100 else "reply"))
        return True

    def send(chat_id: int, lane: dict[str, str] | None) -> asyncio.Task[Any]:
        data = {"chat_id": chat_id}
        return asyncio.create_task(
            limiter.process_request(post, ("sendMessage", data), {}, "sendMessage", data, lane)
        )

    for chat in range(7):  # seven replies go out at once, whatever the broadcast is doing
        await send(chat, None)
    await asyncio.gather(*(send(100 + i, BROADCAST) for i in range(20)))
    await send(50, None)  # and a reply is never held back, even with the second full
    assert sent_at[-1] == (time.now, "reply")

    assert len(sent_at) == 28
    assert [who for t, who in sent_at if t == 0.0].count("broadcast") == 3  # 10 - 7 replies
    for start, _ in sent_at:  # no second holds more than the limit, replies excepted
        window = [who for t, who in sent_at[:-1] if start <= t < start + 1.0]
        assert len(window) <= 10


async def test_half_a_second_of_broadcasts_at_most_is_in_flight() -> None:
    """If Telegram stalls, what is in flight arrives at once: the bound keeps that bunch small."""
    limiter = LaneRateLimiter(broadcast_rate=8, bot_wide_rate=1000)
    stalled = asyncio.Event()
    in_flight = 0
    arrived = asyncio.Event()

    async def post(endpoint: str, data: dict[str, Any]) -> bool:
        nonlocal in_flight
        in_flight += 1
        if in_flight == 4:
            arrived.set()
        await stalled.wait()
        return True

    sends = [
        asyncio.create_task(
            limiter.process_request(
                post, ("sendMessage", {"chat_id": i}), {}, "sendMessage", {"chat_id": i}, BROADCAST
            )
        )
        for i in range(8)
    ]
    await arrived.wait()
    await asyncio.sleep(0.3)  # two more pacing intervals: nobody else may leave meanwhile
    assert in_flight == 4
    reply = {"chat_id": 99}
    assert await limiter.process_request(
        lambda *_: asyncio.sleep(0, True), ("sendMessage", reply), {}, "sendMessage", reply, None
    )  # replies never wait for broadcast slots
    stalled.set()
    await asyncio.gather(*sends)
    assert in_flight == 8


async def test_a_429_is_retried_after_retry_after_and_pauses_only_that_chat() -> None:
    gate = Gate()
    limiter = LaneRateLimiter(broadcast_rate=30, sleep=gate.sleep, clock=gate.clock)
    post = Recorder()
    post.floods[1] = 1
    flooded = request(limiter, post, "sendMessage", 1)
    await gate.someone_sleeps()
    assert gate.sleeps == [5.0]
    same_chat = request(limiter, post, "editMessageText", 1)
    await gate.someone_sleeps()  # waits out the pause instead of provoking another 429
    await request(limiter, post, "sendMessage", 2)  # other chats carry on
    await request(limiter, post, "answerCallbackQuery", None)  # never held back
    assert post.sent == [("sendMessage", 2), ("answerCallbackQuery", None)]
    gate.open()
    await asyncio.gather(flooded, same_chat)
    assert {("sendMessage", 1), ("editMessageText", 1)} <= set(post.sent)


async def test_a_429_in_the_broadcast_lane_pauses_the_lane_not_the_replies() -> None:
    gate = Gate()
    limiter = LaneRateLimiter(broadcast_rate=30, sleep=gate.sleep, clock=gate.clock)
    post = Recorder()
    post.floods[1] = 1
    flooded = request(limiter, post, "sendMessage", 1, BROADCAST)
    await gate.someone_sleeps()
    other = request(limiter, post, "sendMessage", 2, BROADCAST)
    await gate.someone_sleeps()
    await request(limiter, post, "sendMessage", 3)  # a reply in the user lane
    assert post.sent == [("sendMessage", 3)]
    gate.open()
    await asyncio.gather(flooded, other)
    assert len(post.sent) == 3


async def test_retries_are_bounded() -> None:
    gate = Gate()
    gate.open()
    limiter = LaneRateLimiter(broadcast_rate=30, max_retries=2, sleep=gate.sleep, clock=gate.clock)
    post = Recorder()
    post.floods[1] = 10
    with pytest.raises(RetryAfter):
        await request(limiter, post, "sendMessage", 1, BROADCAST)
    assert gate.sleeps == [5.0, 5.0] and post.floods[1] == 7  # one try and two retries


async def test_broadcasts_through_the_flood_emulating_fake_never_flood(
    make_settings: Callable[..., Settings], clock: Clock
) -> None:
    """The real application and HTTP stack: a burst of broadcast-lane sends stays under the limit."""
    async with FakeBotAPI(flood=FloodRules()) as api:
        harness = BotHarness(api, make_settings(api, BROADCAST_RATE="25"), clock, CONTENT)
        await harness.start()
        try:
            assert harness.app is not None
            users = [api.private_user(f"U{i}") for i in range(40)]
            for user in users:
                user.user.has_started = True
            bot = harness.app.bot
            await asyncio.gather(
                *(bot.send_message(u.id, "টিপ", rate_limit_args=BROADCAST) for u in users)
            )
        finally:
            await harness.stop()
        assert api.flood_rejections == 0
        assert all(len(api.sent_to(u.id)) == 1 for u in users)
