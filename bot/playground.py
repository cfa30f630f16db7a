"""`ayerpoth playground`: chat with the real bot in a terminal, with no token and no network.

The project's fake Bot API runs in-process on 127.0.0.1 and the real application talks to it
over HTTP, exactly as it talks to Telegram. Type text or a command; type a button's number to
press it. Content editors preview their changes here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from bot.app import build_application, running
from bot.config import Settings
from bot.content import ContentError, load_library
from bot.fakeapi import BotMessage, FakeBotAPI, Reply, TrackingUpdateProcessor, UserDriver
from bot.store import open_store

CATCH_UP_SECONDS = 0.3  # how long to wait for messages the bot sends by itself
HELP = (
    "Type a message or a command (/start, /quiz, /language …) and press Enter.\n"
    "Type a button's number to press it; 'q' or Ctrl-D quits."
)


def run_playground(
    settings: Settings,
    *,
    database: str | None = None,
    color: bool = True,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    try:
        load_library(settings.content_dir)
    except ContentError as exc:
        print("The content has problems; fix them first:", file=sys.stderr)
        print(exc, file=sys.stderr)
        return 1
    return asyncio.run(
        _chat(
            settings, database, color=color, stdin=stdin or sys.stdin, stdout=stdout or sys.stdout
        )
    )


async def _chat(
    settings: Settings, database: str | None, *, color: bool, stdin: TextIO, stdout: TextIO
) -> int:
    with tempfile.TemporaryDirectory(prefix="ayerpoth-playground-") as scratch:
        path = Path(database) if database else Path(scratch) / "playground.sqlite3"
        async with FakeBotAPI() as api:
            local = dataclasses.replace(
                settings,
                bot_token=api.token,
                bot_api_url=api.base_url,
                database_url=f"sqlite:///{path.resolve()}",
                webhook_url=None,
            )
            store = await open_store(local.database_url)
            processor = TrackingUpdateProcessor(4, on_processed=api.notify_processed)
            application = build_application(local, store, update_processor=processor)
            processor.settled = application.bot_data.services.outbox.settled
            async with running(application, poll_timeout=1):
                user = api.private_user("You", language_code=settings.default_language)
                session = _Session(api, user, stdout, color)
                session.say(HELP)
                session.show(await user.send("/start"))
                await session.loop(stdin)
    return 0


class _Session:
    def __init__(self, api: FakeBotAPI, user: UserDriver, out: TextIO, color: bool) -> None:
        self.api = api
        self.user = user
        self.out = out
        self.color = color
        self.seen: set[int] = set()

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def show_message(self, message: BotMessage) -> None:
        self.seen.add(message.message_id)
        marker = "✏️  (edited)" if message.edited else "🤖"
        self.say(f"\n{marker}\n{message.render(ansi=self.color)}")

    def show(self, reply: Reply) -> None:
        for message in reply.shown:
            self.show_message(message)
        if reply.callback_answer is not None and reply.callback_answer.text:
            self.say(f"\n💬 {reply.callback_answer.text}")
        if reply.url:
            self.say(f"\n🔗 opens {reply.url}")
        if reply.switch_inline_query is not None:
            self.say(
                f"\n📤 shares into a chat of your choice: @AyerPothBot {reply.switch_inline_query}"
            )

    async def loop(self, stdin: TextIO) -> None:
        while True:
            self.out.write("\n> ")
            self.out.flush()
            line = await asyncio.to_thread(stdin.readline)
            if not line or line.strip().lower() in ("q", "quit", "exit"):
                self.say("")
                return
            text = line.strip()
            if not text:
                continue
            try:
                self.show(await self._act(text))
            except AssertionError as exc:  # e.g. no such button number
                self.say(f"(!) {exc}")
            await self.catch_up()

    async def catch_up(self) -> None:
        """Show what the bot sent on its own (a weekly tip right after subscribing, say)."""
        while await self.api.wait_event(CATCH_UP_SECONDS):
            pass
        for message in self.user.messages:
            if message.message_id not in self.seen:
                self.show_message(message)

    async def _act(self, text: str) -> Reply:
        if text.isdigit():
            message = _latest_keyboard(self.user)
            buttons = [b for row in message.buttons for b in row] if message else []
            number = int(text)
            if 1 <= number <= len(buttons):
                label = buttons[number - 1]["text"]
                return await self.user.press(f"^{re.escape(label)}$", message=message)
            raise AssertionError(f"there is no button {number}; pick 1 to {len(buttons)}")
        return await self.user.send(text)


def _latest_keyboard(user: UserDriver) -> BotMessage | None:
    return next((m for m in reversed(user.messages) if m.buttons), None)
