"""The load generator: simulated people talking to a bot through the fake Bot API, timed.

It runs in the same process as the fake Bot API and never in the bot's: the bot under test is a
separate process that reaches the fake over HTTP on 127.0.0.1, exactly as it would reach Telegram.
An action is timed from the moment its update becomes available to getUpdates until the fake
receives the bot's reply (for a tap: the callback answer *and* the new screen).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.fakeapi import BotMessage, FakeBotAPI, UserDriver
from bot.fakeapi.models import ApiError

_SHOWN = frozenset({"message", "edit"})

PICTURE_SHARES = "img:"  # bot.callbacks.ShareMethodImage, ShareTipImage, ShareQuizImage


@dataclass
class _Pending:
    """One action waiting for the bot: done when answered (taps) and shown, or refused."""

    future: asyncio.Future[str]
    need_answer: bool
    answered: bool = False
    shown: bool = False


class BenchAPI(FakeBotAPI):
    """The fake Bot API, plus a per-chat signal when the bot's reply to an action is complete."""

    def __init__(self, **options: Any) -> None:
        super().__init__(track_processing=False, **options)
        self.pending: dict[int, _Pending] = {}
        self.screens: dict[int, BotMessage] = {}  # the newest message with buttons per chat
        self.flooded_chats: list[int] = []  # the chat of every 429, in order

    def _record_event(self, kind: str, chat_id: int, **fields: Any) -> None:
        super()._record_event(kind, chat_id, **fields)
        message = fields.get("message")
        if message is not None and message.buttons:
            self.screens[chat_id] = message
        pending = self.pending.get(chat_id)
        if pending is None:
            return
        if kind in _SHOWN:
            pending.shown = True
        elif kind == "callback_answer":
            pending.answered = True
            answer = fields["callback_answer"]
            if answer.text:  # a toast or alert is the reply when no screen follows
                pending.shown = True
        if pending.shown and (pending.answered or not pending.need_answer):
            self._finish(chat_id, "ok")

    def _record_call(self, method: str, params: dict[str, Any], error: ApiError | None) -> None:
        super()._record_call(method, params, error)
        if error is None:
            return
        if error.error_code == 429:
            self.flooded_chats.append(int(params.get("chat_id") or 0))
            return  # the bot is expected to retry
        chat_id = params.get("chat_id")
        if chat_id is None or int(chat_id) not in self.pending:
            return
        if "not modified" in error.description:  # the screen shown already; nothing to change
            self._finish(int(chat_id), "ok")
        else:
            self._finish(int(chat_id), f"error {error.error_code}: {error.description}")

    def _finish(self, chat_id: int, outcome: str) -> None:
        pending = self.pending.pop(chat_id)
        if not pending.future.done():
            pending.future.set_result(outcome)

    def expect(self, chat_id: int, *, tap: bool) -> asyncio.Future[str]:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.pending[chat_id] = _Pending(future, need_answer=tap)
        return future


@dataclass
class Results:
    """Latencies of completed actions, and what went wrong."""

    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    lost: int = 0  # no reply within the action timeout

    def add_error(self, outcome: str) -> None:
        self.errors[outcome] = self.errors.get(outcome, 0) + 1

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def summary(self, seconds: float) -> dict[str, float]:
        return {
            "replies": len(self.latencies),
            "replies_per_s": len(self.latencies) / seconds if seconds else 0.0,
            "p50_ms": self.percentile(50) * 1000,
            "p95_ms": self.percentile(95) * 1000,
            "p99_ms": self.percentile(99) * 1000,
            "mean_ms": statistics.fmean(self.latencies) * 1000 if self.latencies else 0.0,
            "lost": self.lost,
            "errors": sum(self.errors.values()),
        }


class Person:
    """One simulated user: types messages or taps a random inline button of the latest screen."""

    def __init__(
        self, api: BenchAPI, driver: UserDriver, rng: random.Random, patience: float = 10
    ) -> None:
        self.api = api
        self.patience = patience  # seconds to wait for a reply before counting it lost
        self.driver = driver
        self.rng = rng
        driver.user.has_started = True

    async def _act(self, kind: str, payload: dict[str, Any], results: Results) -> None:
        chat_id = self.driver.id
        done = self.api.expect(chat_id, tap=kind == "callback_query")
        started = time.perf_counter()
        self.api.enqueue_update(kind, payload)
        try:
            outcome = await asyncio.wait_for(done, self.patience)
        except TimeoutError:
            self.api.pending.pop(chat_id, None)
            results.lost += 1
            return
        if outcome == "ok":
            results.latencies.append(time.perf_counter() - started)
        else:
            results.add_error(outcome)

    async def say(self, text: str, results: Results) -> None:
        message = self.driver._text_message(self.driver.user, text)
        await self._act("message", message, results)

    async def tap(self, results: Results, data: str | None = None) -> None:
        """Press a random callback button of the newest screen (or one with this `data`, as a
        button of it); with no screen, or none with buttons, ask for the menu."""
        screen = self.api.screens.get(self.driver.id)
        # Picture shares ("img:…") are measured apart, by the full-bot-shares contender: a menu
        # tap here is what the floors' menu bots do too.
        buttons = (
            [
                b
                for row in screen.buttons
                for b in row
                if "callback_data" in b and not b["callback_data"].startswith(PICTURE_SHARES)
            ]
            if screen
            else []
        )
        if screen is None or not (buttons or data):
            await self.say("/start", results)
            return
        data = data or self.rng.choice(buttons)["callback_data"]
        payload = {
            "id": self.api.register_callback_query(self.driver.id),
            "from": self.driver.user.to_api(),
            "message": self.api.message_json(screen),
            "chat_instance": str(self.driver.id * 7 + 3),
            "data": data,
        }
        await self._act("callback_query", payload, results)


async def run_people(
    people: list[Person],
    actions: int,
    *,
    taps: bool,
    think: tuple[float, float] = (0.0, 0.0),
    stop: asyncio.Event | None = None,
    questions: Sequence[str] = (),
) -> tuple[Results, float]:
    """Every person performs `actions` actions one after another, all people at once.

    They tap buttons (`taps`), type one of `questions` at random, or send numbered messages.
    Returns the results and the wall time. With `stop`, people keep going until it is set.
    """
    results = Results()

    async def one(person: Person) -> None:
        done = 0
        while (stop is None and done < actions) or (stop is not None and not stop.is_set()):
            if taps:
                await person.tap(results)
            elif questions:
                await person.say(person.rng.choice(questions), results)
            else:
                await person.say(f"message {done}", results)
            done += 1
            if think[1]:
                await asyncio.sleep(person.rng.uniform(*think))

    started = time.perf_counter()
    await asyncio.gather(*(one(p) for p in people))
    return results, time.perf_counter() - started


async def run_sharers(
    sharers: list[Person], shares: Sequence[str], stop: asyncio.Event, think: tuple[float, float]
) -> tuple[Results, Results]:
    """Until `stop`: each person taps "🖼 Share as image" (one of `shares`, callback data) at a
    human pace, timed until the picture arrives. Returns apart the shares of a card before any
    share of it had arrived (they wait for its drawing and upload) and the rest (by file_id)."""
    first, again = Results(), Results()
    arrived: set[str] = set()

    async def one(person: Person) -> None:
        await person.say("/start", Results())  # a screen to tap on, not timed
        while not stop.is_set():
            data = person.rng.choice(shares)
            results = again if data in arrived else first
            answered = len(results.latencies)
            await person.tap(results, data)
            if len(results.latencies) > answered:
                arrived.add(data)
            await asyncio.sleep(person.rng.uniform(*think))

    await asyncio.gather(*(one(p) for p in sharers))
    return first, again
