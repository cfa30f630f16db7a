"""The checks Telegram applies to message text, keyboards, inline results and commands.

Each check raises :class:`ApiError` with Telegram's error text (or a close approximation where
the real text is an opaque code), so the bot under test sees the same BadRequest it would get
in production.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from bot.fakeapi.models import ApiError
from bot.telegram_html import ParsedText, TelegramHTMLError, parse_html, utf16_len

__all__ = [
    "MAX_CAPTION",
    "MAX_TEXT",
    "WRONG_FILE",
    "format_text",
    "validate_commands",
    "validate_inline_results",
    "validate_language_code",
    "validate_reply_markup",
]

WRONG_FILE = "wrong file identifier/HTTP URL specified"  # a file_id Telegram never issued
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_BUTTONS = 100
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "login_url",
    "web_app",
    "pay",
    "copy_text",
    "callback_game",
)
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_INLINE_RESULT_TYPES = frozenset(
    {
        "article",
        "photo",
        "gif",
        "mpeg4_gif",
        "video",
        "audio",
        "voice",
        "document",
        "location",
        "venue",
        "contact",
        "game",
        "sticker",
    }
)


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


def format_text(
    text: object,
    parse_mode: object,
    entities: object,
    *,
    caption: bool = False,
) -> ParsedText:
    """Parse a message text or caption like Telegram: entities, trimming, emptiness, length."""
    raw = "" if text is None else str(text)
    mode = str(parse_mode or "")
    if mode.lower() == "html":
        try:
            parsed = parse_html(raw)
        except TelegramHTMLError as error:
            message = str(error)
            raise bad_request(message[:1].lower() + message[1:]) from error
    elif mode == "":
        given = entities if isinstance(entities, list) else []
        parsed = ParsedText(raw, [dict(e) for e in given if isinstance(e, dict)])
    elif mode.lower() in ("markdown", "markdownv2"):
        raise bad_request(
            f"can't parse entities: parse mode {mode!r} is not implemented by the fake Bot API; "
            "this project sends HTML"
        )
    else:
        raise bad_request("unsupported parse_mode")
    parsed = parsed.stripped()
    length = utf16_len(parsed.plain)
    if caption:
        if length > MAX_CAPTION:
            raise bad_request("message caption is too long")
    else:
        if not parsed.plain:
            raise bad_request("message text is empty")
        if length > MAX_TEXT:
            raise bad_request("message is too long")
    return parsed


def _valid_url(url: object, *, allow_tg: bool = True) -> bool:
    if not isinstance(url, str) or not url or any(c.isspace() for c in url):
        return False
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return bool(parts.hostname)
    return allow_tg and scheme == "tg" and bool(parts.netloc or parts.path)


def validate_reply_markup(markup: object, *, inline_only: bool = False) -> None:
    """Check a reply_markup object; inline keyboards get Telegram's full button rules."""
    if markup is None:
        return
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        _validate_inline_keyboard(markup["inline_keyboard"])
        return
    if inline_only:
        raise bad_request("REPLY_MARKUP_INVALID")
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request(
                'field "keyboard" of the ReplyKeyboardMarkup should be an Array of Arrays'
            )
        for row in rows:
            for button in row:
                text = button.get("text") if isinstance(button, dict) else button
                if not isinstance(text, str) or not text:
                    raise bad_request("can't parse keyboard button: Text must be non-empty")
        return
    if markup.get("remove_keyboard") is True or markup.get("force_reply") is True:
        return
    raise bad_request("can't parse reply keyboard markup JSON object")


def _validate_inline_keyboard(rows: object) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request(
            'field "inline_keyboard" of the InlineKeyboardMarkup should be an Array of Arrays'
        )
    if sum(len(row) for row in rows) > MAX_BUTTONS:
        raise bad_request("BUTTONS_TOO_MUCH")
    for row in rows:
        for button in row:
            _validate_inline_button(button)


def _validate_inline_button(button: object) -> None:
    if not isinstance(button, dict):
        raise bad_request(
            "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
        )
    text = button.get("text")
    if not isinstance(text, str):
        raise bad_request(
            'can\'t parse inline keyboard button: Field "text" must be of type String'
        )
    if not text.strip():
        raise bad_request("BUTTON_TEXT_INVALID")
    actions = [key for key in _BUTTON_ACTIONS if key in button]
    if not actions:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    if len(actions) > 1:
        raise bad_request(
            "can't parse inline keyboard button: exactly one of the optional fields must be used, "
            f"got {', '.join(actions)}"
        )
    action = actions[0]
    value = button[action]
    if action == "callback_data":
        if not isinstance(value, str) or not 1 <= len(value.encode("utf-8")) <= 64:
            raise bad_request("BUTTON_DATA_INVALID")
    elif action == "url":
        if not _valid_url(value):
            raise bad_request(f"inline keyboard button URL '{value}' is invalid: Wrong HTTP URL")
    elif action in ("login_url", "web_app"):
        url = value.get("url") if isinstance(value, dict) else None
        if not _valid_url(url, allow_tg=False):
            raise bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
        if action == "web_app" and not str(url).lower().startswith("https://"):
            raise bad_request("BUTTON_URL_INVALID")
    elif action in ("switch_inline_query", "switch_inline_query_current_chat"):
        if not isinstance(value, str):
            raise bad_request(
                f'can\'t parse inline keyboard button: Field "{action}" must be of type String'
            )
    elif action == "copy_text":
        copied = value.get("text") if isinstance(value, dict) else None
        if not isinstance(copied, str) or not 1 <= len(copied) <= 256:
            raise bad_request("COPY_TEXT_INVALID")


def validate_inline_results(
    results: object, *, known_photo: Callable[[object], bool] = lambda file_id: False
) -> list[dict[str, Any]]:
    """Check answerInlineQuery results: count, ids, types, each article's message and each
    photo's file (a cached photo names a file_id `known_photo` knows) and caption."""
    if not isinstance(results, list):
        raise bad_request("can't parse inline query results JSON object")
    if len(results) > 50:
        raise bad_request("RESULTS_TOO_MUCH")
    seen: set[str] = set()
    for result in results:
        if not isinstance(result, dict):
            raise bad_request("can't parse inline query result JSON object")
        result_id = result.get("id")
        if not isinstance(result_id, str) or not 1 <= len(result_id.encode("utf-8")) <= 64:
            raise bad_request("RESULT_ID_INVALID")
        if result_id in seen:
            raise bad_request("RESULT_ID_DUPLICATE")
        seen.add(result_id)
        if result.get("type") not in _INLINE_RESULT_TYPES:
            raise bad_request("RESULT_TYPE_INVALID")
        validate_reply_markup(result.get("reply_markup"), inline_only=True)
        if result["type"] == "article":
            if not str(result.get("title") or "").strip():
                raise bad_request("ARTICLE_TITLE_EMPTY")
            content = result.get("input_message_content")
            if not isinstance(content, dict) or "message_text" not in content:
                raise bad_request("can't parse input message content JSON object")
            format_text(
                content.get("message_text"), content.get("parse_mode"), content.get("entities")
            )
        if result["type"] == "photo":
            _validate_photo_result(result, known_photo)
    return results


def _validate_photo_result(result: dict[str, Any], known_photo: Callable[[object], bool]) -> None:
    if "photo_file_id" in result:  # InlineQueryResultCachedPhoto
        if not known_photo(result["photo_file_id"]):
            raise bad_request(WRONG_FILE)
    elif not _valid_url(result.get("photo_url"), allow_tg=False):
        raise bad_request("PHOTO_URL_INVALID")
    elif not _valid_url(result.get("thumbnail_url"), allow_tg=False):
        raise bad_request("THUMB_URL_INVALID")
    format_text(
        result.get("caption"),
        result.get("parse_mode"),
        result.get("caption_entities"),
        caption=True,
    )
    content = result.get("input_message_content")
    if content is not None:
        if not isinstance(content, dict) or "message_text" not in content:
            raise bad_request("can't parse input message content JSON object")
        format_text(content.get("message_text"), content.get("parse_mode"), content.get("entities"))


def validate_language_code(language_code: object) -> str:
    code = "" if language_code is None else str(language_code)
    if code and not re.fullmatch(r"[a-z]{2}", code):
        raise bad_request("invalid language code specified")
    return code


def validate_commands(commands: object) -> list[dict[str, str]]:
    """Check setMyCommands' list: at most 100, names [a-z0-9_]{1,32}, descriptions 1-256."""
    if not isinstance(commands, list):
        raise bad_request("can't parse commands JSON object")
    if len(commands) > 100:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    clean = []
    for command in commands:
        if not isinstance(command, dict):
            raise bad_request("can't parse BotCommand JSON object")
        name = command.get("command")
        description = command.get("description")
        if not isinstance(name, str) or not _COMMAND_RE.match(name.removeprefix("/")):
            raise bad_request("BOT_COMMAND_INVALID")
        if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        clean.append({"command": name.removeprefix("/"), "description": description})
    return clean
