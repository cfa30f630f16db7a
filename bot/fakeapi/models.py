"""Value types shared by the fake Bot API server and the chat driver.

They are plain dataclasses so that tests can compare and print them, and so that the server's
recorded history (calls, chat events) stays immutable once written.
"""

from __future__ import annotations

import html
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.telegram_html import html_to_terminal, parse_html

__all__ = [
    "ApiError",
    "BotMessage",
    "Call",
    "CallbackAnswer",
    "ChatEvent",
    "Faults",
    "FloodLimiter",
    "FloodRules",
    "InlineAnswer",
]


class ApiError(Exception):
    """A Bot API error response; raised inside method handlers and turned into JSON."""

    def __init__(
        self,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        *,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        parameters = {
            "retry_after": self.retry_after,
            "migrate_to_chat_id": self.migrate_to_chat_id,
        }
        if any(v is not None for v in parameters.values()):
            body["parameters"] = {k: v for k, v in parameters.items() if v is not None}
        return body


@dataclass(frozen=True)
class Call:
    """One request the bot made: what it asked for and what the fake answered."""

    method: str
    params: dict[str, Any]
    ok: bool
    error_code: int | None
    description: str | None
    time: float


@dataclass(frozen=True)
class BotMessage:
    """One version of a message the bot sent (edits produce a new version, same message_id)."""

    chat_id: int
    message_id: int
    html: str
    text: str
    entities: list[dict[str, Any]]
    reply_markup: dict[str, Any] | None
    date: int
    kind: str = "text"
    media: dict[str, Any] | None = None
    edit_date: int | None = None

    @property
    def edited(self) -> bool:
        return self.edit_date is not None

    @property
    def buttons(self) -> list[list[dict[str, Any]]]:
        """The inline keyboard as rows of button dicts (empty without an inline keyboard)."""
        if not self.reply_markup:
            return []
        rows = self.reply_markup.get("inline_keyboard") or []
        return [list(row) for row in rows]

    def button_texts(self) -> list[str]:
        return [button["text"] for row in self.buttons for button in row]

    def find_button(self, pattern: str) -> dict[str, Any]:
        """The single inline button whose text matches ``pattern`` (re.search, ignoring case).

        Raises AssertionError listing the available texts when none or several match, because
        that is what a test wants to read when it pressed the wrong thing.
        """
        regex = re.compile(pattern, re.IGNORECASE)
        found = [b for row in self.buttons for b in row if regex.search(b["text"])]
        if len(found) == 1:
            return found[0]
        problem = "no button" if not found else f"{len(found)} buttons"
        raise AssertionError(
            f"{problem} matching {pattern!r} in message {self.message_id}; "
            f"buttons: {self.button_texts()!r}"
        )

    def button_at(self, number: int) -> dict[str, Any]:
        """The button numbered ``number`` as :meth:`render` shows it: from 1, row by row.

        Buttons with the same text (three "choose this path", say) are told apart this way.
        """
        buttons = [b for row in self.buttons for b in row]
        if not 1 <= number <= len(buttons):
            choice = f"pick 1 to {len(buttons)}" if buttons else "it has no buttons"
            raise AssertionError(
                f"there is no button {number} in message {self.message_id}; {choice}"
            )
        return buttons[number - 1]

    def render(self, *, ansi: bool = False) -> str:
        """The message as a person would read it in a terminal, buttons numbered from 1."""
        parts = []
        if self.media is not None:
            if self.kind == "photo":
                largest = self.media["sizes"][-1]
                name = f"{largest['width']}×{largest['height']}"
                size = largest.get("file_size", "?")
            else:
                name, size = (
                    self.media.get("file_name") or self.kind,
                    self.media.get("file_size", "?"),
                )
            parts.append(f"[{self.kind}: {name}, {size} bytes]")
        if self.html:
            parts.append(html_to_terminal(self.html, ansi=ansi))
        number = 0
        for row in self.buttons:
            cells = []
            for button in row:
                number += 1
                label = f"[{number}] {button['text']}"
                if "url" in button:
                    label += f" ({button['url']})"
                cells.append(label)
            parts.append("  ".join(cells))
        return "\n".join(parts)

    def to_api(self, bot_user: dict[str, Any], chat: dict[str, Any]) -> dict[str, Any]:
        """The Telegram Message object for this version."""
        message: dict[str, Any] = {
            "message_id": self.message_id,
            "from": bot_user,
            "chat": chat,
            "date": self.date,
        }
        text_key, entities_key = ("text", "entities")
        if self.kind != "text":
            text_key, entities_key = ("caption", "caption_entities")
            assert self.media is not None
            if self.kind == "photo":
                message["photo"] = self.media["sizes"]
            else:
                message[self.kind] = self.media
        if self.text:
            message[text_key] = self.text
            if self.entities:
                message[entities_key] = self.entities
        if self.reply_markup is not None and "inline_keyboard" in self.reply_markup:
            message["reply_markup"] = self.reply_markup
        if self.edit_date is not None:
            message["edit_date"] = self.edit_date
        return message


def plain_html(text: str) -> str:
    """The HTML that displays ``text`` literally (used for messages sent without parse_mode)."""
    return html.escape(text, quote=False)


@dataclass(frozen=True)
class CallbackAnswer:
    """What the bot passed to answerCallbackQuery."""

    query_id: str
    text: str | None
    show_alert: bool
    url: str | None


@dataclass(frozen=True)
class InlineAnswer:
    """What the bot passed to answerInlineQuery."""

    query_id: str
    results: list[dict[str, Any]]
    cache_time: int | None
    is_personal: bool
    next_offset: str | None
    button: dict[str, Any] | None

    @property
    def articles(self) -> list[dict[str, Any]]:
        """Article results with the message they would post, as plain text and as HTML."""
        out = []
        for result in self.results:
            if result.get("type") != "article":
                continue
            content = result.get("input_message_content") or {}
            raw = str(content.get("message_text", ""))
            is_html = str(content.get("parse_mode") or "").lower() == "html"
            out.append(
                {
                    "id": result.get("id"),
                    "title": result.get("title"),
                    "description": result.get("description"),
                    "html": raw if is_html else plain_html(raw),
                    "text": parse_html(raw).stripped().plain if is_html else raw.strip(),
                    "reply_markup": result.get("reply_markup"),
                }
            )
        return out

    def texts(self) -> list[str]:
        return [article["text"] for article in self.articles]

    @property
    def photos(self) -> list[dict[str, Any]]:
        """Photo results: their file_id and caption, as plain text and as HTML."""
        out = []
        for result in self.results:
            if result.get("type") != "photo":
                continue
            raw = str(result.get("caption", ""))
            is_html = str(result.get("parse_mode") or "").lower() == "html"
            out.append(
                {
                    "id": result.get("id"),
                    "file_id": result.get("photo_file_id"),
                    "html": raw if is_html else plain_html(raw),
                    "caption": parse_html(raw).stripped().plain if is_html else raw.strip(),
                    "reply_markup": result.get("reply_markup"),
                }
            )
        return out


@dataclass(frozen=True)
class ChatEvent:
    """Something the bot did that a user would notice, in the order the fake performed it.

    ``kind`` is one of message, edit, delete, callback_answer, inline_answer, chat_action.
    """

    seq: int
    kind: str
    chat_id: int
    message: BotMessage | None = None
    message_id: int | None = None
    callback_answer: CallbackAnswer | None = None
    inline_answer: InlineAnswer | None = None
    action: str | None = None


@dataclass(frozen=True)
class FloodRules:
    """Telegram's documented sending limits as token buckets (capacity = burst, refill rate).

    * all chats together: 30 messages per second (bucket of 30, refilled at 30/s);
    * one private chat: about 1 message per second sustained, with a burst of 3;
    * one group, supergroup or channel: 20 messages per minute (bucket of 20, one back every 3 s).

    Edits (editMessageText/Caption/ReplyMarkup) count like sends because Telegram throttles
    them the same way in practice; answers, deletes and chat actions are free.
    """

    global_per_second: float = 30.0
    global_burst: int = 30
    private_per_second: float = 1.0
    private_burst: int = 3
    group_per_minute: float = 20.0
    group_burst: int = 20
    count_edits: bool = True


class FloodLimiter:
    """Applies :class:`FloodRules` with the injected clock, so tests can move time by hand."""

    def __init__(self, rules: FloodRules, clock: Callable[[], float]) -> None:
        self.rules = rules
        self.clock = clock
        self._buckets: dict[object, tuple[float, float]] = {}
        self.rejected = 0
        #: 429s for the bot-wide rule (all chats together), whatever the chat's own bucket held:
        #: what several bot processes sharing one budget must never cause.
        self.rejected_bot_wide = 0

    def _level(self, key: object, capacity: int, rate: float, now: float) -> float:
        tokens, last = self._buckets.get(key, (float(capacity), now))
        return min(float(capacity), tokens + (now - last) * rate)

    def check(self, chat_id: int, chat_type: str) -> None:
        """Take one token for this chat, or raise a 429 and take nothing."""
        now = self.clock()
        rules = self.rules
        if chat_type == "private":
            chat_limits = (rules.private_burst, rules.private_per_second)
        else:
            chat_limits = (rules.group_burst, rules.group_per_minute / 60.0)
        buckets = [
            ("global", rules.global_burst, rules.global_per_second),
            (chat_id, *chat_limits),
        ]
        wait = 0.0
        levels = []
        for key, capacity, rate in buckets:
            level = self._level(key, capacity, rate, now)
            levels.append(level)
            if level < 1.0:
                wait = max(wait, (1.0 - level) / rate)
        if wait > 0:
            self.rejected += 1
            self.rejected_bot_wide += levels[0] < 1.0
            retry_after = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        for (key, _capacity, _rate), level in zip(buckets, levels, strict=True):
            self._buckets[key] = (level - 1.0, now)


@dataclass
class Faults:
    """Random, seeded infrastructure failures: Telegram's occasional 5xx and hung requests.

    ``methods=None`` means every method except getUpdates (a failed poll only slows PTB's
    polling loop down and tests nothing in the bot); name getUpdates explicitly to include it.
    A timeout holds the request for ``timeout_delay`` seconds (longer than the client's read
    timeout) and then answers 504 without performing it.
    """

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    methods: set[str] | None = None
    seed: int = 0
    timeout_delay: float = 6.0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def applies_to(self, method: str) -> bool:
        if self.methods is None:
            return method.lower() != "getupdates"
        return method.lower() in {m.lower() for m in self.methods}

    def draw(self) -> str | None:
        """Return "error", "timeout" or None for the next matching request."""
        roll = self._rng.random()
        if roll < self.error_rate:
            return "error"
        if roll < self.error_rate + self.timeout_rate:
            return "timeout"
        return None

    def error(self) -> ApiError:
        if self._rng.random() < 0.5:
            return ApiError(500, "Internal Server Error")
        return ApiError(502, "Bad Gateway")
