"""`ayerpoth playground`: chat with the real bot in a terminal, with no token and no network.

The project's fake Bot API runs in-process on 127.0.0.1 and the real application talks to it
over HTTP, exactly as it talks to Telegram. Type text or a command; type a button's number to
press it. `/group` moves into a simulated group chat with the bot and `/private` back;
`@AyerPothBot words` is inline mode, as when sharing a card into any chat. Content editors
preview their changes here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import tempfile
from pathlib import Path
from typing import TextIO
from urllib.parse import parse_qs, urlsplit

from bot.app import build_application, running
from bot.config import Settings
from bot.content import ContentError, load_library
from bot.fakeapi import (
    BotMessage,
    FakeBotAPI,
    GroupDriver,
    InlineAnswer,
    Reply,
    TrackingUpdateProcessor,
    UserDriver,
)
from bot.store import open_store

CATCH_UP_SECONDS = 0.3  # how long to wait for messages the bot sends by itself
DESCRIPTION_CHARS = 90  # an inline result's description, cut about where a phone cuts it
GROUP_TITLE = "Playground group"
HELP = """\
Type a message or a command (/start, /quiz, /language …) and press Enter.
A number presses the button with that number in the newest message with buttons.
/group: a group chat with you and the bot (there it sees only commands, @mentions and
  replies to it); /private: back to your private chat with the bot.
@{bot} words: inline mode, as when you share into any chat; a number then posts
  that result into the chat you are in.
'q' or Ctrl-D quits."""


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
                # a throw-away chat draws its picture cards into a throw-away folder too
                card_cache_dir=settings.card_cache_dir if database else Path(scratch) / "cards",
                card_upload_chat_id=None,
            )
            store = await open_store(local.database_url)
            processor = TrackingUpdateProcessor(4, on_processed=api.notify_processed)
            application = build_application(local, store, update_processor=processor)
            processor.settled = application.bot_data.services.outbox.settled
            async with running(application, poll_timeout=1):
                user = api.private_user("You", language_code=settings.default_language)
                session = PlaygroundSession(api, user, stdout, color=color)
                session.say(HELP.format(bot=api.bot_username))
                session.show(await user.send("/start"))
                await session.loop(stdin)
    return 0


class PlaygroundSession:
    """One person at the terminal: their private chat with the bot and, after /group, a group.

    Each typed line goes to :meth:`step`; everything is written to ``out``.
    """

    def __init__(
        self,
        api: FakeBotAPI,
        user: UserDriver,
        out: TextIO,
        *,
        color: bool = True,
        catch_up_seconds: float = CATCH_UP_SECONDS,
    ) -> None:
        self.api = api
        self.user = user
        self.out = out
        self.color = color
        self.catch_up_seconds = catch_up_seconds
        self.group: GroupDriver | None = None
        self.in_group = False
        self.results: InlineAnswer | None = None  # inline results waiting for a number
        self.posted: list[BotMessage] = []  # what the user posted via the bot (inline mode)
        self.seen: set[tuple[int, int]] = set()  # (chat id, message id) already shown

    @property
    def chat(self) -> UserDriver | GroupDriver:
        """The chat being typed into."""
        return self.group if self.in_group and self.group is not None else self.user

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def show_message(self, message: BotMessage, where: str = "") -> None:
        self.seen.add((message.chat_id, message.message_id))
        marker = "✏️  (edited)" if message.edited else "🤖"
        self.say(f"\n{marker}{where}\n{message.render(ansi=self.color)}")

    def show(self, reply: Reply) -> None:
        for message in reply.shown:
            self.show_message(message)
        if reply.callback_answer is not None and reply.callback_answer.text:
            self.say(f"\n💬 {reply.callback_answer.text}")
        if reply.switch_inline_query is not None:
            self.say(
                "\n📤 Telegram asks which chat to share into and types "
                f"@{self.api.bot_username} {reply.switch_inline_query} there: type that here, "
                "or /group first to share into the group"
            )

    async def loop(self, stdin: TextIO) -> None:
        while True:
            self.out.write("\n(group) > " if self.in_group else "\n> ")
            self.out.flush()
            line = await asyncio.to_thread(stdin.readline)
            if not line or line.strip().lower() in ("q", "quit", "exit"):
                self.say("")
                return
            if line.strip():
                await self.step(line.strip())

    async def step(self, text: str) -> None:
        """One typed line: act on it, then show what the bot sent by itself meanwhile."""
        try:
            await self._act(text)
        except AssertionError as exc:  # e.g. no such button number
            self.say(f"(!) {exc}")
        await self.catch_up()

    async def catch_up(self) -> None:
        """Show what the bot sent on its own (a weekly tip right after subscribing, say), in
        whichever chat it sent it."""
        while await self.api.wait_event(self.catch_up_seconds):
            pass
        chats: list[tuple[UserDriver | GroupDriver, str]] = [(self.user, " (in the private chat)")]
        if self.group is not None:
            chats.append((self.group, " (in the group)"))
        for chat, where in chats:
            for message in chat.messages:
                if (message.chat_id, message.message_id) not in self.seen:
                    self.show_message(message, "" if chat is self.chat else where)

    async def _act(self, text: str) -> None:
        if text.isdigit() and self.results is not None:
            await self._post(self.results, int(text))  # the results stay for another number
            return
        self.results = None
        command = text.lower()
        if text.isdigit():
            await self._press(int(text))
        elif command == "/group":
            await self._to_group()
        elif command == "/private":
            self._to_private()
        elif (query := self._inline_query(text)) is not None:
            await self._inline(query)
        else:
            await self._send(text)

    async def _send(self, text: str) -> None:
        if isinstance(self.chat, GroupDriver):
            seen = self.chat.bot_sees(text)
            self.show(await self.chat.send(self.user, text))
            if not seen:
                self.say(
                    "\n(the bot does not get this message: in groups Telegram passes it only "
                    f"commands, @{self.api.bot_username} mentions and replies to its messages)"
                )
        else:
            self.show(await self.user.send(text))

    async def _press(self, number: int) -> None:
        chat = self.chat
        with_buttons = [m for m in chat.messages if m.buttons]
        with_buttons += [m for m in self.posted if m.chat_id == chat.id and m.buttons]
        if not with_buttons:
            raise AssertionError("there is no message with buttons here")
        message = max(with_buttons, key=lambda m: m.message_id)
        if isinstance(chat, GroupDriver):
            reply = await chat.press(self.user, number, message=message)
        else:
            reply = await chat.press(number, message=message)
        self.show(reply)
        if reply.url:
            payload = self._start_payload(reply.url)
            if payload is None:
                self.say(f"\n🔗 opens {reply.url}")
            else:
                await self._open_bot(reply.url, payload)

    def _start_payload(self, url: str) -> str | None:
        """The payload of a `https://t.me/<this bot>?start=<payload>` deep link, else None."""
        parts = urlsplit(url)
        if parts.netloc != "t.me" or parts.path.strip("/").lower() != self.api.bot_username.lower():
            return None
        return parse_qs(parts.query).get("start", [None])[0]

    async def _open_bot(self, url: str, payload: str) -> None:
        """What Telegram does with a deep link: open the private chat, send /start <payload>."""
        self.say(f"\n🔗 opens {url}: the private chat with the bot, which gets /start {payload}")
        if self.in_group:
            self._to_private()
        self.show(await self.user.send(f"/start {payload}"))

    async def _to_group(self) -> None:
        if self.group is not None:
            self.in_group = True
            self.say(f"\n👥 In the group “{GROUP_TITLE}” again; /private goes back.")
            return
        self.group = self.api.group(GROUP_TITLE, creator=self.user)
        self.in_group = True
        self.say(
            f"\n👥 You made the group “{GROUP_TITLE}” and added the bot; /private goes back."
            "\nIt sees only commands, @mentions and replies to it here: try /methods."
        )
        self.show(await self.group.add_bot(self.user))

    def _to_private(self) -> None:
        if not self.in_group:
            self.say("\n👤 You are in your private chat with the bot; /group opens a group.")
            return
        self.in_group = False
        self.say("\n👤 In your private chat with the bot; /group goes back to the group.")

    def _inline_query(self, text: str) -> str | None:
        """The query of `@<bot username> words` (or the short `@bot words`), else None."""
        head, _, query = text.partition(" ")
        if head.lower() in (f"@{self.api.bot_username.lower()}", "@bot"):
            return query.strip()
        return None

    async def _inline(self, query: str) -> None:
        chat_type = self.group.chat.type if self.in_group and self.group else "sender"
        answer = await self.user.inline(query, chat_type=chat_type)
        typed = f"@{self.api.bot_username} {query}".rstrip()
        if not answer.results:
            self.say(f"\n🔎 {typed}: nothing found")
            return
        lines = [f"\n🔎 {typed}"]
        for number, result in enumerate(answer.results, 1):
            lines.append(f"[{number}] {result.get('title', result.get('type'))}")
            if description := str(result.get("description") or ""):
                cut = len(description) > DESCRIPTION_CHARS
                lines.append(f"    {description[:DESCRIPTION_CHARS].rstrip()}{'…' if cut else ''}")
        lines.append("A number posts that result into this chat; anything else goes on chatting.")
        self.say("\n".join(lines))
        self.results = answer

    async def _post(self, answer: InlineAnswer, number: int) -> None:
        reply = await self.user.choose_inline(answer, number, chat=self.chat)
        self.results = None
        assert reply.posted is not None
        self.posted.append(reply.posted)
        self.say(
            f"\n👤 {self.user.first_name} via @{self.api.bot_username}\n"
            f"{reply.posted.render(ansi=self.color)}"
        )
        self.show(reply)
