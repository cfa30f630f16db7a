"""Method cards: the summary with key facts, then one screen per section, and "choose this path".

Get the data (library + store), render it (templates), act on buttons: each step is its own function.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, Update
from telegram.ext import BaseHandler

from bot import callbacks
from bot.callbacks import on_tap
from bot.context import AppContext
from bot.store import AddPathResult
from bot.ui import (
    Row,
    answer,
    button,
    keyboard,
    nav_row,
    pairs,
    share_button,
    show,
    url_button,
)

SECTION_BUTTONS = {
    "what": "btn.what",
    "steps": "btn.steps",
    "platforms": "btn.platforms",
    "mistakes": "btn.mistakes",
    "tips": "btn.tips_section",
}


def back_from_card(method_id: str, origin: str) -> str:
    """Where Back on a card leads: the list, quiz result or path the user came from."""
    if origin in callbacks.LIST_KINDS:
        return callbacks.MethodList(origin).pack()
    if origin == "quiz":
        return callbacks.QUIZ_RESULT.pack()
    if origin == "path":
        return callbacks.Checklist(method_id).pack()
    return callbacks.HOME.pack()


async def show_card(update: Update, ctx: AppContext, method_id: str, origin: str) -> None:
    text, rows = await card_screen(update, ctx, method_id, origin)
    await show(update, ctx, text, keyboard(rows))


async def card_screen(
    update: Update, ctx: AppContext, method_id: str, origin: str
) -> tuple[str, list[Row]]:
    """A method's card and its buttons; the last row is the navigation."""
    user = update.effective_user
    chosen = user is not None and any(
        p.method_id == method_id for p in await ctx.store.list_paths(user.id)
    )
    choose = (
        button(ctx.t("btn.chosen"), callbacks.Checklist(method_id, origin).pack())
        if chosen
        else button(ctx.t("btn.choose"), callbacks.Choose(method_id, origin).pack())
    )
    text = ctx.library.card(ctx.lang, method_id)
    rows = [
        [
            section_button(ctx, method_id, "what", origin),
            section_button(ctx, method_id, "steps", origin),
        ],
        [choose, button(ctx.t("btn.subscribe"), callbacks.Subscribe(method_id).pack())],
        nav_row(ctx, back_from_card(method_id, origin)),
    ]
    return text, rows


def section_button(
    ctx: AppContext, method_id: str, section: str, origin: str
) -> InlineKeyboardButton:
    data = callbacks.Section(method_id, section, 0, origin).pack()
    return button(ctx.t(SECTION_BUTTONS[section]), data)


async def card(update: Update, ctx: AppContext, data: callbacks.Card) -> None:
    await show_card(update, ctx, data.method, data.origin)


async def section(update: Update, ctx: AppContext, data: callbacks.Section) -> None:
    text, rows = await section_screen(
        update, ctx, data.method, data.section, data.page, data.origin
    )
    await show(update, ctx, text, keyboard(rows))


async def section_screen(
    update: Update, ctx: AppContext, method_id: str, section_id: str, page_no: int, origin: str
) -> tuple[str, list[Row]]:
    """One page of a card's section and its buttons; the last row is the navigation."""
    user = update.effective_user
    done: frozenset[int] = frozenset()
    if section_id == "steps" and user is not None:
        done = next(
            (p.done_steps for p in await ctx.store.list_paths(user.id) if p.method_id == method_id),
            frozenset(),
        )
    pages = ctx.library.section_pages(ctx.lang, method_id, section_id, done=done)
    page_no = min(page_no, len(pages) - 1)  # content may have shrunk since the button was made
    text = pages[page_no]
    rows: list[Row] = []
    if len(pages) > 1:
        text += "\n\n" + ctx.t("page_of", n=page_no + 1, total=len(pages))
        turn = []
        if page_no > 0:
            previous = callbacks.Section(method_id, section_id, page_no - 1, origin)
            turn.append(button(ctx.t("btn.prev"), previous.pack()))
        if page_no < len(pages) - 1:
            following = callbacks.Section(method_id, section_id, page_no + 1, origin)
            turn.append(button(ctx.t("btn.next"), following.pack()))
        rows.append(turn)
    method = ctx.library.method(ctx.lang, method_id)
    if section_id == "platforms":  # the links, once: as buttons, easy to tap on a phone
        rows += pairs([url_button(f"🔗 {p.name}", p.url) for p in method.platforms])
    if section_id == "what":  # the card's first screen keeps four buttons; the rest is here
        more = [
            section_button(ctx, method_id, s, origin) for s in ("platforms", "mistakes", "tips")
        ]
        share_image = button(ctx.t("btn.share_image"), callbacks.ShareMethodImage(method_id).pack())
        rows += pairs([*more, share_button(ctx.t("btn.share"), method.button), share_image])
    rows.append(nav_row(ctx, callbacks.Card(method_id, origin).pack()))
    return text, rows


async def choose(update: Update, ctx: AppContext, data: callbacks.Choose) -> None:
    assert update.effective_user is not None
    method_id, origin = data.method, data.origin
    name = ctx.library.method(ctx.lang, method_id).button
    user_id, now = update.effective_user.id, ctx.now()
    result = await ctx.store.add_path(user_id, method_id, now=now)
    if result is AddPathResult.FULL:
        await answer(update, ctx, ctx.t("path.full", name=name), alert=True)
        return
    if result is AddPathResult.ALREADY:
        # Chosen a moment ago: a second tap on this button (or two in flight) gets the first's
        # answer. add_path left the paths in the store's memory, so this costs no query.
        paths = await ctx.store.list_paths(user_id)
        chosen = next((p.chosen_at for p in paths if p.method_id == method_id), None)
        if chosen is None or now - chosen > callbacks.REPEAT_WINDOW:
            await answer(update, ctx, ctx.t("path.already", name=name))
            return
    # The card now offers "on my path" instead of "choose".
    ctx.notify(ctx.t("path.added", name=name))
    await show_card(update, ctx, method_id, origin)


def handlers() -> list[BaseHandler[Update, AppContext, None]]:
    return [
        on_tap(callbacks.Card, card),
        on_tap(callbacks.Section, section),
        on_tap(callbacks.Choose, choose),
    ]
