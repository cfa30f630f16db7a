"""The two calls every menu tap makes, answerCallbackQuery and editMessageText, with their JSON
written here rather than by PTB's request machinery.

Through PTB (`CallbackQuery.answer`, `Bot.do_api_request`) each call went through `Bot._post`,
ExtBot's defaults, a `RequestParameter` per argument and a JSON encoding of the whole keyboard:
about an eighth of the bot's CPU per tap (py-spy, docs/performance.md). Here the body is a few
string joins (a keyboard's JSON is encoded once per keyboard) and goes to `BaseRequest.post`, so
Telegram's errors become PTB's exceptions exactly as before, and the rate limiter gets the edit
as it did from PTB (same endpoint, same chat id). With PTB's httpx backend (HTTP_BACKEND=httpx),
which cannot send a prepared body, both calls go through PTB as before.
"""

from __future__ import annotations

import json
from typing import Any

from telegram import InlineKeyboardMarkup, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.ext import ExtBot

from bot.request import AiohttpRequest
from bot.workarounds import edit_message_text

__all__ = ["NO_PREVIEW", "answer_callback", "edit_text", "keyboard_dict", "keyboard_json"]

# `ayerpoth run`'s defaults (bot.app), which do_api_request does not add by itself.
PARSE_MODE = ParseMode.HTML
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
NO_PREVIEW_JSON = NO_PREVIEW.to_dict()
_EDIT_TAIL = (
    f',"parse_mode":"{PARSE_MODE.value}","link_preview_options":{json.dumps(NO_PREVIEW_JSON)}'
)
KEEP_KEYBOARDS = 4096


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class _Keyboards:
    """Each keyboard's JSON, as a dict and encoded, found by identity: bot.ui builds every
    keyboard once and reuses the object, and hashing one (PTB hashes every field of every
    button) costs more than the lookup saves. Shared, so never changed."""

    def __init__(self, keep: int = KEEP_KEYBOARDS) -> None:
        self._by_id: dict[int, tuple[InlineKeyboardMarkup, dict[str, Any], str]] = {}
        self._keep = keep

    def get(self, markup: InlineKeyboardMarkup) -> tuple[InlineKeyboardMarkup, dict[str, Any], str]:
        entry = self._by_id.get(id(markup))
        if entry is not None and entry[0] is markup:  # the entry keeps it alive: ids not reused
            return entry
        as_dict = markup.to_dict()
        entry = (markup, as_dict, _json(as_dict))
        if len(self._by_id) >= self._keep:
            del self._by_id[next(iter(self._by_id))]  # the oldest
        self._by_id[id(markup)] = entry
        return entry


_keyboards = _Keyboards()


def keyboard_dict(markup: InlineKeyboardMarkup) -> dict[str, Any]:
    """A keyboard as Telegram's JSON (the object shared: never change it)."""
    return _keyboards.get(markup)[1]


def keyboard_json(markup: InlineKeyboardMarkup) -> str:
    return _keyboards.get(markup)[2]


async def answer_callback(
    bot: ExtBot[Any], query_id: str, text: str | None, *, show_alert: bool = False
) -> None:
    """answerCallbackQuery, as `CallbackQuery.answer(text, show_alert=...)` sends it."""
    request = bot.request
    if not isinstance(request, AiohttpRequest):
        await bot.answer_callback_query(query_id, text, show_alert=show_alert)
        return
    alert = "true" if show_alert else "false"
    body = f'{{"callback_query_id":{_json(query_id)},"show_alert":{alert}'
    if text is not None:
        body += ',"text":' + _json(text)
    # Never rate-limited (bot.ratelimit.UNPACED): PTB would hand it straight to the request too.
    await request.post_json(f"{bot.base_url}/answerCallbackQuery", (body + "}").encode())


async def edit_text(
    bot: ExtBot[Any],
    chat_id: int,
    message_id: int,
    text: str,
    markup: InlineKeyboardMarkup | None,
) -> None:
    """editMessageText in HTML without a link preview; Telegram's reply (the edited Message) is
    not turned into PTB objects, which nobody here reads."""
    request = bot.request
    if not isinstance(request, AiohttpRequest):
        await edit_message_text(
            bot, chat_id, message_id, text, markup.to_dict() if markup else None
        )
        return
    body = f'{{"chat_id":{chat_id:d},"message_id":{message_id:d},"text":{_json(text)}{_EDIT_TAIL}'
    if markup is not None:
        body += ',"reply_markup":' + keyboard_json(markup)
    encoded = (body + "}").encode()
    url = f"{bot.base_url}/editMessageText"
    limiter = bot.rate_limiter
    if limiter is None:
        await request.post_json(url, encoded)
        return
    # What ExtBot._do_post hands the limiter: it reads the endpoint and the chat id.
    await limiter.process_request(
        callback=request.post_json,
        args=(url, encoded),
        kwargs={},
        endpoint="editMessageText",
        data={"chat_id": chat_id, "message_id": message_id},
        rate_limit_args=None,
    )
