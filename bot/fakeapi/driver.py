"""Chat drivers: let tests (and the playground) talk to the bot like a person would.

A driver builds valid Telegram updates (messages, button presses, inline queries, membership
changes), hands them to the fake server, waits until the bot has *finished* handling them and
returns a :class:`Reply` with everything the bot did in that chat meanwhile. Tests then read
like a conversation::

    user = api.private_user("Rahim")
    reply = await user.send("/start")
    reply = await user.press("Freelancing")  # by text, or by number: user.press(2)
    assert "Fiverr" in reply.text
"""

# The conversation API takes ``timeout=`` like a person's patience, not asyncio.timeout():
# each step has its own deadline and the error names what the bot failed to do in time.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from bot.fakeapi.models import BotMessage, CallbackAnswer, ChatEvent, InlineAnswer, plain_html
from bot.fakeapi.validation import format_text
from bot.telegram_html import utf16_len

if TYPE_CHECKING:
    from bot.fakeapi.server import FakeBotAPI, SimChat, SimUser

__all__ = ["ChannelDriver", "GroupDriver", "Reply", "UserDriver"]

#: Without processing tracking, how long the chat must stay silent before a reply is complete.
QUIET_PERIOD = 0.3
_COMMAND_RE = re.compile(r"^/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")


@dataclass
class Reply:
    """What the bot did in one chat while it handled the update(s) a driver sent.

    ``messages`` are new messages as first sent, ``edits`` the versions after each edit,
    ``last`` the most recent message shown (new or edited). For URL, switch-inline and
    copy-text buttons no update is sent and only ``url`` / ``switch_inline_query`` /
    ``copied_text`` is set. After :meth:`UserDriver.choose_inline`, ``posted`` is the message
    the user posted via the bot.
    """

    events: list[ChatEvent] = field(default_factory=list)
    callback_query_id: str | None = None
    url: str | None = None
    switch_inline_query: str | None = None
    copied_text: str | None = None
    posted: BotMessage | None = None

    @property
    def messages(self) -> list[BotMessage]:
        return [e.message for e in self.events if e.kind == "message" and e.message]

    @property
    def edits(self) -> list[BotMessage]:
        return [e.message for e in self.events if e.kind == "edit" and e.message]

    @property
    def shown(self) -> list[BotMessage]:
        """New and edited messages in the order they appeared."""
        return [e.message for e in self.events if e.kind in ("message", "edit") and e.message]

    @property
    def deleted(self) -> list[int]:
        return [e.message_id for e in self.events if e.kind == "delete" and e.message_id]

    @property
    def callback_answer(self) -> CallbackAnswer | None:
        for event in self.events:
            answer = event.callback_answer
            if answer is not None and answer.query_id == self.callback_query_id:
                return answer
        return None

    @property
    def inline_answers(self) -> list[InlineAnswer]:
        return [e.inline_answer for e in self.events if e.inline_answer is not None]

    @property
    def last(self) -> BotMessage:
        shown = self.shown
        if not shown:
            raise AssertionError(f"the bot showed no message; it did: {self.describe()}")
        return shown[-1]

    @property
    def text(self) -> str:
        """Plain text (entities stripped) of :attr:`last`."""
        return self.last.text

    @property
    def html(self) -> str:
        return self.last.html

    def describe(self) -> str:
        """A one-line summary for assertion messages."""
        if not self.events:
            return "nothing"
        return ", ".join(
            f"{e.kind} {e.message.message_id}" if e.message else e.kind for e in self.events
        )

    def render(self, *, ansi: bool = False) -> str:
        return "\n\n".join(m.render(ansi=ansi) for m in self.shown)


async def _exchange(
    api: FakeBotAPI,
    chat_id: int,
    updates: list[tuple[str, dict[str, Any]]],
    limit: float,
) -> list[ChatEvent]:
    """Queue ``updates``, wait until the bot is done with them, return this chat's events."""
    start = api.event_seq
    update_ids = [api.enqueue_update(kind, payload) for kind, payload in updates]
    if api.track_processing:
        deadline = asyncio.get_running_loop().time() + limit
        for update_id in update_ids:
            remaining = max(deadline - asyncio.get_running_loop().time(), 0.0)
            await api.wait_processed(update_id, remaining)
    else:
        await _wait_quiet(api, chat_id, start, limit)
    return [e for e in api.events_since(start) if e.chat_id == chat_id]


async def _wait_quiet(api: FakeBotAPI, chat_id: int, start: int, limit: float) -> None:
    """Fallback when the bot cannot report processing: first reaction, then a quiet period."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not any(e.chat_id == chat_id for e in api.events_since(start)):
        remaining = deadline - loop.time()
        if remaining <= 0 or not await api.wait_event(remaining):
            return
    while (remaining := min(QUIET_PERIOD, deadline - loop.time())) > 0:
        if not await api.wait_event(remaining):
            return


def _command_entities(text: str) -> list[dict[str, Any]]:
    match = _COMMAND_RE.match(text)
    if not match:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(match.group())}]


class _ChatDriver:
    """What user and group drivers share: building messages and pressing buttons."""

    def __init__(self, api: FakeBotAPI, chat: SimChat) -> None:
        self.api = api
        self.chat = chat

    @property
    def id(self) -> int:
        return self.chat.id

    @property
    def messages(self) -> list[BotMessage]:
        """The bot's messages in this chat as they look now (latest versions, none deleted)."""
        return self.api.sent_to(self.chat.id)

    @property
    def last_message(self) -> BotMessage:
        messages = self.messages
        if not messages:
            raise AssertionError(f"the bot has no message in chat {self.chat.id}")
        return messages[-1]

    def _message(self, sender: SimUser, **content: Any) -> dict[str, Any]:
        """A new user message in this chat, stored so the bot may reply to or delete it."""
        message = {
            "message_id": self.api.next_message_id(self.chat.id),
            "from": sender.to_api(),
            "chat": self.api.chat_json(self.chat),
            "date": int(time.time()),
            **content,
        }
        self.api.store_user_message(self.chat.id, message)
        return message

    def _text_message(
        self, sender: SimUser, text: str, reply_to: BotMessage | None = None
    ) -> dict[str, Any]:
        content: dict[str, Any] = {"text": text}
        entities = _command_entities(text)
        if entities:
            content["entities"] = entities
        if reply_to is not None:
            content["reply_to_message"] = self.api.message_json(reply_to)
        return self._message(sender, **content)

    async def _send_updates(
        self, updates: list[tuple[str, dict[str, Any]]], limit: float, **reply: Any
    ) -> Reply:
        events = await _exchange(self.api, self.chat.id, updates, limit)
        return Reply(events, **reply)

    def _current(self, message: BotMessage | None) -> BotMessage:
        if message is None:
            with_buttons = [m for m in self.messages if m.buttons]
            if not with_buttons:
                raise AssertionError(f"no bot message with buttons in chat {self.chat.id}")
            return with_buttons[-1]
        current = self.api.message(message.chat_id, message.message_id)
        if current is None:
            if self._posted_via_bot(message):
                return message  # the bot cannot edit it by chat and id: it is as posted
            raise AssertionError(f"message {message.message_id} was deleted")
        return current

    def _posted_via_bot(self, message: BotMessage) -> bool:
        sent = self.api.user_message(message.chat_id, message.message_id)
        return sent is not None and "via_bot" in sent

    async def _press(
        self, sender: SimUser, which: str | int, message: BotMessage | None, limit: float
    ) -> Reply:
        target = self._current(message)
        button = target.button_at(which) if isinstance(which, int) else target.find_button(which)
        if "callback_data" in button:
            if self._posted_via_bot(target):
                raise AssertionError(
                    "a callback button on a message posted via the bot would come with an "
                    "inline_message_id, which the fake Bot API does not simulate"
                )
            return await self._callback(sender, button["callback_data"], target, limit)
        if "url" in button:
            return Reply(url=button["url"])
        for key in ("login_url", "web_app"):
            if key in button:
                return Reply(url=button[key]["url"])
        for key in ("switch_inline_query", "switch_inline_query_current_chat"):
            if key in button:
                return Reply(switch_inline_query=button[key])
        if "switch_inline_query_chosen_chat" in button:
            return Reply(
                switch_inline_query=button["switch_inline_query_chosen_chat"].get("query", "")
            )
        if "copy_text" in button:
            return Reply(copied_text=button["copy_text"]["text"])
        raise AssertionError(f"the driver cannot press button {button!r}")

    async def _callback(
        self, sender: SimUser, data: str, message: BotMessage | dict[str, Any], limit: float
    ) -> Reply:
        query_id = self.api.register_callback_query(self.chat.id)
        payload = {
            "id": query_id,
            "from": sender.to_api(),
            "message": self.api.message_json(message)
            if isinstance(message, BotMessage)
            else message,
            "chat_instance": str(abs(self.chat.id) * 7 + 3),
            "data": data,
        }
        reply = await self._send_updates([("callback_query", payload)], limit)
        reply.callback_query_id = query_id
        if self.api.track_processing and reply.callback_answer is None:
            raise AssertionError(
                f"the bot did not answer callback query {data!r} (it must always call "
                f"answerCallbackQuery); it did: {reply.describe()}"
            )
        return reply


class UserDriver(_ChatDriver):
    """One simulated person in their private chat with the bot (chat_id == user id)."""

    def __init__(self, api: FakeBotAPI, user: SimUser) -> None:
        super().__init__(api, api.chats[user.id])
        self.user = user
        self.last_sent: dict[str, Any] | None = None

    @property
    def first_name(self) -> str:
        return self.user.first_name

    @property
    def language_code(self) -> str | None:
        return self.user.language_code

    @property
    def username(self) -> str | None:
        return self.user.username

    @property
    def has_started(self) -> bool:
        return self.user.has_started

    @property
    def blocked(self) -> bool:
        return self.user.blocked

    def to_api(self) -> dict[str, Any]:
        return self.user.to_api()

    async def _say(self, limit: float, **content: Any) -> Reply:
        self.user.has_started = True
        message = self._message(self.user, **content)
        self.last_sent = message
        return await self._send_updates([("message", message)], limit)

    def send_nowait(self, text: str) -> int:
        """Send a text message and return its update_id at once (floods, crowds)."""
        self.user.has_started = True
        self.last_sent = self._text_message(self.user, text)
        return self.api.enqueue_update("message", self.last_sent)

    async def send(
        self, text: str, *, reply_to: BotMessage | None = None, timeout: float = 5
    ) -> Reply:
        """Send a text message (commands get their bot_command entity) and wait for the bot."""
        self.user.has_started = True
        message = self._text_message(self.user, text, reply_to)
        self.last_sent = message
        return await self._send_updates([("message", message)], timeout)

    async def press(
        self, button: str | int, *, message: BotMessage | None = None, timeout: float = 5
    ) -> Reply:
        """Press an inline button of ``message`` (default: the newest keyboard): the one whose
        text matches the regex ``button``, or given an int, the one at that number (from 1,
        row by row, as :meth:`BotMessage.render` numbers them) even when texts repeat."""
        return await self._press(self.user, button, message, timeout)

    async def press_data(self, data: str, message_id: int, *, timeout: float = 5) -> Reply:
        """Send arbitrary callback data "from" a message: forged or stale button tests."""
        current = self.api.message(self.chat.id, message_id)
        message: BotMessage | dict[str, Any] = current or {
            "chat": self.api.chat_json(self.chat),
            "message_id": message_id,
            "date": 0,
        }
        return await self._callback(self.user, data, message, timeout)

    async def inline(
        self, query: str, *, chat_type: str = "sender", offset: str = "", timeout: float = 5
    ) -> InlineAnswer:
        """Type ``@bot query`` somewhere; returns the bot's answerInlineQuery."""
        query_id = self.api.register_inline_query(self.user.id)
        payload = {
            "id": query_id,
            "from": self.user.to_api(),
            "query": query,
            "offset": offset,
            "chat_type": chat_type,
        }
        reply = await self._send_updates([("inline_query", payload)], timeout)
        for answer in reply.inline_answers:
            if answer.query_id == query_id:
                return answer
        raise AssertionError(f"the bot did not answer inline query {query!r}")

    async def choose_inline(
        self,
        answer: InlineAnswer,
        number: int = 1,
        *,
        chat: UserDriver | GroupDriver | None = None,
        timeout: float = 5,
    ) -> Reply:
        """Pick result ``number`` (from 1) of an inline answer and post it into ``chat``
        (default: this user's chat with the bot), as Telegram does: a message from this user
        "via @bot" with the result's text and keyboard, which the bot receives (privacy mode
        lets messages sent via the bot through). ``Reply.posted`` is that message; the events
        are what the bot did in that chat in reply."""
        if not 1 <= number <= len(answer.results):
            raise AssertionError(
                f"there is no result {number}; pick 1 to {len(answer.results)}"
                if answer.results
                else "the inline answer has no results"
            )
        result = answer.results[number - 1]
        target: _ChatDriver = chat or self
        if target.chat.type != "private":
            if target.chat.bot_status in ("left", "kicked"):
                raise AssertionError(f"the bot is not in group {target.chat.id}")
            target.chat.members.setdefault(self.id, "member")
        if result.get("type") == "photo" and "photo_file_id" in result:  # a cached photo
            kind, media = "photo", self.api.files.get("photo", result["photo_file_id"]).media
            source, keys = result, ("caption", "caption_entities")
            fields: dict[str, Any] = {"photo": media["sizes"]}
        else:
            content = result.get("input_message_content") or {}
            if "message_text" not in content:
                raise AssertionError(f"the driver cannot post a {result.get('type')} result")
            kind, media = "text", None
            source, keys = {**content, "caption": content["message_text"]}, ("text", "entities")
            fields = {}
        raw = str(source.get("caption") or "")
        mode = source.get("parse_mode")
        is_html = str(mode or "").lower() == "html"
        parsed = format_text(raw, mode, source.get(keys[1]), caption=kind != "text")
        markup = result.get("reply_markup")
        fields.update({keys[0]: parsed.plain, "via_bot": self.api.bot_user})
        if parsed.entities:
            fields[keys[1]] = parsed.entities
        if markup:
            fields["reply_markup"] = markup
        sent = target._message(self.user, **fields)
        posted = BotMessage(
            chat_id=target.chat.id,
            message_id=sent["message_id"],
            html=raw if is_html else plain_html(raw),
            text=parsed.plain,
            entities=parsed.entities,
            reply_markup=markup,
            date=sent["date"],
            kind=kind,
            media=media,
        )
        return await target._send_updates([("message", sent)], timeout, posted=posted)

    def _membership(self, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        return {
            "chat": self.api.chat_json(self.chat),
            "from": self.user.to_api(),
            "date": int(time.time()),
            "old_chat_member": {"user": self.api.bot_user, **old},
            "new_chat_member": {"user": self.api.bot_user, **new},
        }

    async def block(self, *, timeout: float = 5) -> Reply:
        """Block the bot: from now on sending here is 403 "bot was blocked by the user"."""
        self.user.blocked = True
        update = self._membership({"status": "member"}, {"status": "kicked", "until_date": 0})
        return await self._send_updates([("my_chat_member", update)], timeout)

    async def unblock(self, *, timeout: float = 5) -> Reply:
        self.user.blocked = False
        update = self._membership({"status": "kicked", "until_date": 0}, {"status": "member"})
        return await self._send_updates([("my_chat_member", update)], timeout)

    async def send_sticker(self, *, emoji: str = "👍", timeout: float = 5) -> Reply:
        sticker = {
            "file_id": "fake-sticker-1",
            "file_unique_id": "usticker1",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return await self._say(timeout, sticker=sticker)

    async def send_photo(self, *, caption: str | None = None, timeout: float = 5) -> Reply:
        photo = [
            {"file_id": "fake-userphoto-s", "file_unique_id": "uphs", "width": 90, "height": 90},
            {"file_id": "fake-userphoto-m", "file_unique_id": "uphm", "width": 800, "height": 800},
        ]
        content: dict[str, Any] = {"photo": photo}
        if caption:
            content["caption"] = caption
        return await self._say(timeout, **content)

    async def send_voice(self, *, duration: int = 3, timeout: float = 5) -> Reply:
        voice = {
            "file_id": "fake-voice-1",
            "file_unique_id": "uvoice1",
            "duration": duration,
            "mime_type": "audio/ogg",
        }
        return await self._say(timeout, voice=voice)

    async def send_forwarded(self, text: str, *, timeout: float = 5) -> Reply:
        origin = {
            "type": "hidden_user",
            "date": int(time.time()) - 3600,
            "sender_user_name": "Someone Else",
        }
        return await self._say(timeout, text=text, forward_origin=origin)

    async def edit_message(
        self, message: dict[str, Any] | int | None, text: str, *, timeout: float = 5
    ) -> Reply:
        """Edit one of the user's own messages (default: the last one) → edited_message."""
        if message is None:
            message = self.last_sent
        if isinstance(message, int):
            message = self.api.user_message(self.chat.id, message)
        if message is None:
            raise AssertionError("no user message to edit")
        edited = {**message, "text": text, "edit_date": int(time.time())}
        edited.pop("entities", None)
        if entities := _command_entities(text):
            edited["entities"] = entities
        self.api.store_user_message(self.chat.id, edited)
        return await self._send_updates([("edited_message", edited)], timeout)


class GroupDriver(_ChatDriver):
    """A group or supergroup with simulated members; the bot joins via :meth:`add_bot`."""

    @property
    def title(self) -> str | None:
        return self.chat.title

    def add_member(self, user: UserDriver, status: str = "member") -> None:
        self.chat.members[user.id] = status

    def make_admin(self, user: UserDriver) -> None:
        if self.chat.members.get(user.id) != "creator":
            self.chat.members[user.id] = "administrator"

    def _bot_change(self, by: UserDriver, old: str, new: str) -> dict[str, Any]:
        # Both sides carry the fields their status requires (until_date, admin rights).
        old_member, new_member = (
            self.api.member_json(replace(self.chat, bot_status=status), self.api.bot_id)
            for status in (old, new)
        )
        return {
            "chat": self.api.chat_json(self.chat),
            "from": by.to_api(),
            "date": int(time.time()),
            "old_chat_member": old_member,
            "new_chat_member": new_member,
        }

    async def add_bot(self, by: UserDriver, *, as_admin: bool = False, timeout: float = 5) -> Reply:
        """``by`` adds the bot: my_chat_member plus the new_chat_members service message."""
        self.chat.members.setdefault(by.id, "member")
        old = self.chat.bot_status
        self.chat.bot_status = "administrator" if as_admin else "member"
        change = self._bot_change(by, old, self.chat.bot_status)
        service = self._message(by.user, new_chat_members=[self.api.bot_user])
        return await self._send_updates([("my_chat_member", change), ("message", service)], timeout)

    async def upgrade(self, by: UserDriver, *, timeout: float = 5) -> GroupDriver:
        """The group becomes a supergroup, as Telegram does it: a new chat id, a service message
        in each chat, and the old id refuses messages from then on. Returns the supergroup."""
        if self.chat.type != "group":
            raise AssertionError("only a basic group can be upgraded")
        supergroup = self.api.group(self.chat.title or "", supergroup=True)
        supergroup.chat.members = dict(self.chat.members)
        supergroup.chat.bot_status = self.chat.bot_status
        self.chat.migrated_to = supergroup.id
        updates = [
            ("message", self._message(by.user, migrate_to_chat_id=supergroup.id)),
            ("message", supergroup._message(by.user, migrate_from_chat_id=self.chat.id)),
        ]
        await self._send_updates(updates, timeout)
        return supergroup

    async def remove_bot(self, by: UserDriver, *, timeout: float = 5) -> Reply:
        old = self.chat.bot_status
        self.chat.bot_status = "kicked" if self.chat.type == "supergroup" else "left"
        change = self._bot_change(by, old, self.chat.bot_status)
        return await self._send_updates([("my_chat_member", change)], timeout)

    def bot_sees(self, text: str, reply_to: BotMessage | None = None) -> bool:
        """Privacy mode (can_read_all_group_messages=False): what Telegram passes to the bot."""
        if self.chat.bot_status == "administrator" or reply_to is not None:
            return True
        mention = f"@{self.api.bot_username}".lower()
        match = _COMMAND_RE.match(text)
        if match:
            target = match.group().partition("@")[2]
            return not target or target.lower() == self.api.bot_username.lower()
        return mention in text.lower()

    def send_nowait(self, user: UserDriver, text: str) -> int:
        """``user`` writes a command to the bot in the group; its update_id, without waiting."""
        self.chat.members.setdefault(user.id, "member")
        if not self.bot_sees(text, None):
            raise AssertionError(f"the bot would not see {text!r} in this group")
        return self.api.enqueue_update("message", self._text_message(user.user, text))

    async def send(
        self, user: UserDriver, text: str, *, reply_to: BotMessage | None = None, timeout: float = 5
    ) -> Reply:
        """``user`` writes in the group. Messages privacy mode hides never reach the bot."""
        if self.chat.bot_status in ("left", "kicked"):
            raise AssertionError(f"the bot is not in group {self.chat.id}")
        self.chat.members.setdefault(user.id, "member")
        message = self._text_message(user.user, text, reply_to)
        if not self.bot_sees(text, reply_to):
            return Reply()
        return await self._send_updates([("message", message)], timeout)

    async def press(
        self,
        user: UserDriver,
        button: str | int,
        *,
        message: BotMessage | None = None,
        timeout: float = 5,
    ) -> Reply:
        """``user`` presses a button by text or number; see :meth:`UserDriver.press`."""
        self.chat.members.setdefault(user.id, "member")
        return await self._press(user.user, button, message, timeout)

    async def press_data(
        self, user: UserDriver, data: str, message_id: int, *, timeout: float = 5
    ) -> Reply:
        """``user`` sends arbitrary callback data from one of the bot's messages here: forged
        buttons, or several taps on one message at once (its buttons are not looked up again)."""
        message = self.api.message(self.chat.id, message_id)
        if message is None:
            raise AssertionError(f"the bot has no message {message_id} in chat {self.chat.id}")
        self.chat.members.setdefault(user.id, "member")
        return await self._callback(user.user, data, message, timeout)


class ChannelDriver(_ChatDriver):
    """The simulated channel: posts there reach the bot as channel_post updates."""

    async def post(self, text: str, *, timeout: float = 5) -> Reply:
        chat = self.api.chat_json(self.chat)
        message = {
            "message_id": self.api.next_message_id(self.chat.id),
            "sender_chat": chat,
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        return await self._send_updates([("channel_post", message)], timeout)
