"""Where the bot steps around python-telegram-bot (and, once, CPython): each work-around in one
place, with why it is needed and the upstream issue. When PTB offers a public way, use it here.

PTB's stability policy covers only what its documentation describes: private attributes and the
`telegram._utils` modules may change in any release (docs.python-telegram-bot.org, "Stability
Policy"). Everything of theirs the bot touches is therefore here, and pinned by
`python-telegram-bot>=22.0,<23` in pyproject.toml.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from telegram import Bot, LinkPreviewOptions
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.constants import ParseMode
from telegram.error import RetryAfter
from telegram.warnings import PTBUserWarning

__all__ = [
    "GIL_SWITCH_INTERVAL",
    "DefaultValue",
    "ODVInput",
    "edit_message_text",
    "get_updates_unread",
    "retry_delay",
    "shorten_gil_switch_interval",
]

# --- 429 retry_after as a timedelta -------------------------------------------------------------
# PTB 22.2 stores `RetryAfter.retry_after` as a timedelta, but its public attribute still gives
# int seconds with a deprecation warning until v23, unless the process opts in through the
# PTB_TIMEDELTA environment variable (python-telegram-bot#4575, #4750). The stored value is read
# instead: no warning, no process-wide switch, and the same value v23's attribute will give.


def retry_delay(exc: RetryAfter) -> timedelta:
    """Telegram's retry_after as a timedelta."""
    return exc._retry_after


# --- DefaultValue and ODVInput for the aiohttp backend ------------------------------------------
# A `BaseRequest` (bot/request.py) is told "no timeout given for this call" by PTB's
# `DEFAULT_NONE` sentinel, a `DefaultValue`; PTB's own HTTPXRequest tells it apart with these,
# which only its private modules export. Re-exported above so that only this module imports them.


# --- editMessageText without parsing the reply --------------------------------------------------
# `Bot.edit_message_text` turns Telegram's reply into a `Message` nobody reads: a tenth of the
# CPU per tap (docs/performance.md). `do_api_request` (python-telegram-bot#4053, #4084) returns
# the raw reply, but it warns when called for a method PTB has, and it skips PTB's defaults, so
# they are passed here as `ayerpoth run` sets them (HTML, no link previews). The warning is
# silenced for this one call's message, for the whole process, when this module is imported
# (and in pyproject.toml for pytest, which resets filters per test). PTB is making its objects
# cheaper to build (python-telegram-bot#5186, #5250); when parsing costs little, use the method.
warnings.filterwarnings(
    "ignore", message="Please use 'Bot.editMessageText'", category=PTBUserWarning
)
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


async def edit_message_text(
    bot: Bot, chat_id: int, message_id: int, text: str, reply_markup: dict[str, Any] | None
) -> None:
    """Edit a message's text and buttons (`reply_markup` as Telegram's JSON), reply unread."""
    await bot.do_api_request(
        "editMessageText",
        api_kwargs={
            "chat_id": chat_id,
            "message_id": message_id,
            "text": text,
            "parse_mode": ParseMode.HTML,
            "link_preview_options": _NO_PREVIEW,
            "reply_markup": reply_markup,
        },
    )


# --- getUpdates without reading the batch --------------------------------------------------------
# `Bot.get_updates` turns the whole batch into `Update`s and raises on any one it cannot read (a
# kind from a self-hosted Bot API server newer than PTB): the batch is never confirmed and polling
# is stuck on it (python-telegram-bot#1609, #1651). The raw batch comes from `Bot._post`, the
# private call every Bot method makes (rate limiter and request included); bot/intake.py reads
# each update on its own and skips the one it cannot.


async def get_updates_unread(
    bot: Bot,
    *,
    offset: int | None,
    limit: int,
    timeout: int,  # noqa: ASYNC109 (the long poll's, sent to Telegram)
    allowed_updates: Sequence[str],
) -> list[Any]:
    """getUpdates' result as Telegram's JSON: one dict per update."""
    result = await bot._post(
        "getUpdates",
        {
            "offset": offset,
            "limit": limit,
            "timeout": timeout,
            "allowed_updates": list(allowed_updates),
        },
        read_timeout=timeout + 10,
    )
    return result if isinstance(result, list) else []


# --- the GIL switch interval --------------------------------------------------------------------
# The store's SQLite threads hand every result back through the GIL. At Python's default 5 ms
# switch interval, a busy event loop made each hand-off wait up to 5 ms, and taps that write
# queued behind one another: p99 under load 424 ms, 255 ms at 1 ms (docs/performance.md). It is
# CPython's scheduling of a thread that wakes up while another holds the GIL
# (python/cpython#90204). Process-wide, so only `ayerpoth run` (and the benchmark of it) sets it,
# not the tests or the playground.
GIL_SWITCH_INTERVAL = 0.001


def shorten_gil_switch_interval() -> None:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
