"""Showing screens: one function decides between editing the tapped message and sending a new one."""

from __future__ import annotations

from collections.abc import Coroutine, Iterable, Sequence
from functools import lru_cache
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MaybeInaccessibleMessage,
    Message,
    Update,
)
from telegram.helpers import create_deep_linked_url

from bot import callbacks
from bot.context import AppContext
from bot.fastcalls import answer_callback, edit_text, keyboard_dict
from bot.telegram_html import TelegramHTMLError, parse_html

Row = Sequence[InlineKeyboardButton]


# Buttons and keyboards are immutable and the same few hundred recur on every tap: each is built
# (and serialized, see _edit_screen) once. Building them was a tenth of the CPU per tap.
@lru_cache(maxsize=4096)
def button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=data)


@lru_cache(maxsize=1024)
def url_button(text: str, url: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text, url=url)


@lru_cache(maxsize=256)
def share_button(text: str, query: str) -> InlineKeyboardButton:
    """Opens the chat picker with `@bot query` typed in: inline mode shares the result."""
    return InlineKeyboardButton(text, switch_inline_query=query)


def label(text: str) -> str:
    """A UI string (HTML, values escaped) as a button label, which Telegram shows as plain text."""
    return parse_html(text).plain


def open_in_bot(ctx: AppContext, text: str, payload: str) -> InlineKeyboardButton:
    """A URL button to the private chat with the bot at a `/start <payload>` deep link.

    It works from any chat, also for people who have not started the bot yet.
    """
    return url_button(text, create_deep_linked_url(ctx.bot.username, payload))


def keyboard(rows: Iterable[Row]) -> InlineKeyboardMarkup:
    return _keyboard(tuple(tuple(row) for row in rows if row))


@lru_cache(maxsize=4096)
def _keyboard(rows: tuple[tuple[InlineKeyboardButton, ...], ...]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(rows)


def pairs(buttons: Sequence[InlineKeyboardButton]) -> list[Row]:
    """Two buttons a row: readable on a narrow phone screen."""
    return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]


def nav_row(ctx: AppContext, back: str | None = None) -> Row:
    """Back (when it goes somewhere other than home) and Home: on every screen."""
    home = button(ctx.t("btn.home"), callbacks.HOME.data)
    if back is None or back == callbacks.HOME.data:
        return [home]
    return [button(ctx.t("btn.back"), back), home]


def post(update: Update, ctx: AppContext, send: Coroutine[Any, Any, object]) -> None:
    """Send without waiting (`bot.outbox`): the handler's update slot is free at once.

    The chat's queue keeps the order of what one chat is sent; a failure gets the apology.
    """
    ctx.services.outbox.post(update, ctx, send)


async def answer(
    update: Update,
    ctx: AppContext,
    text: str | None = None,
    *,
    alert: bool = False,
    apology: bool = False,
) -> None:
    """Answer the tapped button once; Telegram shows a spinner until we do.

    Without a text of its own, the answer carries the popup the handler set with `ctx.notify`.
    The answer is sent at once (answers are never flood-limited) but not waited for.
    """
    query = update.callback_query
    answered = ctx.services.answered
    if query is None or query.id in answered:
        return
    answered.add(query.id)
    if text is None and ctx.notice is not None:
        text, alert = ctx.notice, ctx.notice_alert
    # UI strings are HTML (names escaped); a callback answer is shown as plain text.
    send = answer_callback(
        ctx.bot, query.id, parse_html(text).plain if text else None, show_alert=alert
    )
    ctx.services.outbox.post(update, ctx, send, apology=apology)


async def show(
    update: Update, ctx: AppContext, text: str, markup: InlineKeyboardMarkup | None
) -> None:
    """Edit the message whose button was tapped (navigation), or send a new one (commands).

    Returns at once: the answer goes first (never queued), the screen joins its chat's queue.
    """
    query = update.callback_query
    if query is not None and query.message is not None and query.message.is_accessible:
        await answer(update, ctx)
        key = (query.message.chat.id, query.message.message_id)
        fingerprint = hash((text, markup))
        seen = _version(query.message)
        screens = ctx.services.screens
        if _already_shown(ctx, update, text, markup) or screens.shows(key, fingerprint, seen):
            # A second tap on the same button (or one in flight with the tap that drew this
            # screen, or whose edit still waits in the outbox): Telegram would refuse the edit.
            return
        # Marked now, while the edit waits in its chat's queue; "not modified" (the same screen
        # _already_shown could not tell apart) is ignored by the outbox.
        edit = screens.editing(key, fingerprint, seen)
        post(update, ctx, _edit_screen(ctx, key, edit, text, markup))
        return
    if query is not None:  # also when its message is too old to edit: the spinner must stop
        await answer(update, ctx)
    message = update.effective_message
    if message is not None:
        post(update, ctx, message.reply_text(text, reply_markup=markup))


async def _edit_screen(
    ctx: AppContext,
    key: tuple[int, int],
    edit: int,
    text: str,
    markup: InlineKeyboardMarkup | None,
) -> None:
    """The posted edit: tells `ShownScreens` how it went (only a success keeps the screen)."""
    ok = False
    try:
        # bot.fastcalls writes the call itself: parsing Telegram's reply was a tenth of the CPU
        # per tap, PTB's request machinery another eighth (docs/performance.md).
        await edit_text(ctx.bot, key[0], key[1], text, markup)
        ok = True
    finally:
        ctx.services.screens.edited(key, edit, ok=ok)


def _version(message: MaybeInaccessibleMessage) -> object:
    """Which version of the message a tap carries: when it was last edited, and its text."""
    if not isinstance(message, Message):
        return None
    return (message.edit_date, message.text)


def _already_shown(
    ctx: AppContext, update: Update, text: str, markup: InlineKeyboardMarkup | None
) -> bool:
    """Whether the tapped message shows exactly this screen: same text, formatting and buttons.

    Its buttons and formatting are read from the JSON Telegram sent (`Inbox.raw`; PTB is not
    given them, see bot.intake). Should that be missing, the answer is no: the edit is sent,
    and Telegram's "not modified" is ignored (bot.outbox).
    """
    query = update.callback_query
    message = query.message if query is not None else None
    raw = ctx.services.inbox.raw(update.update_id)
    if not isinstance(message, Message) or raw is None:
        return False
    tapped = raw["callback_query"]["message"]
    if tapped.get("reply_markup") != (keyboard_dict(markup) if markup is not None else None):
        return False
    try:
        parsed = parse_html(text).stripped()
    except TelegramHTMLError:
        return False
    shown = {(e["type"], e["offset"], e["length"]) for e in tapped.get("entities", ())}
    return message.text == parsed.plain and shown == {
        (e["type"], e["offset"], e["length"]) for e in parsed.entities
    }
