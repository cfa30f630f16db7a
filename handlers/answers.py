"""Short answers: the FAQ, getting paid per platform, scams, free learning, and typed questions.

Every answer is a screen of its own (`ans:<collection>:<id>`) with buttons to what says more; a
collection is a list of buttons (`anl:<collection>:<page>`). A typed question shows the best
answer itself, with buttons to the next-best ones, or says honestly that there is none.
"""

from __future__ import annotations

import re

from telegram import InlineKeyboardButton, Update
from telegram.ext import BaseHandler

from bot import callbacks
from bot.callbacks import on_tap
from bot.content import COLLECTIONS, PAGE_IDS, SECTIONS, Entry
from bot.context import AppContext
from bot.search import Outcome
from bot.ui import Row, button, keyboard, nav_row, pairs, show
from handlers import methods

LIST_PAGE = 10  # buttons per page of a collection list: five rows of two
ALSO = 3  # next-best answers offered under a typed question's answer
MAX_QUERY_SHOWN = 60
_PRIVATE = (  # what could identify someone, replaced before a question is kept
    (re.compile(r"\S+@\S+\.\S+"), "<email>"),
    (re.compile(r"(?:https?://|www\.)\S+|\b\S+\.(?:com|net|org|bd|me)\S*"), "<link>"),
    (re.compile(r"@\w+"), "<user>"),
)
_DIGITS = re.compile(r"[0-9০-৯]")


def target_button(ctx: AppContext, target: str) -> InlineKeyboardButton | None:
    """A button that opens a search or `see` target; None when it no longer exists."""
    kind, _, rest = target.partition(":")
    lib, lang = ctx.library, ctx.lang
    if kind == "card" and lib.has_method(rest):
        m = lib.method(lang, rest)
        return button(f"{m.emoji} {m.button}", callbacks.Card(rest, "find").pack())
    if kind == "sec":
        method_id, _, section = rest.partition(":")
        if lib.has_method(method_id) and section in SECTIONS:
            m = lib.method(lang, method_id)
            label = f"{m.emoji} {m.button} · {ctx.t(f'section.{section}')}"
            return button(label, callbacks.Section(method_id, section, 0, "find").pack())
    if kind == "page" and rest in PAGE_IDS:
        page = lib.page(lang, rest)
        return button(f"{page.emoji} {page.button}", callbacks.InfoPage(rest).pack())
    if kind in COLLECTIONS and (entry := lib.entry(lang, kind, rest)) is not None:
        return entry_button(ctx, entry)
    if target == "quiz":
        return button(ctx.t("btn.quiz"), callbacks.Quiz().pack())
    return None


def entry_button(ctx: AppContext, entry: Entry) -> InlineKeyboardButton:
    icon = ctx.t(f"icon.{entry.collection}")
    return button(f"{icon} {entry.button}", callbacks.Answer(entry.collection, entry.id).pack())


def buttons_to(ctx: AppContext, targets: tuple[str, ...] | list[str]) -> list[InlineKeyboardButton]:
    return [b for b in map(lambda t: target_button(ctx, t), targets) if b is not None]


def entry_screen(ctx: AppContext, entry: Entry, back: str | None) -> tuple[str, list[Row]]:
    text = ctx.library.render(ctx.lang, "answer.j2", e=entry)
    return text, [*pairs(buttons_to(ctx, entry.see)), nav_row(ctx, back)]


async def open_entry(update: Update, ctx: AppContext, data: callbacks.Answer) -> None:
    entry = ctx.library.entry(ctx.lang, data.collection, data.entry)
    assert entry is not None  # the same ids in every language (the content check)
    text, rows = entry_screen(ctx, entry, callbacks.AnswerList(entry.collection).pack())
    await show(update, ctx, text, keyboard(rows))


async def open_list(update: Update, ctx: AppContext, data: callbacks.AnswerList) -> None:
    collection, page_no = data.collection, data.page
    entries = ctx.library.entries(ctx.lang, collection)
    pages = max(1, -(-len(entries) // LIST_PAGE))
    page_no = min(page_no, pages - 1)  # the list may have shrunk since the button was made
    shown = entries[page_no * LIST_PAGE : (page_no + 1) * LIST_PAGE]
    text = ctx.t(f"collection.{collection}")
    rows: list[Row] = [*pairs([entry_button(ctx, e) for e in shown])]
    if pages > 1:
        text += "\n" + ctx.t("page_of", n=page_no + 1, total=pages)
        turn = []
        if page_no > 0:
            previous = callbacks.AnswerList(collection, page_no - 1)
            turn.append(button(ctx.t("btn.prev"), previous.pack()))
        if page_no < pages - 1:
            following = callbacks.AnswerList(collection, page_no + 1)
            turn.append(button(ctx.t("btn.next"), following.pack()))
        rows.append(turn)
    rows.append(nav_row(ctx))
    await show(update, ctx, text, keyboard(rows))


async def answer_question(update: Update, ctx: AppContext, outcome: Outcome) -> None:
    """The best answer to a typed question, with the next-best ones as buttons."""
    best, *others = outcome.targets
    text, rows = await _screen(update, ctx, best)
    shown = {b.callback_data for row in rows for b in row}  # the answer's own "more" buttons
    also = [
        b
        for b in buttons_to(ctx, [t for t in others if not _same_method(t, best)])
        if b.callback_data not in shown
    ][:ALSO]
    await show(update, ctx, text, keyboard([*rows[:-1], *pairs(also), rows[-1]]))


async def no_answer(update: Update, ctx: AppContext, query: str, outcome: Outcome) -> None:
    """Say honestly that there is no good answer; offer the closest topics and the quiz."""
    shown = query if len(query) <= MAX_QUERY_SHOWN else query[: MAX_QUERY_SHOWN - 1] + "…"
    key = "search.unsure" if outcome.targets else "search.none"
    closest = buttons_to(ctx, list(outcome.targets[:ALSO]))
    rows = [*pairs(closest), [button(ctx.t("btn.quiz"), callbacks.Quiz().pack())], nav_row(ctx)]
    await show(update, ctx, ctx.t(key, query=shown), keyboard(rows))
    await ctx.store.record_unanswered(mask_query(query), now=ctx.now())


def mask_query(query: str) -> str:
    """A question as it is kept for the content team: no emails, links, usernames or digits
    (phone numbers, amounts, ids), at most 100 characters."""
    text = " ".join(query.casefold().split())
    for pattern, mask in _PRIVATE:
        text = pattern.sub(mask, text)
    return _DIGITS.sub("#", text)[:100]


async def _screen(update: Update, ctx: AppContext, target: str) -> tuple[str, list[Row]]:
    kind, _, rest = target.partition(":")
    if kind == "card":
        return await methods.card_screen(update, ctx, rest, "find")
    if kind == "sec":
        method_id, _, section = rest.partition(":")
        return await methods.section_screen(update, ctx, method_id, section, 0, "find")
    if kind == "page":
        return page_screen(ctx, rest)
    entry = ctx.library.entry(ctx.lang, kind, rest)
    assert entry is not None, target
    return entry_screen(ctx, entry, None)


def page_screen(ctx: AppContext, page_id: str) -> tuple[str, list[Row]]:
    """An info page; a page with a collection lists its answers as buttons."""
    page = ctx.library.page(ctx.lang, page_id)
    rows: list[Row] = []
    if page.id == "active_passive":
        rows.append(
            [
                button(ctx.t("btn.active"), callbacks.MethodList("active").pack()),
                button(ctx.t("btn.passive"), callbacks.MethodList("passive").pack()),
            ]
        )
    if page.collection:
        rows += pairs(
            [entry_button(ctx, e) for e in ctx.library.entries(ctx.lang, page.collection)]
        )
    rows += pairs(buttons_to(ctx, page.see))
    text = ctx.library.render(ctx.lang, "page.j2", page=page)
    return text, [*rows, nav_row(ctx)]


def _same_method(target: str, best: str) -> bool:
    """A card and its own sections are one answer: offer other topics instead."""

    def method_of(t: str) -> str | None:
        kind, _, rest = t.partition(":")
        return rest.split(":")[0] if kind in ("card", "sec") else None

    return method_of(target) is not None and method_of(target) == method_of(best)


def handlers() -> list[BaseHandler[Update, AppContext, None]]:
    return [
        on_tap(callbacks.Answer, open_entry),
        on_tap(callbacks.AnswerList, open_list),
    ]
