"""The scheduler (bot.ratelimit): per-chat queues and budgets, the bot-wide budget by priority,
429s that delay only their chat, deadlines instead of silent drops, and a broadcast lane that
never waits on a chat.

Time is virtual: the limiter's `sleep` and `clock` are injected, and `VirtualTime.run` moves the
clock to the next sleeper only when every task is blocked. No test here waits for real.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from conftest import CONTENT, BotHarness, Clock
from telegram.error import RetryAfter

from bot.config import Settings
from bot.fakeapi import FakeBotAPI, FloodRules
from bot.ratelimit import LaneRateLimiter, Undeliverable
from bot.workarounds import retry_delay

BROADCAST = {"lane": "broadcast"}


class VirtualTime:
    """A discrete-event clock: sleepers wake in order of their wake-up time, none waits for real."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), next(self._seq), future))
        await future

    async def run(self, *tasks: asyncio.Future[Any]) -> None:
        """Run until `tasks` are done, moving time on whenever everything else is blocked."""
        while True:
            await settle()
            if all(task.done() for task in tasks):
                return
            while self._sleepers and self._sleepers[0][2].cancelled():
                heapq.heappop(self._sleepers)
            if not self._sleepers:
                raise AssertionError("deadlock: nothing sleeps and the tasks are not done")
            wake, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, wake)
            future.set_result(None)


async def settle() -> None:
    """Let every task run until it waits on something.

    Quiescent when, after a turn of the loop, nothing else is ready to run (CPython's ready
    queue is empty); capped so that a busy loop fails the test instead of hanging it.
    """
    loop = asyncio.get_running_loop()
    for _ in range(100_000):
        await asyncio.sleep(0)
        if not loop._ready:  # type: ignore[attr-defined]
            return
    raise AssertionError("the tasks never settle")


class Recorder:
    """Stands in for PTB's `_do_post`: records what was sent (and when), 429s when told to."""

    def __init__(self, time: VirtualTime | None = None) -> None:
        self.time = time
        self.sent: list[tuple[str, Any]] = []
        self.at: list[tuple[float, Any]] = []
        self.floods: dict[Any, list[float]] = {}  # chat → retry_after of the next 429s

    async def __call__(self, endpoint: str, data: dict[str, Any]) -> bool:
        chat = data.get("chat_id")
        if self.floods.get(chat):
            raise RetryAfter(timedelta(seconds=self.floods[chat].pop(0)))
        self.sent.append((endpoint, chat))
        self.at.append((self.time.now if self.time else 0.0, chat))
        return True


def limiter_on(time: VirtualTime, **options: Any) -> LaneRateLimiter:
    options.setdefault("broadcast_rate", 30)
    return LaneRateLimiter(sleep=time.sleep, clock=time.clock, **options)


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


async def test_replies_are_not_queued_behind_broadcasts() -> None:
    time = VirtualTime()
    limiter, post = limiter_on(time, broadcast_rate=1), Recorder(time)
    broadcasts = [request(limiter, post, "sendMessage", 100 + i, BROADCAST) for i in range(3)]
    reply = request(limiter, post, "editMessageText", 7)
    answer = request(limiter, post, "answerCallbackQuery", None)
    new = request(limiter, post, "sendMessage", 8)
    await time.run(reply, answer, new)
    assert time.now == 0.0  # nothing waited
    assert sum(1 for e, _ in post.sent if e == "sendMessage") == 2  # one tip a second: one + reply
    await time.run(*broadcasts)
    assert time.now == pytest.approx(2.0)


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


async def test_a_group_never_gets_more_than_20_in_any_rolling_minute() -> None:
    """A leaky bucket of 20 a minute (the limiter before) lets 20 through, then one every 3 s:
    40 within the first minute. A rolling window lets through 20, then waits for the minute."""
    time = VirtualTime()
    limiter, post = limiter_on(time, group_deadline=1000), Recorder(time)
    group = [request(limiter, post, "sendMessage", -1001) for _ in range(45)]
    edits = [request(limiter, post, "editMessageText", -1001) for _ in range(5)]  # count too
    private = request(limiter, post, "sendMessage", 5)
    await time.run(private)
    assert time.now == 0.0  # other chats are not held up
    await time.run(*group, *edits)
    times = [t for t, chat in post.at if chat == -1001]
    assert len(times) == 50
    for start in times:
        assert sum(1 for t in times if start <= t < start + 60) <= 20
    assert times[20] >= 60 and times[40] >= 120


async def test_the_bot_wide_budget_goes_to_private_replies_then_groups_then_broadcasts() -> None:
    time = VirtualTime()
    limiter = limiter_on(time, bot_wide_rate=10, broadcast_rate=1000)
    post = Recorder(time)
    first = [request(limiter, post, "sendMessage", i) for i in range(10)]  # the second is full
    await time.run(*first)
    tasks = [request(limiter, post, "sendMessage", 1000 + i, BROADCAST) for i in range(10)]
    tasks += [request(limiter, post, "sendMessage", -1 - i) for i in range(10)]
    tasks += [request(limiter, post, "sendMessage", 10 + i) for i in range(10)]
    await time.run(*tasks)
    order = ["private" if c > 0 and c < 1000 else "group" if c < 0 else "tip" for _, c in post.at]
    assert order[10:] == ["private"] * 10 + ["group"] * 10 + ["tip"] * 10
    for start, _ in post.at:  # never more than 10 in one second
        assert sum(1 for t, _ in post.at if start <= t < start + 1.0) <= 10


async def test_a_429_delays_only_that_chats_queue_and_keeps_its_order() -> None:
    time = VirtualTime()
    limiter, post = limiter_on(time), Recorder(time)
    post.floods[1] = [5.0]
    flooded = request(limiter, post, "sendMessage", 1)
    await settle()
    same_chat = request(limiter, post, "editMessageText", 1)
    others = [
        request(limiter, post, "sendMessage", 2),
        request(limiter, post, "answerCallbackQuery", None),
    ]
    await time.run(*others)
    assert post.at == [(0.0, 2), (0.0, None)]  # other chats and answers go on at once
    await time.run(flooded, same_chat)
    assert post.at[2:] == [(5.0, 1), (5.0, 1)]
    assert post.sent[2:] == [("sendMessage", 1), ("editMessageText", 1)]  # in order
    assert limiter.floods == 1


async def test_a_reply_that_cannot_go_out_in_time_is_dropped_and_counted() -> None:
    time = VirtualTime()
    limiter, post = limiter_on(time, reply_deadline=10), Recorder(time)
    sends = [request(limiter, post, "sendMessage", 1) for _ in range(20)]
    await time.run(*sends)
    outcomes = [task.exception() for task in sends]
    # a burst of 3, then 0.9 a second for 10 s: 12 (or 13 at the edge); the rest refused at once
    assert 12 <= len(post.sent) <= 13
    assert all(isinstance(e, Undeliverable) for e in outcomes[len(post.sent) :])
    assert limiter.dropped == 20 - len(post.sent)
    # and a long 429 pause drops what waits behind it, instead of sending it late
    post.floods[2] = [60.0]
    late = [request(limiter, post, "sendMessage", 2) for _ in range(2)]
    await time.run(*late)
    assert all(isinstance(task.exception(), Undeliverable) for task in late)


async def test_broadcasts_never_wait_for_a_paused_chat() -> None:
    time = VirtualTime()
    limiter, post = limiter_on(time, broadcast_rate=1000), Recorder(time)
    post.floods[1] = [60.0]
    reply = request(limiter, post, "sendMessage", 1)  # a 429 in the user lane: chat 1 paused
    await settle()
    tip = request(limiter, post, "sendMessage", 1, BROADCAST)
    others = [request(limiter, post, "sendMessage", 2 + i, BROADCAST) for i in range(5)]
    await time.run(tip, *others)
    assert time.now < 1.0
    error = tip.exception()
    assert isinstance(error, RetryAfter) and retry_delay(error).total_seconds() == pytest.approx(60)
    assert sorted(c for _, c in post.at) == [2, 3, 4, 5, 6]
    reply.cancel()


async def test_a_429_in_the_broadcast_lane_is_handed_back_and_pauses_nobody_else() -> None:
    time = VirtualTime()
    limiter, post = limiter_on(time, broadcast_rate=1000), Recorder(time)
    post.floods[1] = [60.0]
    tips = [request(limiter, post, "sendMessage", 1 + i, BROADCAST) for i in range(10)]
    await time.run(*tips)
    assert isinstance(tips[0].exception(), RetryAfter)  # not retried: the dispatcher reschedules
    assert time.now < 0.1 and len(post.sent) == 9  # one chat's 429 did not slow the others
    # 429s from two chats within a second look like the bot-wide limit: the lane pauses ≤ 1 s
    post.floods[20], post.floods[21] = [30.0], [30.0]
    tips = [request(limiter, post, "sendMessage", 20 + i, BROADCAST) for i in range(5)]
    start = time.now
    await time.run(*tips)
    assert 1.0 <= time.now - start < 1.1
    assert sum(isinstance(t.exception(), RetryAfter) for t in tips) == 2


async def test_requests_about_no_chat_retry_a_bounded_number_of_times() -> None:
    time = VirtualTime()
    limiter, post = limiter_on(time, max_retries=2), Recorder(time)
    post.floods[None] = [5.0] * 10
    task = request(limiter, post, "setMyCommands", None)
    await time.run(task)
    assert isinstance(task.exception(), RetryAfter)
    assert time.now == 10.0 and len(post.floods[None]) == 7  # one try and two retries


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
