"""Fixtures that run the real bot (the builder `ayerpoth run` uses) against the fake Bot API.

Tests read like a chat: `user = bot.user("Rahim"); reply = await user.send("/start")`.
"""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import BotApplication, build_application, running
from bot.config import Settings
from bot.content import Library, load_library
from bot.fakeapi import BotMessage, FakeBotAPI, FloodRules, TrackingUpdateProcessor, UserDriver
from bot.logs import RedactingFormatter
from bot.outbox.dispatcher import Dispatcher
from bot.ratelimit import LaneRateLimiter
from bot.store import SQLStore, open_store

# A throw-away PostgreSQL server for the tests that ask for `postgres_url` (tests/postgres.py).
pytest_plugins = ("postgres",)

CONTENT = load_library(Settings().content_dir)


@contextmanager
def captured_logs(secrets: Iterable[str] = ()) -> Iterator[io.StringIO]:
    """Everything logged at DEBUG and up, formatted as `ayerpoth run` formats it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(RedactingFormatter(list(secrets)))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def content_copy(tmp_path: Path) -> Path:
    """A copy of the content to break or change in a test."""
    root = tmp_path / "content"
    shutil.copytree(Settings().content_dir, root)
    return root


class Clock:
    """An injected clock that tests move by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class BotHarness:
    """The fake Bot API plus the real application, restartable on the same database."""

    def __init__(
        self,
        api: FakeBotAPI,
        settings: Settings,
        clock: Clock,
        library: Library,
        limiter: Callable[[], LaneRateLimiter] | None = None,
    ) -> None:
        self.api = api
        self.settings = settings
        self.clock = clock
        self.library = library
        self.limiter = limiter  # builds the rate limiter for each start (budgets scaled)
        self.app: BotApplication | None = None
        self.store: SQLStore | None = None
        self._stack: AsyncExitStack | None = None

    @property
    def database_path(self) -> str:
        """The SQLite file behind DATABASE_URL, for tests that look at the tables themselves."""
        return self.settings.database_url.removeprefix("sqlite:///")

    async def start(self) -> None:
        self._stack = AsyncExitStack()
        self.store = await open_store(self.settings.database_url)
        processor = TrackingUpdateProcessor(8, on_processed=self.api.notify_processed)
        self.app = build_application(
            self.settings,
            self.store,
            library=self.library,
            update_processor=processor,
            clock=self.clock,
            rate_limiter=self.limiter() if self.limiter else None,
        )
        # An update is done when the replies its handlers posted are out (bot.outbox).
        processor.settled = self.app.bot_data.services.outbox.settled
        await self._stack.enter_async_context(running(self.app, poll_timeout=1))

    async def stop(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    async def restart(self, *, library: Library | None = None) -> None:
        """Stop the bot and start a new one on the same database (e.g. with changed content)."""
        await self.stop()
        if library is not None:
            self.library = library
        await self.start()

    async def dispatch(self) -> None:
        """A run of the tips dispatcher at the injected clock's time, as the JobQueue starts it.

        A run already going (started by a subscription) is waited for and goes round again.
        """
        assert self.app is not None
        await self.dispatcher.request(self.app.bot)

    @property
    def dispatcher(self) -> Dispatcher:
        """The app's own (it keeps state between runs), as its services hold it."""
        assert self.app is not None
        return self.app.bot_data.services.dispatcher

    async def wait_for(
        self,
        chat_id: int,
        predicate: Callable[[BotMessage], bool],
        timeout: float = 5,  # noqa: ASYNC109 (a deadline across several waits for events)
    ) -> BotMessage:
        """A message the bot sends on its own (not in reply to an update), e.g. a tip.

        Returns once the dispatcher run that sent it has ended, so the outcome is recorded before
        a test moves the clock on.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for message in self.api.sent_to(chat_id):
                if predicate(message):
                    await self.dispatcher.idle()
                    return message
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0 or not await self.api.wait_event(left):
                raise AssertionError(f"no such message to {chat_id} within {timeout}s")

    def user(
        self, first_name: str = "Rahim", language_code: str = "bn", **kwargs: Any
    ) -> UserDriver:
        return self.api.private_user(first_name, language_code=language_code, **kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))  # a Monday, 15:00 in Dhaka


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(api: FakeBotAPI, **env: str) -> Settings:
        return Settings.from_env(
            {
                "BOT_TOKEN": api.token,
                "BOT_API_URL": api.base_url,
                "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
                "CARD_CACHE_DIR": str(tmp_path / "cards"),
                **env,
            }
        )

    return make


def unthrottled(clock: Callable[[], float] | None = None) -> LaneRateLimiter:
    """The limiter for a fake without flood emulation: Telegram's budgets per private chat and
    bot-wide lifted (a test may send a hundred messages to one person in a second), the group
    budget and everything else as in production. Tests with flood emulation use the real one."""
    return LaneRateLimiter(
        broadcast_rate=Settings().broadcast_rate,
        bot_wide_rate=100_000,
        private_rate=100_000,
        private_burst=100_000,
        clock=clock,
    )


@asynccontextmanager
async def bot_against_fake(
    make_settings: Callable[..., Settings],
    clock: Clock,
    *,
    flood: FloodRules | bool = False,
    limiter: Callable[[], LaneRateLimiter] | None = None,
    api_options: dict[str, Any] | None = None,
    **env: str,
) -> AsyncIterator[BotHarness]:
    """The running bot against a fresh fake Bot API, with extra settings (`ADMIN_IDS=...`)."""
    async with FakeBotAPI(flood=flood, **(api_options or {})) as api:
        if limiter is None and not flood:
            limiter = unthrottled
        harness = BotHarness(api, make_settings(api, **env), clock, CONTENT, limiter)
        await harness.start()
        try:
            yield harness
        finally:
            await harness.stop()
        # Whatever a test did, Telegram would have accepted every request the bot made.
        assert api.rejections == [], [f"{c.method}: {c.description}" for c in api.rejections]


@pytest.fixture
async def bot(make_settings: Callable[..., Settings], clock: Clock) -> AsyncIterator[BotHarness]:
    async with bot_against_fake(make_settings, clock) as harness:
        yield harness
